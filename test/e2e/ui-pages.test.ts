// The web UI in a real browser (Debian's chromium through playwright-core) against the built kv2: a
// judicator, an executor and gateways. Submit the README's C++ task through the Add form and watch it
// reach Success without a reload, find it in Search, cancel a long task from Search, see the executor
// and the leading judicator, use a phone-sized screen, and give an API token once. Screenshots of each
// page are kept in test-artifacts/.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT } from '../helpers/kv2';
import { joinFlags, startSystem, type System } from '../helpers/system';
import { makeTempDir } from '../helpers/temp';
import { waitFor } from '../helpers/wait';
import { fileHooks } from '../helpers/file-hooks';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');
const available = fs.existsSync(CHROMIUM);
if (!available) process.stdout.write(`skipping the browser tests: ${CHROMIUM} is not installed (apt-get install chromium)\n`);

const hooks = fileHooks();

let system: System;
let base: string;
let browser: BrowserContext;

async function newPage(width = 1280, height = 900): Promise<Page> {
  const page = await browser.newPage();
  await page.setViewportSize({ width, height });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  hooks.after(() => assert.deepEqual(errors, [], 'no script errors on the page'));
  return page;
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  // A sticky header lands mid-page in a full-page shot taken while scrolled.
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(ARTIFACTS, `ui-${name}.png`), fullPage: true });
}

async function api(pathname: string, init: RequestInit = {}): Promise<any> {
  const response = await fetch(`${base}${pathname}`, { ...init, signal: AbortSignal.timeout(30_000) });
  return response.json();
}

describe('web UI', { skip: !available }, () => {
  before(async () => {
    system = await startSystem(hooks, { judicators: 1, executors: 1, slots: 3 });
    base = system.gateways[0]!.url;
    const profile = makeTempDir(hooks, 'kv2-chromium-');
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    hooks.after(() => browser.close());
  });

  it('submits the C++ example through Add and shows it reach Success without a reload', async () => {
    const page = await newPage();
    await page.goto(`${base}/add`);
    await page.click('#add-example');
    await page.fill('#add-user', '3141');
    await shot(page, 'add');
    await page.click('#add-submit');
    await page.waitForURL(/\/get\?id=[a-f0-9]{24}$/);
    const id = new URL(page.url()).searchParams.get('id')!;
    await page.getByText(`Task ${id} submitted successfully!`).waitFor();
    // A marker that a reload would lose: the page must update by itself.
    await page.evaluate(() => ((window as unknown as { marker: number }).marker = 42));
    await page.locator('#task-state .badge', { hasText: 'Success' }).waitFor({ timeout: 60_000 });
    assert.equal(await page.evaluate(() => (window as unknown as { marker?: number }).marker), 42);
    assert.equal((await page.locator('pre[data-field="execute_output"]').textContent())?.trim(), 'Hello, World!');
    await page.locator('.verdict', { hasText: 'Accepted' }).waitFor();
    // The source zip and the output download.
    const download = page.waitForEvent('download');
    await page.click('a[data-file="execute_output"]');
    const file = await download;
    assert.equal(file.suggestedFilename(), `${id}_execute_output.txt`);
    assert.equal(fs.readFileSync((await file.path())!, 'utf8'), 'Hello, World!\n');
    await shot(page, 'task');
  });

  it('refuses bad Add input in the page, before sending anything', async () => {
    const page = await newPage();
    await page.goto(`${base}/add`);
    let posted = 0;
    page.on('request', (request) => void (request.method() === 'POST' && posted++));
    await page.fill('#add-user', '-1');
    await page.fill('#add-compile_source_name', '../x');
    await page.fill('#add-compile_source_str', 'int main(){}');
    await page.click('#add-submit');
    await page.locator('#error-user').waitFor();
    assert.match((await page.locator('#error-user').textContent())!, /whole number/);
    assert.match((await page.locator('#error-compile_source_name').textContent())!, /plain file name/);
    assert.match((await page.locator('#error-execute_command').textContent())!, /command/);
    assert.equal(posted, 0);
  });

  it('finds the task in Search by user, and cancels a long task from Search', async () => {
    const long = await api('/api/task', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ user: 2718, compile_timeout: 0, execute_timeout: 100, execute_command: 'sleep 60' }),
    });
    assert.equal(long.result, 0);
    const page = await newPage();
    await page.goto(`${base}/search`);
    await page.fill('#search-user', '3141');
    await page.click('#search-button');
    // The page first lists every task; wait for the filtered list rather than the first row seen.
    await page.waitForURL(/search\?user=3141/);
    await waitFor(async () => (await page.locator('#tasks-table tbody tr').count()) === 1, { what: 'the search by user to show one task' });
    await page.locator('#tasks-table .badge', { hasText: 'Success' }).waitFor();
    assert.match(page.url(), /search\?user=3141/);
    await shot(page, 'search');

    await page.fill('#search-user', '2718');
    await page.click('#search-button');
    const row = page.locator(`tr[data-id="${long.id}"]`);
    await row.waitFor();
    await row.locator('.badge', { hasText: /Running|Compiling|Pending/ }).waitFor({ timeout: 30_000 });
    await row.locator(`button[data-cancel="${long.id}"]`).click();
    await row.locator('.badge', { hasText: 'Cancelled' }).waitFor({ timeout: 10_000 });
    assert.equal(await row.locator('button[data-cancel]').count(), 0);
    assert.equal((await api(`/api/task?id=${long.id}`)).task.status, 7);
  });

  it('lists the executor and the leading judicator, refreshing by themselves', async () => {
    const page = await newPage();
    await page.goto(`${base}/executors`);
    await page.locator('#executors-table td', { hasText: 'e1' }).first().waitFor();
    await shot(page, 'executors');
    await page.click('nav a[data-nav="judicators"]');
    await page.locator('#judicators-table td', { hasText: '/judicator/service/j1' }).waitFor();
    await page.locator('#judicators-table .badge', { hasText: 'Leader' }).waitFor();
    await shot(page, 'judicators');
    await page.goto(`${base}/`);
    await page.locator('.stat-label', { hasText: 'Executors' }).waitFor();
    await shot(page, 'home');
  });

  it('fits a phone-sized screen', async () => {
    const page = await newPage(390, 844);
    for (const [name, url] of [['phone-search', '/search'], ['phone-add', '/add'], ['phone-executors', '/executors']]) {
      await page.goto(`${base}${url}`);
      await page.locator('main h1').waitFor();
      await waitFor(async () => (await page.locator('.live').isVisible()) || name === 'phone-add', { what: `${url} loaded`, timeoutMs: 20_000 });
      await shot(page, name!);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `${url} is ${overflow} px wider than the screen`);
    }
  });

  it('asks for the API token once and keeps it for the browser session', async () => {
    const url = await securedGateway();
    const page = await newPage();
    await page.goto(`${url}/search`);
    await page.locator('dialog.token-dialog').waitFor();
    await shot(page, 'token');
    await page.fill('#token-input', 's3cret');
    await page.click('dialog button[value="ok"]');
    await page.locator('#tasks-table tbody tr').first().waitFor();
    // Another page in the same tab: no second question.
    await page.click('nav a[data-nav="executors"]');
    await page.locator('#executors-table td', { hasText: 'e1' }).first().waitFor();
    assert.equal(await page.locator('dialog.token-dialog').count(), 0);
  });
});

/** A gateway with an API token, started here because startGateway's health wait has no token. */
async function securedGateway(): Promise<string> {
  const { freePort } = await import('../helpers/ports');
  const { startNode } = await import('../helpers/kv2');
  const port = await freePort();
  const dir = makeTempDir(hooks, 'kv2-gw-token-');
  const node = startNode(hooks, dir, ['gateway', '--server-port', String(port), '--server-host', '127.0.0.1', ...joinFlags(system.judicators, dir), '--server-token', 's3cret', '--boot-check-interval', '0.5']);
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (node.exited) throw new Error(`gateway exited:\n${node.tail()}`);
      return (await fetch(`${url}/api/health`, { headers: { authorization: 'Bearer s3cret' }, signal: AbortSignal.timeout(2_000) })).ok;
    },
    { what: 'the gateway with a token', timeoutMs: 60_000 },
  );
  return url;
}
