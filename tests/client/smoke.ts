// A client of Keygate's admin and verify APIs generated from the served OpenAPI document by standard tools
// (openapi-typescript for the types, openapi-fetch for the calls), type-checked with `tsc --strict` and run
// against real workerd by client.test.mjs. If the document drifted from what Keygate answers, this would not
// type-check, or the run would find the answers not as typed.

import createClient from "openapi-fetch";
import type { paths } from "./generated/keygate";

export type Log = (line: string) => void;

function must<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`no ${what}`);
  return value;
}

export async function smoke(base: string, bootstrapToken: string, log: Log): Promise<void> {
  const anonymous = createClient<paths>({ baseUrl: base });
  const boot = await anonymous.POST("/admin/v1/bootstrap", {
    headers: { authorization: `Bearer ${bootstrapToken}` },
    body: { organization_name: "Generated", email: "gen@client.test", name: "Gen Client" },
  });
  const booted = must(boot.data, `bootstrap (${boot.response.status}: ${JSON.stringify(boot.error)})`);
  log(`bootstrapped ${booted.organization.id} for ${booted.user.email}`);
  const client = createClient<paths>({ baseUrl: base, headers: { authorization: `Bearer ${booted.console_token}` } });

  const role = must((await client.PUT("/admin/v1/roles/{id}", {
    params: { path: { id: "reader" } },
    body: { permissions: ["data:read"], description: "Reads data" },
  })).data, "role");
  const identity = must((await client.POST("/admin/v1/identities", {
    body: { external_id: "cus_generated", rate_limit: { requests: 50, window_seconds: 60 } },
  })).data, "identity");
  const created = must((await client.POST("/admin/v1/keys", {
    body: { name: "generated", environment: "live", roles: [role.name], identity: identity.id },
  })).data, "created key");
  if (!("key" in created)) throw new Error("a single key was asked for");
  const key: string = created.key;
  const record = created.record;
  log(`created ${record.id} holding ${record.roles.join(", ")} in ${record.identity?.external_id}`);

  const shown = must((await client.GET("/admin/v1/keys/{id}", { params: { path: { id: record.id } } })).data, "key");
  if (shown.last_used_at !== null || shown.rate_limit !== null) throw new Error("a fresh key has no use and no limit");
  const list = must((await client.GET("/admin/v1/keys")).data, "list");
  if (!list.keys.some((k) => k.id === record.id)) throw new Error("the key is not listed");
  const page: string | null = list.next_cursor ?? null;

  const service = must((await client.POST("/admin/v1/keys", {
    body: { name: "verifier", environment: "live", permissions: ["keys:verify"] },
  })).data, "service key");
  if (!("key" in service)) throw new Error("a single key was asked for");
  const verified = must((await anonymous.POST("/v1/verify", {
    headers: { authorization: `Bearer ${service.key}` },
    body: { key, permission: "data:read" },
  })).data, "verify");
  if (!verified.valid || verified.code !== "VALID") throw new Error(`verify said ${verified.code}`);
  log(`verified: ${verified.code}, roles ${verified.roles?.join(",")}, identity ${verified.identity?.external_id}`);

  const revoked = must((await client.POST("/admin/v1/keys/{id}/revoke", { params: { path: { id: record.id } } })).data, "revoke");
  if (revoked.status !== "inactive") throw new Error(`revoked key is ${revoked.status}`);
  const refused = await client.GET("/admin/v1/keys/{id}", { params: { path: { id: "ZZZZZZZZZZZZZZ" } } });
  const problem = must(refused.error, "a problem for an unknown key");
  if (problem.code !== "NOT_FOUND" || problem.status !== 404) throw new Error(`unexpected problem ${problem.code}`);
  const audit = must((await client.GET("/admin/v1/audit")).data, "audit");
  log(`audit: ${audit.events.length} events, next page ${audit.next_cursor ?? "none"}; keys page ${page ?? "last"}`);
}
