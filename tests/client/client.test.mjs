// A client generated from the served OpenAPI document by standard tools builds and passes a smoke run against real
// workerd: openapi-typescript turns control/src/openapi.json into types, `tsc --strict` type-checks smoke.ts against
// them, esbuild bundles it, and it runs against both Workers under `wrangler dev` (bench/dev.mjs).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bootstrapToken, startDev } from '../../bench/dev.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
// control/.dev.vars (made by `cargo xtask dev`) wins over [vars] when it exists.
const BOOTSTRAP = bootstrapToken('kgboot_generated_client_smoke');
let dev;

before(async () => {
  dev = await startDev({ vars: { KEYGATE_BOOTSTRAP_TOKEN: BOOTSTRAP }, tag: 'client' });
});

after(() => dev?.stop());

test('openapi-typescript generates types from the served document, and smoke.ts type-checks against them', () => {
  mkdirSync(join(here, 'generated'), { recursive: true });
  // `--default-non-nullable=false`: a request field with a default may be left out (the tool's default reads every
  // field with a default as present, which holds for answers only).
  const generate = [join(root, 'control/src/openapi.json'), '--default-non-nullable=false', '-o', join(here, 'generated/keygate.d.ts')];
  execFileSync(bin('openapi-typescript'), generate, { stdio: 'pipe' });
  try {
    execFileSync(bin('tsc'), ['-p', join(here, 'tsconfig.json')], { stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`);
  }
});

test('the generated client runs against real workerd: bootstrap, role, identity, key, verify, revoke, problem, audit', async () => {
  const out = join(mkdtempSync(join(tmpdir(), 'keygate-client-')), 'smoke.mjs');
  execFileSync(bin('esbuild'), [join(here, 'smoke.ts'), '--bundle', '--platform=node', '--format=esm', `--outfile=${out}`], { stdio: 'pipe' });
  const { smoke } = await import(pathToFileURL(out).href);
  const lines = [];
  await smoke(dev.base, BOOTSTRAP, (line) => lines.push(line));
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.match(lines[1], /holding reader in cus_generated/);
  assert.match(lines[2], /verified: VALID, roles reader, identity cus_generated/);
});
