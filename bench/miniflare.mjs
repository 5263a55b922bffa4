// Both of Keygate's Workers in one Miniflare instance (one workerd process, no `wrangler dev` proxy in front), with
// the bindings their wrangler configurations declare: for measurements where the dev tooling's own memory and CPU
// would blur the picture (bench/admin.mjs's memory run).

import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./dev.mjs";

const require = createRequire(path.join(ROOT, "package.json"));
const { Miniflare, Log, LogLevel } = require("miniflare");

const compatibilityDate = "2026-04-01";
/** How Miniflare reads a worker-build output: JavaScript modules and compiled wasm. */
export const modulesRules = [
  { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
  { type: "CompiledWasm", include: ["**/*.wasm"] },
];

/** The gateway's release Worker (`verifier/entry.mjs` over `verifier/build/`) with wrangler.toml's bindings and
 * `[vars]`; `entry` and `root` serve another copy of it. */
export function gatewayWorker({ vars = {}, compatibility = compatibilityDate, entry, root } = {}) {
  return {
    name: "keygate",
    modules: true,
    scriptPath: entry ?? path.join(ROOT, "verifier/entry.mjs"),
    // Module names relative to the script's folder, whatever the current folder (no `..` allowed in them).
    modulesRoot: root ?? path.join(ROOT, "verifier"),
    modulesRules,
    compatibilityDate: compatibility,
    kvNamespaces: { KEYS: "keygate-keys" },
    durableObjects: {
      KEY_OBJECTS: { className: "KeyObject", scriptName: "keygate-control", useSQLite: true },
    },
    serviceBindings: { CONTROL: "keygate-control" },
    // The request log's queue, as wrangler.toml binds it: every pass and refusal of a known key costs its line.
    queueProducers: { REQUEST_LOG: "keygate-request-log" },
    bindings: {
      KEYGATE_ENVIRONMENT: "live",
      ORIGIN_URL: "",
      KEYGATE_ROUTES: "GET /data/* data:read, POST /streams/* data:write",
      KEYGATE_CREDENTIAL_HEADERS: "",
      ...vars,
    },
  };
}

/** The control plane's release Worker (`control/build/`) with the bindings `control/wrangler.toml` declares. */
export function controlWorker({ vars = {}, compatibility = compatibilityDate } = {}) {
  return {
    name: "keygate-control",
    modules: true,
    scriptPath: path.join(ROOT, "control/build/index.js"),
    modulesRoot: path.join(ROOT, "control/build"),
    modulesRules,
    compatibilityDate: compatibility,
    kvNamespaces: { KEYS: "keygate-keys" },
    durableObjects: {
      ORG_OBJECTS: { className: "OrgObject", useSQLite: true },
      USER_OBJECTS: { className: "UserObject", useSQLite: true },
      BOOTSTRAP: { className: "BootstrapObject", useSQLite: true },
      KEY_OBJECTS: { className: "KeyObject", useSQLite: true },
    },
    ratelimits: { SIGN_IN_LIMITER: { simple: { limit: 20, period: 60 } } },
    queueConsumers: { "keygate-request-log": { maxBatchSize: 100, maxBatchTimeout: 1, maxRetries: 10 } },
    bindings: { KEYGATE_ENVIRONMENT: "live", ...vars },
  };
}

/** For cold starts: on Cloudflare the control plane is a script of its own that an edge location loads only when a
 * rate-limited key or the console needs it, so the cold start measured is the gateway's alone; the first request
 * needs neither, and this stub stands in for the bindings. */
export const CONTROL_STUB = {
  name: "keygate-control",
  modules: true,
  compatibilityDate,
  script: `export class KeyObject { async fetch() { return new Response("stub", { status: 500 }); } }
export default { fetch() { return new Response("control-stub", { status: 500 }); } };`,
  durableObjects: { KEY_OBJECTS: { className: "KeyObject", useSQLite: true } },
};

/** The hand-written JavaScript Worker (`bench/js-worker/`); with `coldBindings`, the gateway's Durable Object and
 * service bindings to {@link CONTROL_STUB} too (which it never calls), so a cold start differs only in the code. */
export function jsWorker({ cacheTtlMs = 0, coldBindings = false, compatibility = compatibilityDate } = {}) {
  return {
    name: "js",
    modules: true,
    scriptPath: path.join(ROOT, "bench/js-worker/index.mjs"),
    modulesRoot: path.join(ROOT, "bench/js-worker"),
    compatibilityDate: compatibility,
    kvNamespaces: { KEYS: "js-keys" },
    bindings: { KEYGATE_ENVIRONMENT: "live", CACHE_TTL_MS: String(cacheTtlMs) },
    ...(coldBindings
      ? {
          durableObjects: { KEY_OBJECTS: { className: "KeyObject", scriptName: "keygate-control", useSQLite: true } },
          serviceBindings: { CONTROL: "keygate-control" },
        }
      : {}),
  };
}

/** Resolves to { mf, base, stop }. `vars` go to both Workers. State lives in a fresh temporary folder. */
export async function startMiniflare({ vars = {} } = {}) {
  const state = fs.mkdtempSync(path.join(os.tmpdir(), "keygate-mf-"));
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new Log(LogLevel.WARN),
    kvPersist: path.join(state, "kv"),
    durableObjectsPersist: path.join(state, "do"),
    workers: [
      gatewayWorker({ vars }),
      controlWorker({ vars }),
    ],
  });
  const url = await mf.ready;
  const base = url.toString().replace(/\/$/, "");
  return { mf, base, stop: () => mf.dispose() };
}
