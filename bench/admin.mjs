#!/usr/bin/env node
// The control plane at scale: latency of the admin API's common requests in a small and a large organization and
// among many organizations, and workerd's memory while one organization grows to tens of thousands of keys through
// the API. Both Workers run in one Miniflare instance (bench/miniflare.mjs: one workerd process, no dev proxy in
// front, whose own memory would blur the picture) on loopback, with KEYGATE_TEST_SEED=1 so the large states are
// seeded straight into the organizations' objects (synthetic index rows, checked through the API).
//
//   node bench/admin.mjs [--quick] [--requests N] [--grow K] [--json FILE]
//
// --requests: requests per operation and scenario (default 60; --quick: 8).
// --grow: keys created through the API in the memory run (default 25000; --quick: 300), 4 at a time.
// Run from the workspace root after `cargo xtask build-worker` and `cargo xtask build-console` (or through
// `cargo xtask bench --admin`).

import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { startMiniflare } from "./miniflare.mjs";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const arg = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const REQUESTS = Number(arg("--requests", quick ? 8 : 60));
const GROW = Number(arg("--grow", quick ? 300 : 25000));
const JSON_OUT = arg("--json", null);
const BOOTSTRAP = "kgboot_admin_bench";

const median = (xs) => percentile(xs, 50);
function percentile(xs, p) {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
const fmt = (n) => (Number.isFinite(n) ? n.toFixed(1) : "-");

let base;
async function call(method, path, token, { org, body } = {}) {
  const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
  if (org) headers["keygate-org"] = org;
  const t0 = performance.now();
  const res = await fetch(`${base}/admin/v1${path}`, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await res.text();
  const ms = performance.now() - t0;
  return { status: res.status, body: text ? JSON.parse(text) : null, ms };
}

function expect(answer, status, what) {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status}: ${JSON.stringify(answer.body)}`);
  return answer;
}

const workerdPids = () => {
  try {
    return new Set(execFileSync("pgrep", ["workerd"], { encoding: "utf8" }).split("\n").filter(Boolean));
  } catch {
    return new Set();
  }
};

/** Resident memory (kB) of these processes. */
function rssKb(pids) {
  return [...pids].reduce((sum, pid) => sum + Number(execFileSync("ps", ["-o", "rss=", "-p", pid], { encoding: "utf8" })), 0);
}

/** p50/p99 of `n` sequential requests made by `one(i)` (each returns an answer with `ms`). */
async function measure(n, one) {
  const times = [];
  for (let i = 0; i < n; i++) times.push((await one(i)).ms);
  return { p50: median(times), p99: percentile(times, 99) };
}

async function scenario(label, token, org) {
  const created = [];
  const list = await measure(REQUESTS, () => call("GET", "/keys", token, { org }).then((a) => expect(a, 200, "list")));
  const create = await measure(REQUESTS, async (i) => {
    const a = expect(await call("POST", "/keys", token, { org, body: { name: `bench ${i}`, environment: "live" } }), 201, "create");
    created.push(a.body.record.id);
    return a;
  });
  const revoke = await measure(REQUESTS, (i) => call("POST", `/keys/${created[i]}/revoke`, token, { org, body: {} }).then((a) => expect(a, 200, "revoke")));
  const signIn = await measure(REQUESTS, () => call("GET", "/session", token, { org }).then((a) => expect(a, 200, "sign-in")));
  return { label, list, create, revoke, signIn };
}

const earlier = workerdPids();
const dev = await startMiniflare({ vars: { KEYGATE_BOOTSTRAP_TOKEN: BOOTSTRAP, KEYGATE_TEST_SEED: "1" } });
base = dev.base;
const ours = new Set([...workerdPids()].filter((p) => !earlier.has(p)));
const results = { scenarios: [], growth: [] };
try {
  const boot = await fetch(`${base}/admin/v1/bootstrap`, { method: "POST", headers: { authorization: `Bearer ${BOOTSTRAP}` } });
  const { console_token: token, organization } = await boot.json();
  const newOrg = async (name) => expect(await call("POST", "/organizations", token, { body: { name } }), 201, "organization").body.id;
  const seed = async (org, count) => {
    for (let left = count; left > 0; left -= 5000) {
      expect(await call("POST", "/test/seed", token, { org, body: { keys: Math.min(left, 5000) } }), 204, "seed");
    }
  };

  // 1 organization × 10 keys.
  await seed(organization.id, 10);
  results.scenarios.push(await scenario("1 org × 10 keys", token, organization.id));

  // 1 organization × 10,000 keys (checked: the first page is full and pages on).
  const big = await newOrg("big");
  await seed(big, quick ? 1000 : 10000);
  const first = expect(await call("GET", "/keys", token, { org: big }), 200, "list big");
  if (first.body.keys.length !== 50 || !first.body.next_cursor) throw new Error("the seeded organization does not list");
  results.scenarios.push(await scenario(`1 org × ${quick ? "1,000" : "10,000"} keys`, token, big));

  // 200 organizations × 50 keys; measured in the last one.
  const orgs = quick ? 20 : 200;
  let last;
  for (let i = 0; i < orgs; i++) {
    last = await newOrg(`tenant ${i}`);
    await seed(last, 50);
  }
  results.scenarios.push(await scenario(`${orgs} orgs × 50 keys`, token, last));

  // Growth: keys created through the API, 4 at a time, workerd's memory every 1,000 (or every tenth in --quick).
  const grow = await newOrg("growth");
  const step = quick ? Math.max(1, Math.floor(GROW / 10)) : 1000;
  let made = 0;
  let failures = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (made < GROW) {
      const i = made++;
      const a = await call("POST", "/keys", token, { org: grow, body: { name: `grow ${i}`, environment: "live" } });
      if (a.status !== 201) failures++;
      if ((i + 1) % step === 0) {
        const list = await call("GET", "/keys", token, { org: grow });
        results.growth.push({ keys: i + 1, rssMb: rssKb(ours) / 1024, createMs: a.ms, listMs: list.ms, listStatus: list.status });
      }
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  results.growthSeconds = (performance.now() - t0) / 1000;
  results.growthFailures = failures;
} finally {
  await dev.stop();
}

const row = (s, op) => `${fmt(s[op].p50)} / ${fmt(s[op].p99)}`;
console.log("\n| scenario | list first page p50 / p99 ms | create | revoke | sign-in |");
console.log("|---|---:|---:|---:|---:|");
for (const s of results.scenarios) console.log(`| ${s.label} | ${row(s, "list")} | ${row(s, "create")} | ${row(s, "revoke")} | ${row(s, "signIn")} |`);
const baseline = results.scenarios[0];
console.log("\nRatio of p50 to the 1 org × 10 keys scenario (flat means within 2×):");
for (const s of results.scenarios.slice(1)) {
  const r = (op) => (s[op].p50 / baseline[op].p50).toFixed(2);
  console.log(`- ${s.label}: list ${r("list")}, create ${r("create")}, revoke ${r("revoke")}, sign-in ${r("signIn")}`);
}
console.log(`\nGrowth: ${GROW} keys created through the API, 4 at a time, in ${results.growthSeconds.toFixed(0)} s; ${results.growthFailures} failed.`);
console.log("| keys | workerd RSS MB | last create ms | list ms |");
console.log("|---:|---:|---:|---:|");
for (const g of results.growth) console.log(`| ${g.keys} | ${fmt(g.rssMb)} | ${fmt(g.createMs)} | ${fmt(g.listMs)} (${g.listStatus}) |`);
if (JSON_OUT) fs.writeFileSync(JSON_OUT, JSON.stringify(results, null, 2));
if (results.growthFailures > 0 || results.growth.some((g) => g.listStatus !== 200)) process.exit(1);
