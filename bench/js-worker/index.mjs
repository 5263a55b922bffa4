// The benchmark's reference: Keygate's gateway checks written by hand in JavaScript, as a team would write them for
// Workers, over the same KV record shape (`shared/src/model.rs` `KeyRecord`, stored as JSON under `key:<id>`).
//
// Same order and answers as Keygate's gateway (README "How a request is checked"): credential from
// `Authorization: Bearer` or `x-api-key` (two different ones: 400), key format v1 and its CRC-32 check with no
// storage read, the environment, one KV read, SHA-256 (Web Crypto) compared in constant time, state and expiry, the
// `Keygate-Org` and `Keygate-Customer` checks, the route's permission, then a JSON echo of the identity. Refusals are
// `application/problem+json` with the same `code`, status and `WWW-Authenticate` challenge as Keygate.
//
// Left out, because the benchmark never exercises them: the legacy `apikey` + `apisecret` pair, extra credential
// headers, project-scoped endpoints, regeneration grace secrets, rate limits (Keygate's Durable Object), usage
// counting, forwarding to an origin.
//
// Bindings: `KEYS` (KV). Vars: `KEYGATE_ENVIRONMENT` (default `live`), `CACHE_TTL_MS` (an isolate cache of records,
// like Keygate's; default 0: every request that reaches storage reads KV).

const KEY_FORMAT =
  /^(?:([a-z0-9-]{1,63}):)?(?:([A-Za-z0-9._-]{1,63}):)?kg_(live|test|dev)_([0-9A-HJKMNP-TV-Z]{14})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAX_HEADER_VALUE = 1024;
const ROUTES = [{ method: "GET", prefix: "/data/", permission: "data:read" }, { method: "POST", prefix: "/streams/", permission: "data:write" }];

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[i] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE) of an ASCII string. */
function crc32(text) {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Six base62 digits, most significant first. */
function base62(value) {
  let out = "";
  for (let i = 0; i < 6; i++) {
    out = BASE62[value % 62] + out;
    value = Math.floor(value / 62);
  }
  return out;
}

const PROBLEMS = {
  MISSING_CREDENTIAL: [401, "Send your API key as `Authorization: Bearer <key>`, as `x-api-key: <key>`, or as an `apikey` + `apisecret` pair."],
  AMBIGUOUS_CREDENTIAL: [400, "The request carries two different credentials; send exactly one."],
  INVALID_FORMAT: [401, "The credential is not a well-formed Keygate key; copy it again as it was shown."],
  WRONG_ENVIRONMENT: [401, "The key belongs to another environment: use a key created for this endpoint's environment."],
  NOT_FOUND: [401, "The key is not valid. Check that you copied the current key, or create a new one."],
  REVOKED: [401, "The key has been revoked. Ask its owner to activate it, or use another key."],
  DEACTIVATED: [401, "The key has been deactivated for good; create a new key."],
  EXPIRED: [401, "The key has expired; create a new key or ask its owner to extend it."],
  FORBIDDEN_ORGANIZATION: [403, "The key's owner is not a member of the organization named in `Keygate-Org`."],
  INSUFFICIENT_PERMISSIONS: [403, "The key lacks the permission this request needs."],
  CUSTOMER_NOT_ALLOWED: [403, "The key is restricted to other customers."],
};
const TITLES = { 400: "Bad credential", 401: "Unauthorized", 403: "Forbidden" };

function refuse(code, permission) {
  const [status, detail] = PROBLEMS[code];
  const headers = { "content-type": "application/problem+json" };
  if (code === "MISSING_CREDENTIAL") headers["www-authenticate"] = 'Bearer realm="keygate"';
  else if (code === "AMBIGUOUS_CREDENTIAL") headers["www-authenticate"] = 'Bearer realm="keygate", error="invalid_request"';
  else if (code === "INSUFFICIENT_PERMISSIONS")
    headers["www-authenticate"] = `Bearer realm="keygate", error="insufficient_scope", scope="${permission}"`;
  else if (status === 401)
    headers["www-authenticate"] = `Bearer realm="keygate", error="invalid_token", error_description="${code}"`;
  const body = {
    type: `urn:keygate:problem:${code.toLowerCase().replaceAll("_", "-")}`,
    title: TITLES[status],
    status,
    detail,
    code,
  };
  return new Response(JSON.stringify(body), { status, headers });
}

/** The presented key, `null` when there is none, or `undefined` for two different credentials. */
function credential(headers) {
  const found = [];
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const value = authorization.trim();
    const space = value.indexOf(" ");
    if (space > 0 && value.slice(0, space).toLowerCase() === "bearer") found.push(value.slice(space + 1).trim());
  }
  const apiKey = headers.get("x-api-key");
  if (apiKey !== null) found.push(apiKey.trim());
  if (found.length === 2 && found[0] !== found[1]) return undefined;
  return found.length ? found[0] : null;
}

/** `required` is granted by `held`: equal, or `held` is `prefix:*` and `required` lies under it. */
function grants(held, required) {
  return held.endsWith("*") ? required.startsWith(held.slice(0, -1)) : held === required;
}

const encoder = new TextEncoder();

async function sha256Hex(text) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return hex;
}

/** Constant time with respect to the contents (the length is not secret). */
function sameText(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

const cache = new Map(); // id -> { at, record }: the isolate cache, when CACHE_TTL_MS > 0

async function readRecord(env, id, now) {
  const ttl = Number(env.CACHE_TTL_MS ?? 0);
  if (ttl > 0) {
    const hit = cache.get(id);
    if (hit && now - hit.at < ttl) return hit.record;
  }
  const record = await env.KEYS.get(`key:${id}`, "json");
  if (ttl > 0) {
    if (cache.size >= 10000) cache.clear();
    cache.set(id, { at: now, record });
  }
  return record;
}

export default {
  async fetch(request, env) {
    const now = Date.now();
    const headers = request.headers;
    for (const name of ["authorization", "x-api-key", "keygate-org", "keygate-customer"]) {
      const value = headers.get(name);
      if (value !== null && value.length > MAX_HEADER_VALUE) {
        const body = { type: "urn:keygate:problem:header-too-large", title: "Request header fields too large", status: 431, detail: `The \`${name}\` header is larger than any credential Keygate accepts.`, code: "HEADER_TOO_LARGE" };
        return new Response(JSON.stringify(body), { status: 431, headers: { "content-type": "application/problem+json" } });
      }
    }
    const url = new URL(request.url);
    const route = ROUTES.find((r) => r.method === request.method && url.pathname.startsWith(r.prefix));
    const permission = route?.permission;

    // 1–3: no storage.
    const presented = credential(headers);
    if (presented === null) return refuse("MISSING_CREDENTIAL");
    if (presented === undefined) return refuse("AMBIGUOUS_CREDENTIAL");
    const m = KEY_FORMAT.exec(presented);
    if (m === null) return refuse("INVALID_FORMAT");
    const [, , , environment, id, secret, check] = m;
    const body = `kg_${environment}_${id}_${secret}`;
    if (base62(crc32(body)) !== check) return refuse("INVALID_FORMAT");
    if (environment !== (env.KEYGATE_ENVIRONMENT || "live")) return refuse("WRONG_ENVIRONMENT");

    // 5: one KV read, the secret, the lifecycle.
    const record = await readRecord(env, id, now);
    const hash = await sha256Hex(body);
    if (record === null || record.id !== id || record.environment !== environment || !sameText(hash, record.secret_hash))
      return refuse("NOT_FOUND");
    if (record.state === "revoked") return refuse("REVOKED");
    if (record.state !== "active") return refuse("DEACTIVATED");
    if (record.expires_at && now >= Date.parse(record.expires_at)) return refuse("EXPIRED");

    // 6–7: organization, permission, customer.
    const org = headers.get("keygate-org");
    let organization = record.organization;
    if (org !== null) {
      if (org !== record.organization && !(record.owner_organizations ?? []).includes(org)) return refuse("FORBIDDEN_ORGANIZATION");
      organization = org;
    }
    if (permission && !record.permissions.some((p) => grants(p, permission))) return refuse("INSUFFICIENT_PERMISSIONS", permission);
    const customer = headers.get("keygate-customer");
    const customers = record.customers ?? [];
    if (customer !== null && customers.length > 0 && !customers.includes(customer)) return refuse("CUSTOMER_NOT_ALLOWED");

    // Keygate's echo, field for field (in serde_json's key order).
    return Response.json({
      authenticated: true,
      environment: record.environment,
      key_id: record.id,
      method: request.method,
      name: record.name,
      note: "No ORIGIN_URL is configured, so Keygate answers with the identity it would forward.",
      organization,
      path: url.pathname,
      permissions: record.permissions,
      project: record.project ?? null,
    });
  },
};
