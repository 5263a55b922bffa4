#!/usr/bin/env node
// How long a changed role (or identity) takes to reach every key that holds it, at the gateway. Both Workers run in
// one Miniflare instance on loopback (bench/miniflare.mjs). N keys are created holding a role that grants
// data:read; the role is then widened to data:write, and the run times how long until every key may POST
// /streams/* at the gateway (each key's object has written its record to KV, and the gateway's cache has expired:
// KEYGATE_CACHE_TTL_MS is 1 s here). Repeated --runs times, narrowing and widening in turn; medians reported.
//
//   node bench/roles.mjs [--keys N] [--runs R] [--json FILE]
//
// Run from the workspace root after `cargo xtask build-worker` (or through `cargo xtask bench --roles`).

import fs from "node:fs";
import { startMiniflare } from "./miniflare.mjs";

const args = process.argv.slice(2);
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const KEYS = Number(arg("--keys", 200));
const RUNS = Number(arg("--runs", 3));
const JSON_OUT = arg("--json", null);
const BOOTSTRAP = "kgboot_roles_bench";
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];

const dev = await startMiniflare({ vars: { KEYGATE_BOOTSTRAP_TOKEN: BOOTSTRAP, KEYGATE_CACHE_TTL_MS: "1000" } });
const base = dev.base;
const deadline = Date.now() + 10 * 60_000;
try {
  const admin = async (method, path, token, body) => {
    const res = await fetch(`${base}/admin/v1${path}`, {
      method,
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  const { console_token: token } = await admin("POST", "/bootstrap", BOOTSTRAP, { organization_name: "Bench" });
  await admin("PUT", "/roles/writer", token, { permissions: ["data:read"] });
  const keys = [];
  for (let i = 0; i < KEYS; i += 8) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(8, KEYS - i) }, (_, j) =>
        admin("POST", "/keys", token, { name: `k${i + j}`, environment: "live", roles: ["writer"] })),
    );
    keys.push(...batch.map((b) => b.key));
  }
  const writes = (key) =>
    fetch(`${base}/streams/s`, { method: "POST", headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
  const results = [];
  for (let run = 0; run < RUNS; run++) {
    const widen = run % 2 === 0;
    const want = widen ? 200 : 403;
    const t0 = performance.now();
    await admin("PUT", "/roles/writer", token, { permissions: widen ? ["data:read", "data:write"] : ["data:read"] });
    const answered = performance.now() - t0;
    let pending = [...keys];
    let firstAll = null;
    while (pending.length > 0) {
      if (Date.now() > deadline) throw new Error("a role change did not reach every key within the bench's bound");
      const statuses = [];
      for (let i = 0; i < pending.length; i += 16) {
        statuses.push(...(await Promise.all(pending.slice(i, i + 16).map(writes))));
      }
      pending = pending.filter((_, i) => statuses[i] !== want);
      if (pending.length === 0) firstAll = performance.now() - t0;
      else await new Promise((r) => setTimeout(r, 100));
    }
    results.push({ widen, answered_ms: answered, all_keys_ms: firstAll });
    console.log(`run ${run + 1}: ${widen ? "widened" : "narrowed"}; the PUT answered in ${answered.toFixed(0)} ms; all ${KEYS} keys followed in ${(firstAll / 1000).toFixed(2)} s`);
  }
  const summary = {
    keys: KEYS,
    runs: RUNS,
    put_median_ms: median(results.map((r) => r.answered_ms)),
    all_keys_median_s: median(results.map((r) => r.all_keys_ms)) / 1000,
  };
  console.log(`median over ${RUNS} runs: PUT ${summary.put_median_ms.toFixed(0)} ms; every one of ${KEYS} keys at the gateway after ${summary.all_keys_median_s.toFixed(2)} s (cache TTL 1 s)`);
  if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify({ summary, results }, null, 2));
} finally {
  await dev.stop();
}
