// Browser end-to-end tests: real Chromium (Debian's, driven by playwright-core) against `wrangler dev` serving the
// built console and both real Workers (bench/dev.mjs starts them). Run by `cargo xtask test` after it has built both (KEYGATE_SKIP_BUILD=1).
// The suite fails on any browser console error not caused by a request the test deliberately makes fail, and saves a
// screenshot of each main page to tests/screenshots/.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { createServer } from 'node:http';
import { createHmac, createSign, generateKeyPairSync } from 'node:crypto';
import { bootstrapToken, startDev, waitFor } from '../../bench/dev.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shots = join(root, 'tests', 'screenshots');
const BOOTSTRAP = bootstrapToken('kgboot_browser_e2e');
// A leak reporter the Workers trust (`KEYGATE_LEAK_PUBLIC_KEYS`), signing as GitHub's secret scanning does.
const reporter = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const LEAK_KEYS = JSON.stringify({
  public_keys: [{ key_identifier: 'browser-reporter', key: reporter.publicKey.export({ type: 'spki', format: 'pem' }) }],
});

async function reportLeak(tokens) {
  const body = JSON.stringify(tokens.map((token) => ({ token, type: 'keygate_api_key', url: 'https://github.com/acme/site/blob/main/.env', source: 'content' })));
  const signature = createSign('SHA256').update(body).sign(reporter.privateKey).toString('base64');
  const res = await fetch(`${base}/v1/leaks`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'github-public-key-identifier': 'browser-reporter', 'github-public-key-signature': signature },
    body,
  });
  return { status: res.status, body: await res.json() };
}

let dev, base, browser, context, page, ownerToken;
const consoleErrors = [];
let allowHttpErrors = false;

async function api(method, path, token, body, extra = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...extra },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

// A gateway request; one that gets no answer within 8 s fails (and a `waitFor` around it tries again) rather than
// holding the suite for undici's five minutes: once, in CI, a single request of an identity-limited key got no
// answer from `wrangler dev` right after the identity's limit changed, while the next ones were served.
function gateway(key) {
  const signal = AbortSignal.timeout(8000);
  return fetch(`${base}/data/items`, { headers: { authorization: `Bearer ${key}` }, signal }).then((r) => r.status, (e) => {
    // Said out loud, so a run shows how often it happens (it is retried by the waitFor around it).
    console.warn(`gateway request of ${key.slice(0, 22)}… got no answer: ${e.name}`);
    throw e;
  });
}

function watch(p) {
  p.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (allowHttpErrors && /Failed to load resource: the server responded with a status of 4\d\d/.test(text)) return;
    consoleErrors.push(text);
  });
  p.on('pageerror', (err) => consoleErrors.push(String(err)));
}

async function shot(name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

async function signIn(p, token) {
  await p.goto(`${base}/admin/`);
  await p.getByTestId('token-input').fill(token);
  await p.getByTestId('sign-in').click();
  await p.getByTestId('user-name').waitFor();
}

function row(p, id) {
  return p.locator(`[data-testid=key-row][data-key-id="${id}"]`);
}

async function act(p, id, action) {
  const r = row(p, id);
  await r.getByTestId('actions').locator('summary').click();
  await r.locator(`[data-action=${action}]`).click();
}

before(async () => {
  mkdirSync(shots, { recursive: true });
  // KEYGATE_TEST_SEED=1: the suggestions test makes a key look 40 days old (POST /admin/v1/test/seed).
  dev = await startDev({ vars: { KEYGATE_BOOTSTRAP_TOKEN: BOOTSTRAP, KEYGATE_LEAK_PUBLIC_KEYS: LEAK_KEYS, KEYGATE_TEST_SEED: '1' }, tag: 'browser' });
  base = dev.base;
  const boot = await api('POST', '/admin/v1/bootstrap', BOOTSTRAP, { organization_name: 'Acme', email: 'olive@acme.test', name: 'Olive Owner' });
  assert.equal(boot.status, 201);
  ownerToken = boot.body.console_token;
  assert.equal((await api('POST', '/admin/v1/projects', ownerToken, { slug: 'acme-shop', name: 'Acme shop' })).status, 201);
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
  page = await context.newPage();
  watch(page);
});

after(async () => {
  await browser?.close();
  dev?.stop();
});

// An invitation made through the API and redeemed: the new member's console token.
async function member(email, name, role = 'member') {
  const invited = await api('POST', '/admin/v1/invitations', ownerToken, { email, name, role });
  assert.equal(invited.status, 201);
  const joined = await api('POST', '/admin/v1/invitations/redeem', null, { code: invited.body.code });
  assert.equal(joined.status, 201);
  return joined.body;
}

describe('console', () => {
  let keyId, keyText;

  test('a bad console token is refused with a clear message', async () => {
    allowHttpErrors = true;
    await page.goto(`${base}/admin/`);
    await shot('sign-in');
    await page.getByTestId('token-input').fill('kg_live_not_a_token');
    await page.getByTestId('sign-in').click();
    const error = await page.getByTestId('sign-in-error').textContent();
    assert.match(error, /console token is not valid/);
    allowHttpErrors = false;
  });

  test('sign in with the bootstrap console token; the token stays in sessionStorage only', async () => {
    await signIn(page, ownerToken);
    assert.equal(await page.evaluate(() => window.localStorage.length), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('keygate.console_token')), ownerToken);
    assert.ok(!page.url().includes(ownerToken));
    await page.getByTestId('empty-keys').waitFor();
    await shot('keys-empty');
  });

  test('create a key and read it from the show-once modal', async () => {
    await page.getByTestId('create-key').click();
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.testid), 'key-name', 'focus moves into the dialog');
    await page.getByTestId('key-name').fill('Main Website Integration');
    await page.getByTestId('key-project').selectOption('acme-shop');
    await page.locator('[data-permission="data:read"]').check();
    await shot('create-key');
    await page.getByTestId('submit-key').click();
    const shown = await page.getByTestId('new-key').textContent();
    // A key of a project is handed out with its project in front.
    assert.match(shown, /^acme-shop:kg_live_[0-9A-Z]{14}_[0-9A-Za-z]{38}$/);
    keyText = shown;
    keyId = shown.split(':').pop().slice(8, 22);
    assert.match(await page.locator('.dialog').textContent(), /will not be shown again/);
    await page.getByTestId('copy-key').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), keyText);
    await shot('show-once');
    await page.getByTestId('close-new-key').click();
    await row(page, keyId).waitFor();
    assert.equal(await row(page, keyId).getByTestId('status').textContent(), 'Active');
    assert.ok(!(await page.content()).includes(keyText.slice(23)), 'the secret is gone from the page');
  });

  test('using the key shows usage and last used', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await gateway(keyText), 200);
    // The list's usage summaries come from the organization's index, which each key's object updates two seconds
    // after its usage goes quiet (every 30 s under steady use); the key's own page is live.
    await waitFor(async () => {
      await page.reload();
      await signedInReady();
      return (await row(page, keyId).getByTestId('usage').textContent()).trim().startsWith('3');
    }, 'usage of 3', 30000);
    assert.notEqual((await row(page, keyId).getByTestId('last-used').textContent()).trim(), 'Never');
    await shot('keys');
  });

  test('revoke: the gateway refuses and the badge changes; activate brings it back', async () => {
    await act(page, keyId, 'revoke');
    await page.getByTestId('confirm').click();
    await waitFor(async () => (await row(page, keyId).getByTestId('status').textContent()) === 'Inactive', 'Inactive badge');
    assert.equal(await gateway(keyText), 401);
    await act(page, keyId, 'activate');
    await page.getByTestId('confirm').click();
    await waitFor(async () => (await row(page, keyId).getByTestId('status').textContent()) === 'Active', 'Active badge');
    assert.equal(await gateway(keyText), 200);
  });

  test('regenerate shows the new key once; the old one stops', async () => {
    await act(page, keyId, 'regenerate');
    await page.getByTestId('confirm').click();
    const fresh = await page.getByTestId('new-key').textContent();
    assert.notEqual(fresh, keyText);
    assert.equal(fresh.split(':').pop().slice(8, 22), keyId, 'same id');
    await page.getByTestId('close-new-key').click();
    assert.equal(await gateway(keyText), 401);
    assert.equal(await gateway(fresh), 200);
    keyText = fresh;
  });

  test('the key page shows details, the usage chart and recent errors', async () => {
    await row(page, keyId).locator('a').first().click();
    await page.getByTestId('key-title').waitFor();
    assert.equal(await page.getByTestId('key-title').textContent(), 'Main Website Integration');
    await page.locator('.chart').nth(1).waitFor();
    assert.equal(await page.locator('.chart svg rect.bar').count(), 24 + 14, 'hourly and daily bars');
    // Three calls, one after activation, one with the regenerated key; the refused ones do not count. Usage of keys
    // without a rate limit reaches the key's object in batches (at most a second late), so reload until it shows.
    await waitFor(async () => {
      await page.reload();
      await page.getByTestId('key-usage').waitFor();
      return /^5 in total/.test(await page.getByTestId('key-usage').textContent());
    }, 'five counted requests');
    await page.getByTestId('no-errors').waitFor();
    await shot('key');
    await page.goBack();
    await row(page, keyId).waitFor();
  });

  test('filters, deactivate (final) and show deactivated keys', async () => {
    const staging = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Staging robot', environment: 'test', permissions: [] });
    assert.equal(staging.status, 201);
    await page.reload();
    await signedInReady();
    await page.getByTestId('filter-environment').selectOption('test');
    await waitFor(async () => (await page.getByTestId('key-row').count()) === 1, 'one staging key');
    await page.getByTestId('filter-environment').selectOption('');
    await waitFor(async () => (await page.getByTestId('key-row').count()) === 2, 'both keys');

    await act(page, keyId, 'deactivate');
    assert.match(await page.locator('.dialog').textContent(), /final/);
    await page.getByTestId('confirm').click();
    await waitFor(async () => (await row(page, keyId).count()) === 0, 'deactivated key hidden');
    assert.equal(await gateway(keyText), 401);
    await page.getByTestId('show-deactivated').check();
    await row(page, keyId).waitFor();
    assert.equal(await row(page, keyId).getByTestId('status').textContent(), 'Deactivated');
    await row(page, keyId).getByTestId('actions').locator('summary').click();
    assert.equal(await row(page, keyId).locator('[data-action=activate]').count(), 0, 'a deactivated key cannot be activated');
    await row(page, keyId).getByTestId('actions').locator('summary').click();
  });

  test('delete is offered for the deactivated key and removes it', async () => {
    await act(page, keyId, 'delete');
    await page.getByTestId('confirm').click();
    await waitFor(async () => (await row(page, keyId).count()) === 0, 'deleted key gone');
    assert.equal((await api('GET', `/admin/v1/keys/${keyId}`, ownerToken)).status, 404);
  });

  test('edit: raising a limit keeps its burst and mode, and an expiry the dialog shows to the minute', async () => {
    const made = await api('POST', '/admin/v1/keys', ownerToken, {
      name: 'Bursty', environment: 'live', permissions: ['data:read'],
      rate_limit: { requests: 100, window_seconds: 60, burst: 10, mode: 'strict' }, expires_at: '2030-01-02T03:04:05Z',
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.record.id;
    await page.reload();
    await signedInReady();
    await act(page, id, 'edit');
    await page.locator('#edit-requests').fill('200');
    await page.getByTestId('confirm').click();
    await page.locator('.dialog').waitFor({ state: 'detached' });
    const after = await api('GET', `/admin/v1/keys/${id}`, ownerToken);
    assert.deepEqual(after.body.rate_limit, { requests: 200, window_seconds: 60, burst: 10, mode: 'strict' });
    assert.equal(Date.parse(after.body.expires_at), Date.parse('2030-01-02T03:04:05Z'));
    assert.deepEqual(after.body.permissions, ['data:read']);
  });

  test('edit: metadata that is not a JSON object is refused under its field; an object is saved and shown', async () => {
    const made = await api('POST', '/admin/v1/keys', ownerToken, {
      name: 'Tagged', environment: 'live', permissions: ['data:read'], meta: { plan: 'free' },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = made.body.record.id;
    await page.reload();
    await signedInReady();
    await act(page, id, 'edit');
    assert.deepEqual(JSON.parse(await page.getByTestId('edit-meta').inputValue()), { plan: 'free' });
    await page.getByTestId('edit-meta').fill('plan = pro');
    allowHttpErrors = true; // the 422 below is the point
    await page.getByTestId('confirm').click();
    await waitFor(async () => (await page.locator('.dialog .field-error').count()) > 0, 'the metadata field error');
    allowHttpErrors = false;
    assert.match(await page.locator('.dialog .field-error').textContent(), /JSON object/);
    assert.deepEqual((await api('GET', `/admin/v1/keys/${id}`, ownerToken)).body.meta, { plan: 'free' }, 'unchanged');
    await page.getByTestId('edit-meta').fill('{"plan": "pro", "region": "eu"}');
    await page.getByTestId('confirm').click();
    await page.locator('.dialog').waitFor({ state: 'detached' });
    const after = await api('GET', `/admin/v1/keys/${id}`, ownerToken);
    assert.deepEqual(after.body.meta, { plan: 'pro', region: 'eu' });
    assert.deepEqual(after.body.permissions, ['data:read'], 'what the edit did not touch stays');
  });

  test('create a usage-limited key; the gateway stops it once its uses are spent and the key page counts them', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
    await page.getByTestId('create-key').click();
    await page.getByTestId('key-name').fill('Two uses');
    await page.locator('[data-permission="data:read"]').check();
    await page.getByTestId('key-uses').fill('2');
    await page.getByTestId('key-refill').selectOption('monthly');
    await page.getByTestId('submit-key').click();
    const shown = await page.getByTestId('new-key').textContent();
    const id = shown.slice(8, 22);
    await page.getByTestId('close-new-key').click();
    const made = await api('GET', `/admin/v1/keys/${id}`, ownerToken);
    assert.deepEqual(made.body.usage_limit, { uses: 2, refill: { amount: 2, interval: 'monthly' } });
    const use = () => fetch(`${base}/data/items`, { headers: { authorization: `Bearer ${shown}` } });
    assert.equal((await use()).headers.get('keygate-remaining'), '1');
    assert.equal((await use()).headers.get('keygate-remaining'), '0');
    const spent = await use();
    assert.equal(spent.status, 429);
    assert.equal((await spent.json()).code, 'USAGE_EXCEEDED');
    await row(page, id).locator('a').first().click();
    await page.getByTestId('key-title').waitFor();
    assert.equal(await page.getByTestId('key-uses').textContent(), '0 of 2 uses left, refilled to 2 every month (UTC)');
    await page.getByRole('link', { name: 'API keys' }).click();
  });

  test('create with an IP allowlist, locked to the organization; the key page shows both and the gateway enforces them', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
    await page.getByTestId('create-key').click();
    await page.getByTestId('key-name').fill('Office robot');
    await page.locator('[data-permission="data:read"]').check();
    await page.getByTestId('key-ips').fill('203.0.113.0/24, 2001:db8::/32');
    await page.getByTestId('key-own-org').check();
    await page.getByTestId('key-meta').fill('{"plan": "pro", "seats": 5}');
    await page.getByTestId('submit-key').click();
    const shown = await page.getByTestId('new-key').textContent();
    const id = shown.slice(8, 22);
    await page.getByTestId('close-new-key').click();
    await row(page, id).locator('a').first().click();
    await page.getByTestId('key-title').waitFor();
    assert.equal(await page.getByTestId('key-ips').textContent(), '203.0.113.0/24, 2001:db8::/32');
    assert.equal(await page.getByTestId('key-orgs').textContent(), 'Its own only');
    assert.deepEqual(JSON.parse(await page.getByTestId('key-meta').textContent()), { plan: 'pro', seats: 5 });
    await shot('key-limits');
    const from = (ip) => fetch(`${base}/data/items`, { headers: { authorization: `Bearer ${shown}`, 'cf-connecting-ip': ip } });
    const passed = await from('203.0.113.5');
    assert.equal(passed.status, 200);
    assert.deepEqual((await passed.json()).meta, { plan: 'pro', seats: 5 }, 'the gateway carries the metadata');
    const refused = await from('198.51.100.5');
    assert.equal(refused.status, 403);
    assert.equal((await refused.json()).code, 'IP_NOT_ALLOWED');
    await page.getByRole('link', { name: 'API keys' }).click();
  });

  test('projects, members, audit log and which-project pages', async () => {
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByTestId('projects-table').waitFor();
    await page.getByTestId('project-slug').fill('telemetry');
    await page.getByTestId('project-name').fill('Telemetry');
    await page.getByTestId('create-project').click();
    await waitFor(async () => (await page.getByTestId('projects-table').textContent()).includes('telemetry'), 'new project');
    await shot('projects');

    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByTestId('members-table').waitFor();
    // The organization's id, which `Keygate-Org` needs, is on the page with a copy button.
    const session = await api('GET', '/admin/v1/session', ownerToken);
    assert.equal(await page.getByTestId('org-id').textContent(), session.body.organization.id);
    // Usage by acting organization (the earlier tests' requests acted for this organization).
    const orgId = session.body.organization.id;
    await waitFor(async () => {
      const usage = await api('GET', '/admin/v1/usage', ownerToken);
      return usage.status === 200 && usage.body.by_organization.some((u) => u.organization === orgId);
    }, 'the usage report');
    await page.reload();
    await page.getByTestId('members-table').waitFor();
    await page.getByTestId('org-usage').waitFor();
    assert.match(await page.getByTestId('org-usage').textContent(), new RegExp(orgId));
    await page.getByTestId('copy-org-id').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), session.body.organization.id);
    // The console says who may do what, from the same rules the API enforces.
    await page.getByTestId('who-may').locator('summary').click();
    assert.match(await page.getByTestId('who-may').textContent(), /activate a key someone else revoked/);
    await shot('members');

    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByTestId('audit-table').waitFor();
    const audit = await page.getByTestId('audit-table').textContent();
    for (const action of ['create', 'revoke', 'activate', 'regenerate', 'deactivate', 'delete']) assert.match(audit, new RegExp(action));
    await shot('audit');

    const probe = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Probe', environment: 'live', project: 'telemetry', permissions: [] });
    await page.getByRole('link', { name: 'Which project?' }).click();
    await page.getByTestId('whoami-key').fill(probe.body.key);
    await page.getByTestId('whoami-submit').click();
    assert.equal(await page.getByTestId('whoami-project').textContent(), 'telemetry');
    await shot('whoami');
  });

  test('invite: the code is shown once; the new member joins with it from the sign-in screen', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByTestId('member-email').fill('mia@acme.test');
    await page.getByTestId('member-name').fill('Mia Member');
    await page.getByTestId('invite').click();
    const code = (await page.getByTestId('shown-secret').textContent()).trim();
    assert.match(code, /^kginv_[0-9A-Z]{14}_[0-9A-Za-z]{32}$/);
    assert.match(await page.locator('.dialog').textContent(), /shown once/);
    await page.getByTestId('copy-secret').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), code);
    await shot('invitation-code');
    await page.getByTestId('close-secret').click();
    await waitFor(async () => (await page.getByTestId('invitations-table').textContent()).includes('mia@acme.test'), 'pending invitation');
    assert.ok(!(await page.content()).includes(code), 'the code is gone from the page');

    const miaContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const mia = await miaContext.newPage();
    watch(mia);
    await mia.goto(`${base}/admin/`);
    await mia.getByTestId('invitation-code').fill(code);
    await mia.getByTestId('join').click();
    const token = (await mia.getByTestId('shown-secret').textContent()).trim();
    assert.match(token, /^kg_live_/);
    await mia.screenshot({ path: join(shots, 'joined.png'), fullPage: true });
    await mia.getByTestId('close-secret').click();
    await mia.getByTestId('user-name').waitFor();
    assert.match(await mia.getByTestId('user-name').textContent(), /Mia Member \(member\)/);
    assert.match(await mia.getByTestId('token-expiry').textContent(), /expires in 30 days/);
    await miaContext.close();

    await page.reload();
    await page.getByTestId('members-table').waitFor();
    await waitFor(async () => (await page.getByTestId('members-table').textContent()).includes('mia@acme.test'), 'Mia is a member');
    // The code works once.
    allowHttpErrors = true;
    const again = await api('POST', '/admin/v1/invitations/redeem', null, { code });
    assert.equal(again.status, 410);
    allowHttpErrors = false;
  });

  test('sessions: a new token shown once, revoked from the list, and it stops at once', async () => {
    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.getByTestId('sessions-table').waitFor();
    assert.equal(await page.getByTestId('current-session').count(), 1);
    await page.getByTestId('session-label').fill('ci runner');
    await page.getByTestId('create-session').click();
    const token = (await page.getByTestId('shown-secret').textContent()).trim();
    await page.getByTestId('close-secret').click();
    assert.equal((await api('GET', '/admin/v1/session', token)).status, 200);
    await waitFor(async () => (await page.getByTestId('session-row').count()) === 2, 'two sessions');
    await shot('sessions');
    await page.getByTestId('revoke-session').click();
    await waitFor(async () => (await page.getByTestId('session-row').count()) === 1, 'one session left');
    allowHttpErrors = true;
    assert.equal((await api('GET', '/admin/v1/session', token)).status, 401);
    allowHttpErrors = false;
  });

  test('a member does not see another member\'s keys; a removed member is signed out of the organization', async () => {
    const ann = await member('ann@acme.test', 'Ann');
    const ben = await member('ben@acme.test', 'Ben');
    const annKey = await api('POST', '/admin/v1/keys', ann.console_token, { name: 'Ann private', environment: 'live', permissions: [] });
    const benContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const benPage = await benContext.newPage();
    watch(benPage);
    await signIn(benPage, ben.console_token);
    await benPage.getByTestId('empty-keys').waitFor();
    assert.equal(await benPage.locator(`[data-key-id="${annKey.body.record.id}"]`).count(), 0);

    // The owner removes Ben: his console stops working in the organization at once.
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByTestId('members-table').waitFor();
    page.once('dialog', (d) => d.accept());
    await page.getByTestId('member-row').filter({ hasText: 'ben@acme.test' }).getByTestId('remove-member').click();
    await waitFor(async () => !(await page.getByTestId('members-table').textContent()).includes('ben@acme.test'), 'Ben removed');
    allowHttpErrors = true;
    await benPage.reload();
    await benPage.getByRole('alert').first().waitFor();
    assert.match(await benPage.getByRole('alert').first().textContent(), /not a member/);
    // The page's other requests are refused too, and their console messages may arrive after the alert: stop the
    // page before 4xx loads count as errors again.
    await benContext.close();
    allowHttpErrors = false;
  });

  test('key creation kept to owners and admins: the owner sets it; a member sees why they cannot create keys', async () => {
    const settings = async () => (await api('GET', '/admin/v1/organization/settings', ownerToken)).body.key_creation;
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByTestId('key-creation').selectOption('owners_and_admins');
    await waitFor(async () => (await settings()) === 'owners_and_admins', 'the setting saved');
    const kim = await member('kim@acme.test', 'Kim');
    const kimContext = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const kimPage = await kimContext.newPage();
    watch(kimPage);
    await signIn(kimPage, kim.console_token);
    await kimPage.getByTestId('create-key-restricted').waitFor();
    assert.equal(await kimPage.getByTestId('create-key').count(), 0);
    await kimPage.getByRole('link', { name: 'Members' }).click();
    assert.ok(await kimPage.getByTestId('key-creation').isDisabled(), 'only owners change the setting');
    await kimContext.close();
    await page.getByTestId('key-creation').selectOption('all_members');
    await waitFor(async () => (await settings()) === 'all_members', 'the setting restored');
  });

  test('legacy key pairs: a filter and a badge set them apart', async () => {
    const pair = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Old robot', environment: 'live', permissions: [], kind: 'pair' });
    assert.equal(pair.status, 201);
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.reload();
    await signedInReady();
    await page.getByTestId('filter-kind').selectOption('pair');
    await row(page, pair.body.record.id).waitFor();
    await waitFor(async () => {
      const rows = await page.getByTestId('key-row').count();
      return rows > 0 && rows === (await page.getByTestId('kind-badge').count());
    }, 'only legacy pairs, each with its badge');
    await shot('legacy-pairs');
    await page.getByTestId('filter-kind').selectOption('single');
    await waitFor(async () => (await row(page, pair.body.record.id).count()) === 0, 'the pair hidden among API keys');
    assert.equal(await page.getByTestId('kind-badge').count(), 0);
    await page.getByTestId('filter-kind').selectOption('');
  });

  test('the permission catalog: an admin describes a permission; the create dialog and the key page show it', async () => {
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByTestId('describe-name').fill('licenses:manage');
    await page.getByTestId('describe-text').fill('License Management');
    await page.getByTestId('describe-save').click();
    await page.locator('[data-testid=permission-row][data-permission="licenses:manage"]').waitFor();
    assert.match(await page.getByTestId('permission-catalog').textContent(), /License Management/);
    await shot('permissions');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
    await page.getByTestId('create-key').click();
    assert.match(await page.locator('[data-permission="licenses:manage"]').locator('..').textContent(), /License Management/);
    await page.getByTestId('key-name').fill('Licensing robot');
    await page.locator('[data-permission="licenses:manage"]').check();
    await page.getByTestId('submit-key').click();
    const id = (await page.getByTestId('new-key').textContent()).slice(8, 22);
    await page.getByTestId('close-new-key').click();
    await row(page, id).locator('a').first().click();
    assert.equal(await page.getByTestId('key-permissions').textContent(), 'licenses:manage (License Management)');
    await page.getByRole('link', { name: 'API keys' }).click();
  });

  test('roles: the owner defines one, gives it to a key in the create dialog, widens it, and the gateway follows', async () => {
    await page.getByRole('link', { name: 'Projects' }).click();
    await page.getByTestId('roles-empty').waitFor();
    await page.getByTestId('role-name').fill('reader');
    await page.getByTestId('role-description').fill('Reads data');
    await page.getByTestId('role-permissions').fill('data:read');
    await page.getByTestId('role-save').click();
    const roleRow = page.locator('[data-testid=role-row][data-role=reader]');
    await roleRow.waitFor();
    assert.equal(await roleRow.getByTestId('role-granted').textContent(), 'data:read');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
    await page.getByTestId('create-key').click();
    assert.match(await page.locator('[data-role=reader]').locator('..').textContent(), /Reads data \(data:read\)/);
    await page.getByTestId('key-name').fill('Role holder');
    await page.locator('[data-role=reader]').check();
    await page.getByTestId('submit-key').click();
    const key = (await page.getByTestId('new-key').textContent()).trim();
    const id = key.slice(8, 22);
    await page.getByTestId('close-new-key').click();
    assert.match(await row(page, id).textContent(), /Roles: reader/);
    assert.equal(await gateway(key), 200, 'the role grants data:read');
    const write = () => fetch(`${base}/streams/s`, { method: 'POST', headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
    assert.equal(await write(), 403);
    // Widen the role from its row's Edit button: the key may write within seconds.
    await page.getByRole('link', { name: 'Projects' }).click();
    await roleRow.getByTestId('role-edit').click();
    assert.equal(await page.getByTestId('role-permissions').inputValue(), 'data:read');
    await page.getByTestId('role-permissions').fill('data:read, data:write');
    await page.getByTestId('role-save').click();
    await waitFor(async () => (await roleRow.getByTestId('role-granted').textContent()) === 'data:read, data:write', 'the widened role');
    assert.equal(await roleRow.getByTestId('role-keys').textContent(), '1');
    await waitFor(async () => (await write()) === 200, 'the key holding the role may write');
    await shot('roles');
    // Deleting a role a key holds is refused with the reason.
    allowHttpErrors = true;
    await roleRow.getByTestId('role-delete').click();
    await page.getByText(/1 key holds this role/).waitFor();
    allowHttpErrors = false;
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
    await row(page, id).locator('a').first().click();
    assert.equal(await page.getByTestId('key-roles').textContent(), 'reader');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('identities: the owner creates one with a shared limit; two keys given it in the dialogs share it', async () => {
    await page.getByRole('link', { name: 'Identities' }).click();
    await page.getByTestId('identities-empty').waitFor();
    await page.getByTestId('identity-external-id').fill('cus_browser');
    await page.getByTestId('identity-name').fill('Browser Corp');
    await page.getByTestId('identity-requests').fill('2');
    await page.getByTestId('identity-meta').fill('{"plan": "pro"}');
    await page.getByTestId('identity-save').click();
    const identityRow = page.locator('[data-testid=identity-row][data-identity=cus_browser]');
    await identityRow.waitFor();
    assert.equal(await identityRow.getByTestId('identity-limit').textContent(), '2 / minute');
    const keys = [];
    for (const name of ['Browser robot one', 'Browser robot two']) {
      await page.getByRole('link', { name: 'API keys' }).click();
      await signedInReady();
      await page.getByTestId('create-key').click();
      await page.getByTestId('key-name').fill(name);
      await page.locator('[data-permission="data:read"]').check();
      await page.getByTestId('key-identity').selectOption({ label: 'Browser Corp (cus_browser)' });
      await page.getByTestId('submit-key').click();
      keys.push((await page.getByTestId('new-key').textContent()).trim());
      await page.getByTestId('close-new-key').click();
    }
    // One limit of 2 for both keys.
    assert.equal(await gateway(keys[0]), 200);
    assert.equal(await gateway(keys[1]), 200);
    assert.equal(await gateway(keys[0]), 429);
    assert.equal(await gateway(keys[1]), 429);
    await row(page, keys[1].slice(8, 22)).locator('a').first().click();
    assert.equal(await page.getByTestId('key-identity').textContent(), 'Browser Corp (cus_browser) · shared limit 2 / minute');
    // Raising the limit from the row's Edit button lets both keys through again.
    await page.getByRole('link', { name: 'Identities' }).click();
    await waitFor(async () => (await identityRow.getByTestId('identity-keys').textContent()) === '2', 'two keys counted');
    await identityRow.getByTestId('identity-edit').click();
    assert.equal(await page.getByTestId('identity-requests').inputValue(), '2');
    await page.getByTestId('identity-requests').fill('100');
    await page.getByTestId('identity-save').click();
    await waitFor(async () => (await identityRow.getByTestId('identity-limit').textContent()) === '100 / minute', 'the raised limit');
    await waitFor(async () => (await gateway(keys[0])) === 200 && (await gateway(keys[1])) === 200, 'both keys under the new limit');
    await shot('identities');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('logs: a key\'s requests are listed within seconds, filtered by status, and on the key page', async () => {
    const made = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Logged', environment: 'live', permissions: ['data:read'] });
    assert.equal(made.status, 201);
    const { key, record: { id } } = made.body;
    const auth = { authorization: `Bearer ${key}`, 'cf-connecting-ip': '203.0.113.50' };
    assert.equal((await fetch(`${base}/data/logged?secret=x`, { headers: auth })).status, 200);
    assert.equal((await fetch(`${base}/streams/logged`, { method: 'POST', headers: auth })).status, 403);
    await page.getByRole('link', { name: 'Logs' }).click();
    await page.getByTestId('log-filters').waitFor();
    await page.getByTestId('log-key').fill(id);
    await page.getByTestId('log-apply').click();
    const lines = page.getByTestId('log-line');
    await waitFor(async () => {
      await page.getByTestId('log-refresh').click();
      await page.waitForTimeout(300);
      return (await lines.count()) === 2;
    }, 'two logged requests');
    const text = await page.getByTestId('log-table').textContent();
    assert.match(text, /GET \/data\/logged/);
    assert.doesNotMatch(text, /secret=x/, 'no query string is kept');
    assert.match(text, /POST \/streams\/logged/);
    assert.match(text, /INSUFFICIENT_PERMISSIONS/);
    assert.match(text, /203\.0\.113\.50/);
    await page.getByTestId('log-status').fill('4xx');
    await page.getByTestId('log-apply').click();
    await waitFor(async () => (await lines.count()) === 1, 'the 4xx filter');
    assert.equal(await page.getByTestId('log-status-cell').textContent(), '403');
    await shot('logs');
    await lines.first().locator('a').click();
    await page.getByTestId('key-title').waitFor();
    assert.equal(await page.getByTestId('key-title').textContent(), 'Logged');
    await waitFor(async () => (await page.getByTestId('log-line').count()) === 2, 'the key page\'s requests');
    // Least privilege: what its passing request needed (the refused one needed nothing it used).
    assert.match(await page.getByTestId('observed-permissions').textContent(), /data:read \(1 request,/);
    assert.equal(await page.getByTestId('no-suggestions').count(), 1, 'a new key: nothing to suggest yet');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('webhooks and canaries: a webhook shown its secret once gets a test event; a one-click canary trips it, and the alert, key page and delivery log show it', async () => {
    // A loopback receiver for the webhook.
    const received = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const hookUrl = `http://127.0.0.1:${server.address().port}/console`;
    try {
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByTestId('webhooks-empty').waitFor();
      await page.getByTestId('webhook-url').fill(hookUrl);
      await page.getByTestId('webhook-description').fill('Security alerts');
      await page.locator('[data-event="canary.tripped"]').check();
      await page.getByTestId('webhook-add').click();
      const secret = (await page.getByTestId('shown-secret').textContent()).trim();
      assert.match(secret, /^whsec_[0-9A-Za-z]{32}$/);
      await page.getByTestId('close-secret').click();
      const hookRow = page.getByTestId('webhook-row');
      await hookRow.waitFor();
      assert.match(await hookRow.textContent(), /canary\.tripped/);
      assert.doesNotMatch(await page.content(), /whsec_/, 'the secret is not shown again');

      // Keygate-Signature: t=<seconds>,v1=<hex>[,v1=<hex> while a rotated-out secret still signs].
      const verified = (r, key = secret) => {
        const parts = r.headers['keygate-signature'].split(',').map((p) => p.split('='));
        const t = parts.find(([k]) => k === 't')[1];
        const expected = createHmac('sha256', key).update(`${t}.${r.body}`).digest('hex');
        return parts.some(([k, v]) => k === 'v1' && v === expected) && Math.abs(Date.now() / 1000 - Number(t)) <= 300;
      };
      await hookRow.getByTestId('webhook-test').click();
      await waitFor(async () => received.some((r) => r.headers['keygate-event'] === 'ping'), 'the test event');
      assert.ok(verified(received.find((r) => r.headers['keygate-event'] === 'ping')), 'signed with the secret shown');

      // One click: a canary key, shown once with where to plant it.
      await page.getByRole('link', { name: 'API keys' }).click();
      await signedInReady();
      await page.getByTestId('create-canary').click();
      const canary = (await page.getByTestId('shown-secret').textContent()).trim();
      assert.match(await page.getByRole('dialog').textContent(), /Plant it where only a thief would look/);
      await page.getByTestId('close-secret').click();
      const trip = await fetch(`${base}/exports/all`, { headers: { authorization: `Bearer ${canary}`, 'user-agent': 'browser-thief/1' } });
      assert.equal(trip.status, 401);
      assert.equal((await trip.json()).code, 'NOT_FOUND', 'refused like an unknown key');

      await waitFor(async () => {
        await page.reload();
        await signedInReady();
        return (await page.getByTestId('canary-alert').count()) === 1;
      }, 'the canary alert on the keys page');
      assert.match(await page.getByTestId('canary-alert').textContent(), /GET \/exports\/all/);
      assert.equal(await page.getByTestId('canary-badge').count(), 1, 'the canary is badged in the list');
      await shot('canary-alert');
      await page.getByTestId('canary-trip').locator('a').click();
      await page.getByTestId('canary-trips').waitFor();
      await waitFor(async () => (await page.getByTestId('canary-trip-row').count()) === 1, 'the trip on the key page');
      assert.equal(await page.getByTestId('canary-trip-agent').textContent(), 'browser-thief/1');

      await waitFor(async () => received.some((r) => r.headers['keygate-event'] === 'canary.tripped'), 'canary.tripped posted');
      assert.ok(verified(received.find((r) => r.headers['keygate-event'] === 'canary.tripped')));
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByTestId('webhook-log').click();
      const deliveries = page.getByTestId('delivery-row');
      await waitFor(async () => {
        await page.getByTestId('delivery-refresh').click();
        await page.waitForTimeout(300);
        return (await page.locator('[data-testid=delivery-row][data-state=delivered]').count()) === 2;
      }, 'both deliveries logged as delivered');
      assert.equal(await deliveries.count(), 2);
      assert.equal(await page.locator('[data-testid=delivery-row][data-event="canary.tripped"]').count(), 1);
      await shot('webhooks');

      // Rotate the secret: the new one is shown once, and the next delivery verifies with it and with the old one.
      await hookRow.getByTestId('webhook-rotate').click();
      const rotated = (await page.getByTestId('shown-secret').textContent()).trim();
      assert.match(rotated, /^whsec_[0-9A-Za-z]{32}$/);
      assert.notEqual(rotated, secret);
      assert.match(await page.getByRole('dialog').textContent(), /signed with both this secret and the previous one/);
      await page.getByTestId('close-secret').click();
      const pings = () => received.filter((r) => r.headers['keygate-event'] === 'ping');
      await hookRow.getByTestId('webhook-test').click();
      await waitFor(async () => pings().length === 2, 'a ping after the rotation');
      assert.ok(verified(pings()[1], rotated), 'signed with the new secret');
      assert.ok(verified(pings()[1], secret), 'and, for a day, the previous one');
    } finally {
      server.close();
    }
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('simulator: the order of checks for a picked key, and the same answer as the gateway', async () => {
    const made = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Simulated', environment: 'live', permissions: ['data:read'] });
    assert.equal(made.status, 201);
    const { key, record: { id } } = made.body;
    await page.getByRole('link', { name: 'Simulator' }).click();
    await page.getByTestId('simulator-form').waitFor();
    await waitFor(async () => (await page.locator(`[data-testid=sim-key] option[value="${id}"]`).count()) === 1, 'the key in the list');
    await page.getByTestId('sim-key').selectOption(id);
    await page.getByTestId('sim-path').fill('/data/items');
    await page.getByTestId('sim-run').click();
    await page.getByTestId('sim-result').waitFor();
    assert.equal(await page.getByTestId('sim-verdict').textContent(), '200 VALID');
    assert.equal(await page.locator('[data-testid=sim-step][data-outcome="passed"]').count(), 10, 'every step passed');
    // A write with a read-only key: refused at step 7, as the gateway refuses it.
    await page.getByTestId('sim-method').selectOption('POST');
    await page.getByTestId('sim-path').fill('/streams/s');
    await page.getByTestId('sim-run').click();
    await waitFor(async () => (await page.getByTestId('sim-verdict').textContent()) === '403 INSUFFICIENT_PERMISSIONS', 'the refusal');
    const refused = page.locator('[data-testid=sim-step][data-outcome="refused here"]');
    assert.equal(await refused.count(), 1);
    assert.match(await refused.textContent(), /permission/);
    assert.match(await page.getByTestId('sim-headers').textContent(), /www-authenticate: Bearer realm="keygate", error="insufficient_scope"/);
    const real = await fetch(`${base}/streams/s`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
    assert.equal(real.status, 403);
    assert.equal((await real.json()).code, 'INSUFFICIENT_PERMISSIONS');
    // A pasted key of another environment: refused at step 3.
    await page.getByTestId('sim-paste').fill(key.replace('kg_live_', 'kg_test_'));
    await page.getByTestId('sim-run').click();
    await waitFor(async () => /^401 (WRONG_ENVIRONMENT|INVALID_FORMAT)$/.test(await page.getByTestId('sim-verdict').textContent()), 'the pasted key');
    await shot('simulator');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('leaks: the owner chooses "alert only", a reported key keeps working and its page says where it leaked; with "revoke", the next one stops', async () => {
    await page.getByRole('link', { name: 'Members' }).click();
    const setting = page.getByTestId('leak-response');
    await setting.waitFor();
    assert.equal(await setting.inputValue(), 'revoke', 'revoke at once by default');
    await setting.selectOption('alert');
    await waitFor(async () => (await api('GET', '/admin/v1/session', ownerToken)).body.settings.leak_response === 'alert', 'the setting saved');
    await page.reload();
    await page.getByTestId('leak-response').waitFor();
    assert.equal(await page.getByTestId('leak-response').inputValue(), 'alert', 'the setting as saved');

    const made = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Leaky', environment: 'live', permissions: ['data:read'] });
    assert.equal(made.status, 201);
    const reported = await reportLeak([made.body.key]);
    assert.equal(reported.status, 200);
    assert.equal(reported.body[0].label, 'true_positive');
    assert.equal(await gateway(made.body.key), 200, 'alert only: the key still works');
    await page.goto(`${base}/admin/keys/${made.body.record.id}`);
    await page.getByTestId('key-title').waitFor();
    await page.getByTestId('key-leaks').waitFor();
    assert.match(await page.getByTestId('key-leak').textContent(), /github\.com\/acme\/site.*alert only/);
    await shot('key-leak');

    // Back to "revoke at once": the next reported key is refused from then on, and its page says so.
    await page.getByRole('link', { name: 'Members' }).click();
    await page.getByTestId('leak-response').selectOption('revoke');
    await waitFor(async () => (await api('GET', '/admin/v1/session', ownerToken)).body.settings.leak_response === 'revoke', 'the setting saved');
    const second = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Leaky too', environment: 'live', permissions: ['data:read'] });
    assert.equal((await reportLeak([second.body.key])).status, 200);
    await waitFor(async () => (await gateway(second.body.key)) === 401, 'the revoked key refused');
    await page.goto(`${base}/admin/keys/${second.body.record.id}`);
    await page.getByTestId('key-leaks').waitFor();
    assert.match(await page.getByTestId('key-leak').textContent(), /revoked for it/);
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('least privilege: a key 40 days old that reads and writes data gets "narrow data:*" and "remove billing:read"; one click removes it', async () => {
    const made = await api('POST', '/admin/v1/keys', ownerToken, { name: 'Overgranted', environment: 'live', permissions: ['data:*', 'billing:read'] });
    assert.equal(made.status, 201);
    const { key, record: { id } } = made.body;
    assert.equal(await gateway(key), 200);
    assert.equal((await fetch(`${base}/streams/s`, { method: 'POST', headers: { authorization: `Bearer ${key}` } })).status, 200, 'data:* covers data:write');
    // Wait until its passing requests' permissions are observed, then make the key look 40 days old (test seed).
    await waitFor(async () => (await api('GET', `/admin/v1/keys/${id}/suggestions`, ownerToken)).body.observed.length === 2, 'both uses observed');
    assert.equal((await api('POST', '/admin/v1/test/seed', ownerToken, { age_key: id, age_days: 40 })).status, 204);
    // The organization learns the key's last use from its usage summary (a couple of seconds after the requests).
    await waitFor(async () => (await api('GET', `/admin/v1/keys/${id}/suggestions`, ownerToken)).body.suggestions.some((x) => x.kind === 'remove_unused'), 'suggestions once the use is summarized');
    await page.goto(`${base}/admin/keys/${id}`);
    await page.getByTestId('suggestions').waitFor();
    await waitFor(async () => (await page.getByTestId('suggestion').count()) > 0, 'suggestions for an old key');
    const texts = await page.getByTestId('suggestion').allTextContents();
    assert.ok(texts.some((t) => /billing:read/.test(t) && /Remove it/.test(t)), texts.join(' | '));
    assert.ok(texts.some((t) => /data:\*/.test(t) && /Narrow it/.test(t)), texts.join(' | '));
    assert.match(await page.getByTestId('observed-permissions').textContent(), /data:read.*data:write|data:write.*data:read/);
    await shot('suggestions');
    // One click: remove the unused billing:read.
    await page.getByTestId('suggestion').filter({ hasText: 'billing:read' }).getByTestId('apply-suggestion').click();
    await waitFor(async () => !/billing:read/.test(await page.getByTestId('key-permissions').textContent()), 'billing:read removed');
    assert.match(await page.getByTestId('key-permissions').textContent(), /data:\*/);
    assert.equal(await gateway(key), 200, 'the key still reads');
    await page.getByRole('link', { name: 'API keys' }).click();
    await signedInReady();
  });

  test('readable at 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByTestId('keys-table').waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `the page scrolls sideways by ${overflow}px`);
    await shot('keys-390px');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  test('sign out signs the token out at Keygate and forgets it', async () => {
    await page.getByTestId('sign-out').click();
    await page.getByTestId('token-input').waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem('keygate.console_token')), null);
    allowHttpErrors = true;
    assert.equal((await api('GET', '/admin/v1/session', ownerToken)).status, 401, 'the token no longer works anywhere');
    allowHttpErrors = false;
  });

  test('no unexpected browser console errors', () => {
    assert.deepEqual(consoleErrors, []);
  });
});

async function signedInReady() {
  await page.getByTestId('user-name').waitFor();
  await page.getByTestId('keys-table').or(page.getByTestId('empty-keys')).waitFor();
}
