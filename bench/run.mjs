#!/usr/bin/env node
// Keygate's Worker side by side with a hand-written JavaScript Worker (bench/js-worker) and a constant-answer Worker
// (bench/floor-worker, the runtime's floor), each served by its own Miniflare instance (its own workerd process) on
// loopback, loaded with wrk in alternating A/B rounds. Prints a Markdown table.
//
//   node bench/run.mjs [--quick] [--duration S] [--cycles N] [--connections 1,4] [--cache-ttl-ms MS] [--assets]
//                      [--keygate-build DIR] [--keygate-entry FILE|none] [--scenarios a,b] [--profile SCENARIO]
//                      [--json FILE] [--verbose]
//
// --quick: one short round per scenario and Worker, to check that every scenario answers as expected (seconds).
// --cache-ttl-ms: the isolate record cache of both Workers (Keygate's KEYGATE_CACHE_TTL_MS; default 0 here, so that
//   `pass` and `unknown` read KV on every request; Keygate ships with 5000).
// --keygate-build: where Keygate's index.js and index_bg.wasm are (default verifier/build), e.g. to compare builds.
// --profile: instead of the table, V8's sampling profiler on both Workers (workerd's inspector) for one scenario,
//   printing the functions with the most self time. Build with `KEYGATE_WASM_NAMES=1 cargo xtask build-worker` to
//   see Rust function names rather than wasm-function[N].
// --scenarios: measure only these (pass, pass-rate-limited, unknown, malformed, missing); all are still checked.
// --keygate-entry: the entry module that imports `./build/index.js` (default verifier/entry.mjs); `none` serves the
//   build's index.js itself (worker-build's class entrypoint, as builds before the plain-object entry did).
// --assets: put wrangler.toml's `[assets]` router in front of all three Workers. Off by default: locally it costs
//   about 1.8 ms of workerd CPU per request (on Cloudflare it runs before the Worker and is not billed to it), which
//   would bury the differences; the gateway never reads the ASSETS binding.
// Run from the workspace root after `cargo xtask build-worker` (or through `cargo xtask bench`).

import { spawn, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

import { CONTROL_STUB, controlWorker as controlOptions, gatewayWorker, jsWorker } from "./miniflare.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(path.join(ROOT, "package.json"));
const { Miniflare, Log, LogLevel } = require("miniflare");

// ---------------------------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const o = {
    quick: false,
    duration: 3,
    cycles: 5,
    warmup: 2,
    connections: [1],
    cacheTtlMs: 0,
    assets: false,
    json: null,
    verbose: false,
    coldStarts: 21,
    keygateBuild: "verifier/build",
    keygateEntry: "verifier/entry.mjs",
    only: null,
    profile: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--quick") o.quick = true;
    else if (a === "--duration") o.duration = Number(next());
    else if (a === "--cycles") o.cycles = Number(next());
    else if (a === "--connections") o.connections = next().split(",").map(Number);
    else if (a === "--cache-ttl-ms") o.cacheTtlMs = Number(next());
    else if (a === "--assets") o.assets = true;
    else if (a === "--no-assets") o.assets = false;
    else if (a === "--keygate-build") o.keygateBuild = next();
    else if (a === "--keygate-entry") o.keygateEntry = next();
    else if (a === "--scenarios") o.only = next().split(",");
    else if (a === "--profile") o.profile = next();
    else if (a === "--json") o.json = next();
    else if (a === "--verbose") o.verbose = true;
    else if (a === "--cold-starts") o.coldStarts = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (o.quick) Object.assign(o, { duration: 1, cycles: 1, warmup: 0, coldStarts: 1 });
  // A profile reports no table: no cold starts to measure.
  if (o.profile) o.coldStarts = 0;
  const bad = (n) => !Number.isFinite(n) || n <= 0;
  if (bad(o.duration) || bad(o.cycles) || o.connections.some(bad) || !(o.cacheTtlMs >= 0 && o.cacheTtlMs <= 60000))
    throw new Error("--duration, --cycles and --connections must be positive; --cache-ttl-ms 0 to 60000");
  if (!(Number.isInteger(o.coldStarts) && o.coldStarts >= 0 && o.coldStarts <= 101)) throw new Error("--cold-starts 0 to 101");
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (...a) => console.error("[bench]", ...a);
const WRK = "/usr/bin/wrk";
const CLK_TCK = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
// The whole run is bounded: past this, everything is stopped and the run fails.
const DEADLINE_MS = opts.quick ? 180_000 : 120_000 + opts.cycles * opts.connections.length * 12 * (opts.duration + 1.5) * 1000;

// ---------------------------------------------------------------------------------------------------------------
// Keys and records, in Keygate's format v1 and `KeyRecord`'s serde shape (shared/src/key.rs, model.rs, hash.rs).

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CRC_TABLE = Array.from({ length: 256 }, (_, i) => {
  let c = i;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(text) {
  let crc = 0xffffffff;
  for (const ch of Buffer.from(text, "ascii")) crc = CRC_TABLE[(crc ^ ch) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
function base62Fixed(value) {
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}
function newKey(environment = "live") {
  const id = [...randomBytes(14)].map((b) => CROCKFORD[b & 31]).join("");
  let secret = "";
  while (secret.length < 32) for (const b of randomBytes(64)) if (b < 248 && secret.length < 32) secret += BASE62[b % 62];
  const body = `kg_${environment}_${id}_${secret}`;
  return { id, environment, body, text: body + base62Fixed(crc32(body)) };
}
const sha256Hex = async (text) => Buffer.from(await crypto.subtle.digest("SHA-256", Buffer.from(text))).toString("hex");
// RFC 3339 in UTC without fractions, as `Timestamp` prints whole seconds.
const rfc3339 = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");

async function record(key, extra = {}) {
  const now = rfc3339(Date.now());
  // Field order and omissions follow `KeyRecord`'s derive: empty `customers`, absent `rate_limit`, `expires_at`
  // and `grace` are skipped.
  const r = {
    id: key.id,
    organization: "org_bench",
    project: "acme-shop",
    environment: key.environment,
    name: "Benchmark key",
    owner: "usr_bench",
    owner_organizations: ["org_bench"],
    permissions: ["data:read"],
  };
  if (extra.rate_limit) r.rate_limit = extra.rate_limit;
  Object.assign(r, {
    state: "active",
    kind: "single",
    created_at: now,
    updated_at: now,
    secret_hash: await sha256Hex(key.body),
  });
  return r;
}

// ---------------------------------------------------------------------------------------------------------------
// Processes: what this run started, so that it can stop all of it (by pid) whatever happens.

const started = { miniflares: new Set(), workerdPids: new Set(), children: new Set() };

// Miniflare keeps each instance's storage in a fresh `os.tmpdir()/miniflare-*` folder and removes it in the background
// on dispose, which an exiting process cuts short: give the instances a folder of this run's own, removed at exit.
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), "keygate-bench-"));
process.env.TMPDIR = TMP;

function childrenOf(pid) {
  const out = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const close = stat.lastIndexOf(")");
      const comm = stat.slice(stat.indexOf("(") + 1, close);
      const ppid = Number(stat.slice(close + 2).split(" ")[1]);
      if (ppid === pid) out.push({ pid: Number(entry), comm });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** utime + stime of a process (all its threads, ended ones included), in µs. */
function cpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK;
}

function removeTmp() {
  try {
    fs.rmSync(TMP, { recursive: true, force: true });
  } catch {}
}

function killStarted() {
  for (const child of started.children) {
    try {
      child.kill("SIGKILL");
    } catch {}
  }
  for (const pid of started.workerdPids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
}

async function stopAll() {
  await Promise.allSettled([...started.miniflares].map((mf) => mf.dispose()));
  started.miniflares.clear();
  killStarted();
}

process.on("exit", () => {
  killStarted();
  removeTmp();
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    log(`${signal}: stopping everything this run started`);
    stopAll().finally(() => process.exit(130));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The three Workers.

const compatibilityDate = (() => {
  const m = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").match(/^compatibility_date\s*=\s*"([^"]+)"/m);
  return m ? m[1] : "2026-04-01";
})();
const assetsDir = path.join(ROOT, "admin-ui/dist");

function assetsOption() {
  // Like wrangler's `[assets]` (only with --assets): the asset router sits in front of the Worker. Given to all three
  // Workers alike (the benchmark's route matches no asset), so that the floor includes it.
  if (!opts.assets) return {};
  fs.mkdirSync(assetsDir, { recursive: true });
  return {
    assets: {
      directory: assetsDir,
      binding: "ASSETS",
      routerConfig: { has_user_worker: true },
      assetConfig: { compatibility_date: compatibilityDate },
    },
  };
}

// Keygate's entry module and its build, side by side in the run's folder as in `verifier/` (`entry.mjs` imports
// `./build/index.js`). `--keygate-entry none` serves the build's own `index.js` (worker-build's class entrypoint).
function keygateMain() {
  const dir = path.join(TMP, "keygate");
  if (!fs.existsSync(dir)) {
    fs.mkdirSync(path.join(dir, "build"), { recursive: true });
    for (const f of ["index.js", "index_bg.wasm"])
      fs.copyFileSync(path.resolve(ROOT, opts.keygateBuild, f), path.join(dir, "build", f));
    if (opts.keygateEntry !== "none") fs.copyFileSync(path.resolve(ROOT, opts.keygateEntry), path.join(dir, "entry.mjs"));
  }
  return opts.keygateEntry === "none" ? path.join(dir, "build", "index.js") : path.join(dir, "entry.mjs");
}

// The control plane's Worker as wrangler.toml's `keygate-control` binds it: the keys' objects (rate-limited keys
// call them) and the organizations' objects they report to.
function controlWorker() {
  const build = path.join(ROOT, "control/build");
  if (!fs.existsSync(path.join(build, "index_bg.wasm")))
    throw new Error(`${build}/index_bg.wasm is missing: run \`cargo xtask build-worker control\` first`);
  return controlOptions({ compatibility: compatibilityDate });
}

const WORKERS = {
  keygate: {
    label: "Keygate (Rust)",
    // The gateway and the control plane's Worker (the keys' objects live there), as `cargo xtask dev` runs them.
    options: ({ cold }) => ({
      workers: [
        {
          ...gatewayWorker({
            compatibility: compatibilityDate,
            entry: keygateMain(),
            root: path.dirname(keygateMain()),
            vars: { KEYGATE_CACHE_TTL_MS: String(opts.cacheTtlMs) },
          }),
          ...assetsOption(),
        },
        cold ? CONTROL_STUB : controlWorker(),
      ],
    }),
  },
  js: {
    label: "JS (hand-written)",
    // For cold starts the JS Worker gets the gateway's topology too (the same Durable Object and service bindings
    // to the same stub, which it never calls), so the two starts differ only in the Worker's own code.
    options: ({ cold } = {}) => {
      const js = { ...jsWorker({ cacheTtlMs: opts.cacheTtlMs, coldBindings: cold, compatibility: compatibilityDate }), ...assetsOption() };
      return cold ? { workers: [js, CONTROL_STUB] } : js;
    },
  },
  floor: {
    label: "floor (constant 200)",
    options: () => ({
      name: "floor",
      modules: true,
      scriptPath: path.join(ROOT, "bench/floor-worker/index.mjs"),
      modulesRoot: path.join(ROOT, "bench/floor-worker"),
      compatibilityDate,
      ...assetsOption(),
    }),
  },
};

/** Starts a Worker's Miniflare on a free loopback port; finds its workerd process; times the first answer. */
async function startWorker(kind, { cold = false } = {}) {
  const before = new Set(childrenOf(process.pid).map((c) => c.pid));
  const t0 = performance.now();
  const inspectorPort = opts.profile ? await freePort() : undefined;
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false, // no fetch of Cloudflare's `Request.cf` data: loopback only
    log: new Log(opts.verbose ? LogLevel.DEBUG : LogLevel.WARN),
    ...(inspectorPort ? { inspectorPort } : {}),
    ...WORKERS[kind].options({ cold }),
  });
  started.miniflares.add(mf);
  const url = await mf.ready;
  const readyMs = performance.now() - t0;
  const fresh = childrenOf(process.pid).filter((c) => !before.has(c.pid) && c.comm.startsWith("workerd"));
  if (fresh.length !== 1) throw new Error(`${kind}: expected one new workerd process, found ${JSON.stringify(fresh)}`);
  const pid = fresh[0].pid;
  started.workerdPids.add(pid);
  const res = await fetch(new URL("/data/items", url));
  await res.arrayBuffer();
  const firstAnswerMs = performance.now() - t0;
  return { kind, mf, url: url.toString().replace(/\/$/, ""), pid, readyMs, firstAnswerMs, firstStatus: res.status, inspectorPort };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** V8's sampling profile of a Worker under `wrk` load for one scenario: self time per function, highest first. */
async function profileWorker(worker, s) {
  const WebSocket = require("ws");
  const port = worker.inspectorPort;
  const targets = await (await fetch(`http://127.0.0.1:${port}/json`)).json();
  const target = targets.find((t) => t.webSocketDebuggerUrl.includes(worker.kind)) ?? targets[0];
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  let id = 0;
  const pending = new Map();
  ws.on("message", (m) => {
    const d = JSON.parse(m);
    if (d.id && pending.has(d.id)) pending.get(d.id)(d.result), pending.delete(d.id);
  });
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 50 });
  await call("Profiler.start");
  const w = await runWrk(worker, s.header, opts.duration, 1);
  const { profile } = await call("Profiler.stop");
  ws.close();
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let busy = 0;
  profile.samples.forEach((sample, i) => {
    const f = nodes.get(sample).callFrame;
    const name = `${f.functionName || "(anonymous)"}${f.url ? ` ${f.url.split("/").pop()}:${f.lineNumber + 1}` : ""}`;
    if (name === "(idle)") return;
    self.set(name, (self.get(name) ?? 0) + profile.timeDeltas[i]);
    busy += profile.timeDeltas[i];
  });
  console.log(`\n${WORKERS[worker.kind].label}, ${s.name}: ${w.requests} requests, ${(busy / w.requests).toFixed(0)} µs busy per request in the Worker's isolate`);
  for (const [name, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`${((100 * us) / busy).toFixed(1).padStart(5)} %  ${(us / w.requests).toFixed(1).padStart(6)} µs  ${name.slice(0, 140)}`);
}

async function stopWorker(w) {
  await w.mf.dispose();
  started.miniflares.delete(w.mf);
  started.workerdPids.delete(w.pid);
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios

function scenarios(keys) {
  // A bad checksum: well-formed text, so the check does all the format work before refusing.
  const t = keys.pass.text;
  const flipped = t.slice(0, -1) + (t.at(-1) === "A" ? "B" : "A");
  return [
    { name: "pass", what: "KV hit, 200 echo", header: `Authorization: Bearer ${keys.pass.text}`, status: 200, code: null, js: true },
    {
      name: "pass-rate-limited",
      what: "Durable Object call",
      header: `Authorization: Bearer ${keys.limited.text}`,
      status: 200,
      code: null,
      js: false,
    },
    { name: "unknown", what: "well-formed, unknown id", header: `x-api-key: ${keys.unknown.text}`, status: 401, code: "NOT_FOUND", js: true },
    { name: "malformed", what: "bad checksum, no KV read", header: `Authorization: Bearer ${flipped}`, status: 401, code: "INVALID_FORMAT", js: true },
    { name: "missing", what: "no credential, no KV read", header: "", status: 401, code: "MISSING_CREDENTIAL", js: true },
  ];
}

/** One request through node's fetch: the status and the problem code must be the scenario's. */
async function checkScenario(worker, s) {
  const headers = {};
  if (s.header) {
    const i = s.header.indexOf(":");
    headers[s.header.slice(0, i)] = s.header.slice(i + 1).trim();
  }
  const res = await fetch(`${worker.url}/data/items`, { headers });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {}
  const codeOk = s.code === null ? body?.authenticated === true : body?.code === s.code;
  if (res.status !== s.status || !codeOk)
    throw new Error(`${WORKERS[worker.kind].label} ${s.name}: expected ${s.status} ${s.code ?? "authenticated"}, got ${res.status} ${text.slice(0, 300)}`);
  return { body, status: res.status, text };
}

// ---------------------------------------------------------------------------------------------------------------
// Load

function runWrk(worker, header, seconds, connections) {
  return new Promise((resolve, reject) => {
    const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--timeout", "5s", "-s", path.join(ROOT, "bench/wrk.lua"), `${worker.url}/data/items`];
    const child = spawn(WRK, args, { env: { ...process.env, BENCH_HEADER: header }, stdio: ["ignore", "pipe", "pipe"] });
    started.children.add(child);
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), (seconds + 15) * 1000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      started.children.delete(child);
      const line = out.split("\n").find((l) => l.startsWith("BENCH "));
      if (code !== 0 || !line) return reject(new Error(`wrk failed (${code}): ${err}${out}`));
      resolve(JSON.parse(line.slice(6)));
    });
  });
}

/** One round: wrk against one Worker, with workerd's CPU time read around it. */
async function round(worker, s, seconds, connections) {
  const cpu0 = cpuMicros(worker.pid);
  const w = await runWrk(worker, s.header, seconds, connections);
  const cpu1 = cpuMicros(worker.pid);
  const transport = w.connect_errors + w.read_errors + w.write_errors + w.timeouts;
  const wrongStatus = s.status === 200 ? w.status_errors : w.requests - w.status_errors;
  if (w.requests === 0 || transport > 0 || wrongStatus > 0)
    throw new Error(
      `${WORKERS[worker.kind].label} ${s.name}: ${w.requests} requests, ${transport} transport errors, ${wrongStatus} answers other than ${s.status}`,
    );
  const seconds_ = w.duration_us / 1e6;
  return { rps: w.requests / seconds_, p50: w.p50_us, p99: w.p99_us, cpu: (cpu1 - cpu0) / w.requests, requests: w.requests };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** The `q` quantile (0..1), interpolated between the nearest ranks. */
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (s.length - 1) * q;
  const lo = Math.floor(at);
  return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (at - lo);
};

// ---------------------------------------------------------------------------------------------------------------
// The run

async function main() {
  const t0 = performance.now();
  const build = path.resolve(ROOT, opts.keygateBuild);
  for (const f of ["index.js", "index_bg.wasm"])
    if (!fs.existsSync(path.join(build, f)))
      throw new Error(`${path.join(build, f)} is missing: run \`cargo xtask build-worker\` first`);
  if (!fs.existsSync(WRK)) throw new Error(`${WRK} is missing: apt-get install -y wrk`);

  const wasm = fs.readFileSync(path.join(build, "index_bg.wasm"));
  const sizes = { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length };
  const load = os.loadavg();
  log(`mode ${opts.quick ? "quick" : "full"}: ${opts.cycles} cycle(s) of ${opts.duration}s rounds, connections ${opts.connections.join(",")}, load average ${load.map((x) => x.toFixed(2)).join(" ")}`);

  // Cold starts: a fresh Miniflare (a new workerd process) until its first answer, Keygate and JS alike.
  const cold = { keygate: [], js: [] };
  for (let i = 0; i < opts.coldStarts; i++) {
    // Alternating which starts first, so that neither always pays for a cold file cache or a busier moment.
    for (const kind of i % 2 === 0 ? ["keygate", "js"] : ["js", "keygate"]) {
      const w = await startWorker(kind, { cold: true });
      cold[kind].push({ ready: w.readyMs, first: w.firstAnswerMs });
      await stopWorker(w);
    }
  }
  if (opts.coldStarts > 0)
    log(`cold start (median of ${opts.coldStarts}): Keygate ${median(cold.keygate.map((c) => c.first)).toFixed(0)} ms, JS ${median(cold.js.map((c) => c.first)).toFixed(0)} ms`);

  // The measured instances.
  const workers = {};
  for (const kind of ["keygate", "js", "floor"]) {
    workers[kind] = await startWorker(kind);
    log(`${WORKERS[kind].label}: ${workers[kind].url}, workerd pid ${workers[kind].pid}`);
  }

  // Seeding: the same record JSON in both KV namespaces.
  const keys = { pass: newKey(), limited: newKey(), unknown: newKey() };
  const records = {
    pass: await record(keys.pass),
    limited: await record(keys.limited, { rate_limit: { requests: 1_000_000, window_seconds: 60 } }),
  };
  for (const kind of ["keygate", "js"]) {
    const kv = await workers[kind].mf.getKVNamespace("KEYS");
    for (const name of ["pass", "limited"]) await kv.put(`key:${keys[name].id}`, JSON.stringify(records[name]));
  }

  // Every scenario answers as expected on both Workers before anything is measured.
  const list = scenarios(keys);
  for (const s of list) {
    const k = await checkScenario(workers.keygate, s);
    if (s.code === null && k.body.key_id !== (s.name === "pass" ? keys.pass.id : keys.limited.id))
      throw new Error(`Keygate ${s.name}: echoed ${k.body.key_id}`);
    if (!s.js) continue;
    const j = await checkScenario(workers.js, s);
    // The same answer, byte for byte, keeps the comparison honest; a difference is worth knowing, not fatal.
    if (k.text !== j.text) log(`note: ${s.name}: Keygate and JS answer different bodies:\n  ${k.text}\n  ${j.text}`);
  }
  log("every scenario answers as expected on both Workers");
  if (opts.profile) {
    const s = list.find((x) => x.name === opts.profile);
    if (!s) throw new Error(`--profile: no scenario ${opts.profile}`);
    for (const kind of s.js ? ["keygate", "js"] : ["keygate"]) {
      await round(workers[kind], s, 2, 1); // warm-up
      await profileWorker(workers[kind], s);
    }
    return;
  }
  if (opts.only) {
    const unknown = opts.only.filter((n) => !list.some((s) => s.name === n));
    if (unknown.length) throw new Error(`--scenarios: no scenario ${unknown.join(", ")}`);
    list.splice(0, list.length, ...list.filter((s) => opts.only.includes(s.name)));
  }

  // Warm-up (JIT tiers, the Durable Object, caches), not measured.
  const floorScenario = { name: "floor", header: "", status: 200 };
  if (opts.warmup > 0) {
    for (const s of list) {
      await round(workers.keygate, s, opts.warmup, 1);
      if (s.js) await round(workers.js, s, opts.warmup, 1);
    }
    await round(workers.floor, floorScenario, opts.warmup, 1);
  }

  // Alternating A/B rounds: each cycle runs every scenario on both Workers, Keygate first on odd cycles and JS first
  // on even ones, and the floor once.
  // `${conns}/${scenario}` -> the rounds of each Worker, and the per-cycle Rust/JS ratios and differences.
  const results = {};
  const slot = (k) => (results[k] ??= { keygate: [], js: [], floor: [], ratio: [], cpuRatio: [], cpuDiff: [] });
  for (let cycle = 0; cycle < opts.cycles; cycle++) {
    for (const conns of opts.connections) {
      const f = await round(workers.floor, floorScenario, opts.duration, conns);
      slot(`${conns}/floor`).floor.push(f);
      for (const s of list) {
        const r = slot(`${conns}/${s.name}`);
        const order = s.js ? (cycle % 2 === 0 ? ["keygate", "js"] : ["js", "keygate"]) : ["keygate"];
        const got = {};
        for (const kind of order) got[kind] = await round(workers[kind], s, opts.duration, conns);
        r.keygate.push(got.keygate);
        if (got.js) {
          r.js.push(got.js);
          r.ratio.push(got.keygate.rps / got.js.rps);
          r.cpuRatio.push(got.keygate.cpu / got.js.cpu);
          r.cpuDiff.push(got.keygate.cpu - got.js.cpu);
        }
        if (opts.verbose)
          log(`cycle ${cycle + 1} c${conns} ${s.name}: ${order.map((k) => `${k} ${got[k].rps.toFixed(0)}/s ${got[k].cpu.toFixed(0)}µs`).join(", ")}`);
      }
    }
    log(`cycle ${cycle + 1}/${opts.cycles} done (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }

  // The exact bound under leases: four connections as fast as they go on a fresh 100-per-10-s key (leased, the
  // default) for 4 s, inside one window: exactly 100 admitted, counted from wrk's answers (every other one is a 429).
  const windowKey = newKey();
  const kvK = await workers.keygate.mf.getKVNamespace("KEYS");
  await kvK.put(`key:${windowKey.id}`, JSON.stringify(await record(windowKey, { rate_limit: { requests: 100, window_seconds: 10 } })));
  const w = await runWrk(workers.keygate, `Authorization: Bearer ${windowKey.text}`, 4, 4);
  const windowCheck = { requests: w.requests, admitted: w.requests - w.status_errors };
  log(`leased window: ${windowCheck.requests} requests on 4 connections in 4 s, ${windowCheck.admitted} admitted`);
  if (windowCheck.admitted !== 100)
    throw new Error(`a 100-per-10-s key admitted ${windowCheck.admitted} requests in one window, not 100`);

  // The table.
  const fmt = (x, d = 0) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(d));
  const med = (rounds, key) => (rounds.length ? median(rounds.map((r) => r[key])) : undefined);
  const lines = [];
  lines.push(
    "| scenario | conns | Worker | req/s | p50 µs | p99 µs | CPU µs/req | above floor µs/req | Rust/JS req/s | Rust/JS CPU | Rust−JS CPU µs/req |",
    "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  const json = { mode: opts.quick ? "quick" : "full", options: opts, load_average: load, sizes, cold, window: windowCheck, rows: [] };
  for (const conns of opts.connections) {
    const floorRounds = results[`${conns}/floor`].floor;
    const floorCpu = med(floorRounds, "cpu");
    lines.push(
      `| floor | ${conns} | ${WORKERS.floor.label} | ${fmt(med(floorRounds, "rps"))} | ${fmt(med(floorRounds, "p50"))} | ${fmt(med(floorRounds, "p99"))} | ${fmt(floorCpu)} | 0 | | | |`,
    );
    json.rows.push({ scenario: "floor", conns, worker: "floor", rps: med(floorRounds, "rps"), cpu: floorCpu });
    for (const s of list) {
      const r = results[`${conns}/${s.name}`];
      for (const kind of s.js ? ["keygate", "js"] : ["keygate"]) {
        const rounds = r[kind];
        const cpu = med(rounds, "cpu");
        const ratios =
          kind === "keygate" && s.js
            ? `${fmt(median(r.ratio), 2)} | ${fmt(median(r.cpuRatio), 2)} | ${fmt(median(r.cpuDiff))}`
            : kind === "keygate"
              ? "no JS equivalent | |"
              : " | |";
        lines.push(
          `| ${s.name} | ${conns} | ${WORKERS[kind].label} | ${fmt(med(rounds, "rps"))} | ${fmt(med(rounds, "p50"))} | ${fmt(med(rounds, "p99"))} | ${fmt(cpu)} | ${fmt(cpu - floorCpu)} | ${ratios} |`,
        );
        json.rows.push({
          scenario: s.name,
          conns,
          worker: kind,
          rps: med(rounds, "rps"),
          p50_us: med(rounds, "p50"),
          p99_us: med(rounds, "p99"),
          cpu_us: cpu,
          cpu_above_floor_us: cpu - floorCpu,
          rust_js_rps: kind === "keygate" && s.js ? median(r.ratio) : undefined,
          rust_js_cpu: kind === "keygate" && s.js ? median(r.cpuRatio) : undefined,
          rust_minus_js_cpu_us: kind === "keygate" && s.js ? median(r.cpuDiff) : undefined,
          rounds,
        });
      }
    }
  }
  // A leased rate limit against no limit at all, on the same Worker: per-cycle ratios of req/s.
  const leasedLines = [];
  for (const conns of opts.connections) {
    const limited = results[`${conns}/pass-rate-limited`]?.keygate;
    const plain = results[`${conns}/pass`]?.keygate;
    if (!limited?.length || !plain?.length) continue;
    const ratio = median(limited.map((r, i) => r.rps / plain[i].rps));
    json.rows.push({ scenario: "pass-rate-limited/pass", conns, worker: "keygate", rps_ratio: ratio });
    leasedLines.push(`- Keygate, ${conns} connection(s): pass-rate-limited / pass ${fmt(ratio, 2)} req/s (median of per-cycle ratios; a leased limit of 1,000,000 per 60 s, the most the API allows).`);
  }
  const kb = (n) => `${(n / 1024).toFixed(0)} KiB`;
  const shown = (p) => (path.relative(ROOT, p).startsWith("..") ? p : path.relative(ROOT, p));
  const coldK = cold.keygate;
  const coldJ = cold.js;
  lines.push(
    "",
    ...leasedLines,
    `- Keygate, a leased 100-per-10-s key, 4 connections for 4 s (one window): ${windowCheck.requests} requests, ${windowCheck.admitted} admitted, the rest 429.`,
    `- Keygate \`${shown(path.join(build, "index_bg.wasm"))}\`: ${kb(sizes.raw)} raw (${sizes.raw} B), ${kb(sizes.gzip)} gzip -9 (${sizes.gzip} B).`,
    `- Cold start, new Miniflare instance (workerd process) to its first answer (\`GET /data/items\`, no credential), ${coldK.length} alternating pairs, medians: Keygate ${fmt(median(coldK.map((c) => c.first)))} ms (${fmt(median(coldK.map((c) => c.ready)))} ms until ready), JS ${fmt(median(coldJ.map((c) => c.first)))} ms (${fmt(median(coldJ.map((c) => c.ready)))} ms until ready); Keygate/JS ${median(coldK.map((c, i) => c.first / coldJ[i].first)).toFixed(2)} (median of per-pair ratios; quartiles ${quantile(coldK.map((c, i) => c.first / coldJ[i].first), 0.25).toFixed(2)}–${quantile(coldK.map((c, i) => c.first / coldJ[i].first), 0.75).toFixed(2)}; \`node bench/cold.mjs\` splits the difference). Both Workers have the gateway's bindings (KV, the \`KEY_OBJECTS\` Durable Object binding and the \`CONTROL\` service binding) to the same stub control plane: on Cloudflare the control plane is a script of its own, loaded only where the console or a rate-limited key needs it.`,
    `- ${opts.quick ? "Quick smoke run (not a measurement)" : "Full run"}: medians of ${opts.cycles} alternating A/B cycle(s) of ${opts.duration} s rounds per Worker and scenario, wrk 1 thread, ${opts.connections.join(" and ")} connection(s), \`GET /data/items\` on 127.0.0.1; ratios are medians of per-cycle ratios. Isolate record cache ${opts.cacheTtlMs} ms on both; asset router in front of all three Workers: ${opts.assets ? "yes" : "no"}. Load average at start: ${load.map((x) => x.toFixed(2)).join(" ")} (${os.cpus().length} CPUs).`,
    `- CPU: workerd's utime+stime (\`/proc/<pid>/stat\`) over the round divided by requests; includes Miniflare's own workers in that process (KV, Durable Objects, entry/asset routing) and work after the answer (\`waitUntil\`).`,
  );
  const table = lines.join("\n");
  console.log(table);
  if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(json, null, 2));
  log(`done in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const watchdog = setTimeout(() => {
  log(`the run exceeded its bound of ${(DEADLINE_MS / 1000).toFixed(0)} s: stopping`);
  stopAll().finally(() => process.exit(1));
}, DEADLINE_MS);

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  log(`FAILED: ${e?.stack ?? e}`);
} finally {
  await stopAll();
  clearTimeout(watchdog);
}
process.exit(failed ? 1 : 0);
