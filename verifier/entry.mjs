// Keygate's Worker entry: a plain module object, so a request costs no per-request class instance or Proxy, and the
// hot path crosses into Rust as few times as it can. All decisions are Rust's (`verifier/src/lib.rs`, `entry`):
//
//   gate(request)            synchronous: a Response (refusals that need no storage, answers from the isolate
//                            cache), a KV key to read, or undefined;
//   gate_record(request, v)  synchronous: decides on the value KV answered; a Response or undefined;
//   serve(request, v)        async: everything else (the control plane's /admin routes, verify, whoami, rate-limited
//                            keys, the origin).
//
// Panics: a Rust panic traps, and wasm-bindgen's glue (built with its reset-state and abort-handler options; the
// crate's start function schedules the reset on abort) marks the instance terminated; the next call into Rust
// builds a fresh instance. This module turns the failed request into a 500 problem+json, so no panic leaves the
// isolate broken or a request unanswered.

// wasm-bindgen's own ES-module glue (`cargo xtask build-worker gateway`): no worker-build shim, no entrypoint class.
import { gate, gate_record, serve } from "./build/index.js";

// `Problem::internal()`, byte for byte (a test in `verifier/src/tests/entry.rs` keeps them equal).
const INTERNAL =
  '{"type":"urn:keygate:problem:internal","title":"Internal error","status":500,' +
  '"detail":"Keygate hit an unexpected error; the request changed nothing.","code":"INTERNAL"}';

export default {
  async fetch(request, env, ctx) {
    try {
      let step = gate(request, env, ctx);
      let record;
      if (typeof step === "string") {
        try {
          record = await env.KEYS.get(step);
        } catch {
          // `serve` reads it again and answers 503 if storage is still down.
          return await serve(request, env, ctx, undefined);
        }
        step = gate_record(request, env, ctx, record ?? undefined);
      }
      return step ?? (await serve(request, env, ctx, record ?? undefined));
    } catch (error) {
      console.error("keygate: request failed", error);
      return new Response(INTERNAL, { status: 500, headers: { "content-type": "application/problem+json" } });
    }
  },
};
