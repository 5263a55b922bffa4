// Starts both of Keygate's Workers under one `wrangler dev` (real workerd, KV and Durable Objects) on a free loopback
// port with its own state folder, for the browser suite and the admin benchmark. The Rust e2e harness
// (tests/src/lib.rs) does the same from Rust.
//
// Variables reach both Workers through a copy of each wrangler configuration written beside the original
// (`*.e2e-<tag>-<port>.toml`; wrangler's `--var` reaches only the first Worker) without its [build] table: the
// caller runs an existing build, and a build command would also make wrangler restart the Workers when a file
// changes. `stop()` removes the copies and stops wrangler's whole process group.

import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const CONFIGS = ["wrangler.toml", "control/wrangler.toml"];

export function freePort() {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** The bootstrap secret to use: `control/.dev.vars`'s (made by `cargo xtask dev`; wrangler reads it beside the
 * configuration and it wins over [vars]) when there is one, else `fallback`. */
export function bootstrapToken(fallback) {
  try {
    const vars = readFileSync(join(ROOT, "control/.dev.vars"), "utf8");
    const line = vars.split("\n").find((l) => l.startsWith("KEYGATE_BOOTSTRAP_TOKEN="));
    if (line) return line.slice("KEYGATE_BOOTSTRAP_TOKEN=".length).trim().replace(/^"|"$/g, "");
  } catch {
    /* no file */
  }
  return fallback;
}

export async function waitFor(fn, what, timeoutMs = 20000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${last}`);
}

/** A copy of `config` beside it, with `vars` set in its [vars] table and without its [build] table. */
function configWithVars(config, tag, vars) {
  const original = join(ROOT, config);
  const out = [];
  let inVars = false;
  let inBuild = false;
  for (const line of readFileSync(original, "utf8").split("\n")) {
    const trimmed = line.trim();
    if (trimmed.startsWith("[")) {
      inVars = trimmed === "[vars]";
      inBuild = trimmed === "[build]";
      if (inBuild) continue;
      out.push(line);
      if (inVars) for (const [k, v] of Object.entries(vars)) out.push(`${k} = ${JSON.stringify(v)}`);
      continue;
    }
    if (inBuild || (inVars && Object.keys(vars).some((k) => trimmed.startsWith(`${k} `)))) continue;
    out.push(line);
  }
  const copy = original.replace(/\.toml$/, `.e2e-${tag}.toml`);
  writeFileSync(copy, out.join("\n"));
  return copy;
}

/**
 * Starts both Workers; resolves to { base, pid, stop } once `/v1/health` answers. `vars` go to both Workers.
 * `pid` is wrangler's (its process group holds workerd).
 */
export async function startDev({ vars = {}, tag = "dev", log = "ignore" } = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const state = mkdtempSync(join(tmpdir(), `keygate-${tag}-`));
  const configs = CONFIGS.map((c) => configWithVars(c, `${tag}-${port}`, vars));
  const wrangler = spawn(
    "npx",
    ["wrangler", "dev", ...configs.flatMap((c) => ["-c", c]), "--local", "--ip", "127.0.0.1", "--port", String(port),
      "--persist-to", state, "--show-interactive-dev-session=false"],
    {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", log, "inherit"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", WRANGLER_SEND_ERROR_REPORTS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
    },
  );
  const stop = () => {
    try {
      process.kill(-wrangler.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
    for (const c of configs) rmSync(c, { force: true });
  };
  try {
    await waitFor(async () => (await fetch(`${base}/v1/health`)).ok, "wrangler dev", 120000);
  } catch (e) {
    stop();
    throw e;
  }
  return { base, pid: wrangler.pid, stop };
}
