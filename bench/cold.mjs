// Where the gateway's cold start goes: fresh Miniflare instances (one workerd process each) until their first answer
// to `GET /data/items` (no credential), in alternating rounds, for the hand-written JavaScript Worker and three
// builds of Keygate's gateway made from the same `verifier/build/`:
//
//   compile   the entry imports only the `.wasm` module (workerd compiles it) and answers a constant;
//   glue      the entry imports wasm-bindgen's JavaScript glue (evaluated; the module instantiated, its start run)
//             and answers a constant;
//   keygate   the real entry: the first request calls into Rust.
//
// Each step's median difference to the previous one is what that step costs. All four have the gateway's
// bindings to the same stub control plane (as `bench/run.mjs`'s cold starts do). Loopback only; stops by itself.
//
//   node bench/cold.mjs [--rounds 21]

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { ROOT } from "./dev.mjs";
import { CONTROL_STUB, gatewayWorker, jsWorker } from "./miniflare.mjs";

const require = createRequire(path.join(ROOT, "package.json"));
const { Miniflare, Log, LogLevel } = require("miniflare");

const args = process.argv.slice(2);
const rounds = Number(args[args.indexOf("--rounds") + 1] || 21);
if (!(Number.isInteger(rounds) && rounds > 0 && rounds <= 101)) throw new Error("--rounds 1 to 101");
const build = path.join(ROOT, "verifier/build");
if (!fs.existsSync(path.join(build, "index_bg.wasm"))) throw new Error("run `cargo xtask build-worker gateway` first");

/** A copy of the build with another entry module. */
function variant(name, entry) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `keygate-cold-${name}-`));
  fs.mkdirSync(path.join(dir, "build"));
  for (const f of ["index.js", "index_bg.wasm"]) fs.copyFileSync(path.join(build, f), path.join(dir, "build", f));
  fs.writeFileSync(path.join(dir, "entry.mjs"), entry);
  return dir;
}
const dirs = [
  variant("compile", `import wasm from "./build/index_bg.wasm";
export default { fetch() { return new Response("", { status: wasm ? 401 : 500 }); } };`),
  variant("glue", `import { gate } from "./build/index.js";
export default { fetch() { return new Response("", { status: typeof gate === "function" ? 401 : 500 }); } };`),
];
const WORKERS = {
  js: () => [jsWorker({ coldBindings: true }), CONTROL_STUB],
  compile: () => [gatewayWorker({ entry: path.join(dirs[0], "entry.mjs"), root: dirs[0] }), CONTROL_STUB],
  glue: () => [gatewayWorker({ entry: path.join(dirs[1], "entry.mjs"), root: dirs[1] }), CONTROL_STUB],
  keygate: () => [gatewayWorker({}), CONTROL_STUB],
};
const kinds = Object.keys(WORKERS);

async function firstAnswer(kind) {
  const t0 = performance.now();
  const mf = new Miniflare({ host: "127.0.0.1", port: 0, cf: false, log: new Log(LogLevel.WARN), workers: WORKERS[kind]() });
  try {
    const url = await mf.ready;
    const res = await fetch(new URL("/data/items", url), { signal: AbortSignal.timeout(10_000) });
    await res.arrayBuffer();
    if (res.status !== 401) throw new Error(`${kind}: expected 401, got ${res.status}`);
    return performance.now() - t0;
  } finally {
    await mf.dispose();
  }
}

const deadline = setTimeout(() => {
  console.error("bench/cold.mjs: over its time bound, stopping");
  process.exit(1);
}, 30_000 + rounds * kinds.length * 5_000);
try {
  await firstAnswer("js"); // the file cache warm for everyone
  const times = Object.fromEntries(kinds.map((k) => [k, []]));
  for (let i = 0; i < rounds; i++) {
    for (const kind of i % 2 ? [...kinds].reverse() : kinds) times[kind].push(await firstAnswer(kind));
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  console.log(`cold start to first answer, ${rounds} alternating rounds, medians (ms):`);
  let previous = null;
  for (const kind of kinds) {
    const ms = median(times[kind]);
    const step = previous ? ` (+${median(times[kind].map((t, i) => t - times[previous][i])).toFixed(1)} over ${previous})` : "";
    const ratio = median(times[kind].map((t, i) => t / times.js[i]));
    console.log(`  ${kind.padEnd(8)} ${ms.toFixed(0).padStart(4)}  /js ${ratio.toFixed(2)}${step}`);
    previous = kind;
  }
} finally {
  clearTimeout(deadline);
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
}
