// The admin pages as people use them: bridges (add, health cause, cordon, Janus configuration),
// what a noc user may see, users (create, weak password, the new user signs in), the audit log,
// the log level, and changing one's own password. A real vcrmd, Debian's Chromium, elements
// found by role and label.

import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { request as playwrightRequest } from 'playwright-core';
import { createReadyUser, launchBrowser, screenshot, sourceDir, startAppliance, submitSignIn, withPage as pageSession } from './lib/appliance.mjs';

const WRONG_CREDENTIALS = 'Wrong user name or password.';
const BRIDGE = 'lab-bridge';

/** A loopback port nothing listens on: bound once by us, then released. */
function closedPort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

describe('admin pages', { timeout: 240_000 }, () => {
  let appliance = null;
  let browser = null;
  let apiContext = null;
  let adminToken = null;

  before(async () => {
    // Serve the web UI from the source tree, so the pages under test are the ones checked in.
    appliance = await startAppliance({ extraArgs: ['--set', `webui.dir=${path.join(sourceDir, 'webui')}`] });
    browser = await launchBrowser();
    apiContext = await playwrightRequest.newContext({ baseURL: appliance.url, ignoreHTTPSErrors: true });
    const login = await apiContext.post('api/v1/auth/login', { data: { username: 'admin', password: appliance.password } });
    assert.equal(login.status(), 200, 'the admin signs in through the API');
    adminToken = (await login.json()).token;
  });

  after(async () => {
    await apiContext?.dispose().catch(() => {});
    await browser?.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
    await appliance?.stop();
  });

  /** An API call as admin with the bearer token (no CSRF token needed). */
  async function adminApi(method, apiPath, data) {
    const response = await apiContext.fetch(`api/v1${apiPath}`, {
      method, data, headers: { Authorization: `Bearer ${adminToken}` },
    });
    const text = await response.text();
    return { status: response.status(), body: text ? JSON.parse(text) : null };
  }

  const withPage = (name, body, options) => pageSession(browser, name, body, options);

  const mainNav = (page) => page.getByRole('navigation', { name: 'Main' });
  const pageHeading = (page, name) => page.getByRole('heading', { name, level: 1 });

  async function signIn(page, username, password) {
    await page.getByRole('heading', { name: 'Sign in to vcrm' }).waitFor();
    await submitSignIn(page, username, password);
  }

  /** Signs in from the front page and waits for the console. */
  async function signInToConsole(page, username, password) {
    await page.goto(appliance.url);
    await signIn(page, username, password);
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
  }

  /** Opens a page from the main navigation (no reload) and waits for its heading. */
  async function openFromNav(page, linkName, heading = linkName) {
    await mainNav(page).getByRole('link', { name: linkName, exact: true }).click();
    await pageHeading(page, heading).waitFor();
  }

  /** The table row whose row header (first cell) is exactly `name`. */
  function rowOf(page, name) {
    return page.getByRole('row').filter({ has: page.getByRole('rowheader', { name, exact: true }) });
  }

  /** A row's cells by column header: {Name: 'lab-bridge', Pool: 'lab', …} (one table on the page). */
  async function cellsOf(page, row) {
    const headers = (await page.getByRole('columnheader').allInnerTexts()).map((t) => t.trim());
    const cells = [
      ...await row.getByRole('rowheader').allInnerTexts(),
      ...await row.getByRole('cell').allInnerTexts(),
    ].map((t) => t.trim());
    return Object.fromEntries(headers.map((h, i) => [h, cells[i]]));
  }

  test('an admin adds a bridge, sees why it is down, cordons it and gets its Janus configuration', async () => {
    const port = await closedPort();
    await withPage('bridges-admin', async (page, context) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: appliance.url.replace(/\/$/, '') });
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'Bridges');

      await page.getByRole('button', { name: 'Add bridge' }).click();
      const form = page.getByRole('form', { name: 'Add bridge' });
      await form.waitFor();
      // Focus moved into the form for keyboard users.
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'bridge-name');
      await form.getByLabel('Name', { exact: true }).fill(BRIDGE);
      await form.getByLabel('HTTP API URL').fill(`http://127.0.0.1:${port}/janus`);
      await form.getByLabel('Admin API URL').fill(`http://127.0.0.1:${port}/admin`);
      await form.getByLabel('Admin secret').fill('lab-secret');
      await form.getByLabel('Capacity (ports)').fill('40');
      await form.getByLabel('Pool').fill('lab');
      await form.getByRole('button', { name: 'Add bridge' }).click();
      await page.getByRole('status').filter({ hasText: `Bridge ${BRIDGE} added.` }).waitFor();
      assert.equal(await form.count(), 0, 'the form closes once the bridge is added');

      // The probe finds nothing listening: the row turns Down with cause "port", live.
      const row = rowOf(page, BRIDGE);
      await row.getByText('Down', { exact: true }).waitFor({ timeout: 20_000 });
      const cells = await cellsOf(page, row);
      assert.match(cells.Health, /^Down\b/, 'the health is said in words');
      assert.match(cells.Health, /Cause: port/, 'the health cause is shown');
      assert.match(cells.Health, /refused/, 'the health message is shown');
      assert.equal(cells['HTTP API URL'], `http://127.0.0.1:${port}/janus`);
      assert.equal(cells.Pool, 'lab');
      assert.equal(cells['Capacity (ports)'], '40');
      assert.equal(cells.State, 'Enabled');
      assert.equal(cells.Latency, '—');

      // Cordon, from the keyboard; focus stays on the button, which now offers the reverse.
      await row.getByRole('button', { name: `Cordon ${BRIDGE}` }).focus();
      await page.keyboard.press('Enter');
      await row.getByRole('button', { name: `Uncordon ${BRIDGE}` }).waitFor();
      await page.getByRole('status').filter({ hasText: `Bridge ${BRIDGE} is cordoned` }).waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), `Uncordon ${BRIDGE}`);
      assert.equal((await cellsOf(page, row)).State, 'Cordoned');
      const saved = await adminApi('GET', '/bridges');
      assert.equal(saved.body.bridges.find((b) => b.name === BRIDGE)?.state, 'cordoned', 'the server has it cordoned');

      // The Janus configuration, and its Copy button.
      await row.getByRole('button', { name: `Janus configuration ${BRIDGE}` }).click();
      const config = page.getByRole('region', { name: `Janus configuration for ${BRIDGE}` });
      await config.waitFor();
      const configText = await config.locator('pre').textContent();
      assert.match(configText, /backend_user = "bridge-\d+"/);
      assert.match(configText, /broadcast = true/);
      await config.getByRole('button', { name: 'Copy' }).click();
      await config.getByRole('status').filter({ hasText: /Copied|Ctrl\+C/ }).waitFor();
      const copied = await page.evaluate(() => navigator.clipboard.readText().catch(() => null));
      if (copied !== null) assert.equal(copied, configText, 'the clipboard holds the configuration');
    });
  });

  test('a bridge that cannot be added says why next to the field', async () => {
    await withPage('bridges-invalid', async (page) => {
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'Bridges');
      await page.getByRole('button', { name: 'Add bridge' }).click();
      const form = page.getByRole('form', { name: 'Add bridge' });
      await form.getByLabel('Name', { exact: true }).fill(BRIDGE); // already taken
      await form.getByLabel('HTTP API URL').fill('http://127.0.0.1:9/janus');
      await form.getByLabel('Admin API URL').fill('http://127.0.0.1:9/admin');
      await form.getByLabel('Admin secret').fill('x');
      await form.getByRole('button', { name: 'Add bridge' }).click();
      await form.getByRole('alert').filter({ hasText: 'The bridge was not added' }).waitFor();
      await form.getByText(`A bridge named "${BRIDGE}" already exists.`).waitFor();
      assert.equal(await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
    });
  });

  test('an admin edits a bridge, and removing one asks first', async () => {
    const created = await adminApi('POST', '/bridges', {
      name: 'spare', url: 'http://127.0.0.1:9/janus', admin_url: 'http://127.0.0.1:9/admin',
      admin_secret: 'spare-secret', capacity_ports: 10, state: 'disabled',
    });
    assert.equal(created.status, 201);
    await withPage('bridges-edit-remove', async (page) => {
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'Bridges');
      const row = rowOf(page, 'spare');
      assert.match((await cellsOf(page, row)).Health, /Not checked while disabled/);

      await row.getByRole('button', { name: 'Edit spare' }).click();
      const form = page.getByRole('form', { name: 'Edit bridge spare' });
      assert.equal(await form.getByLabel('Admin secret').inputValue(), '', 'the secret is never shown');
      await form.getByLabel('Capacity (ports)').fill('12');
      await form.getByRole('button', { name: 'Save bridge' }).click();
      await page.getByRole('status').filter({ hasText: 'Bridge spare saved.' }).waitFor();
      assert.equal((await cellsOf(page, row)).State, 'Disabled');
      assert.equal((await cellsOf(page, row))['Capacity (ports)'], '12');
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Edit spare', 'focus returns to Edit');

      await row.getByRole('button', { name: 'Remove spare' }).click();
      const dialog = page.getByRole('dialog', { name: 'Remove bridge spare?' });
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      assert.equal(await dialog.count(), 0);
      assert.equal(await row.count(), 1, 'cancel keeps the bridge');

      await row.getByRole('button', { name: 'Remove spare' }).click();
      await dialog.getByRole('button', { name: 'Remove bridge' }).click();
      await page.getByRole('status').filter({ hasText: 'Bridge spare removed.' }).waitFor();
      assert.equal(await row.count(), 0);
      assert.equal((await adminApi('GET', `/bridges/${created.body.id}`)).status, 404);
    });
  });

  test('a noc user sees the bridges but no admin actions and no admin pages', async () => {
    const created = await createReadyUser(appliance, { username: 'nina', password: 'noc-watch-4471-harbour', roles: ['noc'] });
    assert.equal(created.status, 201);
    await withPage('bridges-noc', async (page) => {
      await signInToConsole(page, 'nina', 'noc-watch-4471-harbour');
      const links = await mainNav(page).getByRole('link').allTextContents();
      assert.ok(links.includes('Bridges'), `Bridges is in the nav: ${links}`);
      for (const hidden of ['Users', 'Audit log', 'System']) {
        assert.ok(!links.includes(hidden), `${hidden} is not in the nav: ${links}`);
      }
      await openFromNav(page, 'Bridges');
      const row = rowOf(page, BRIDGE);
      await row.waitFor();
      const cells = await cellsOf(page, row);
      assert.match(cells.Health, /^Down\b/);
      assert.equal(cells.State, 'Cordoned');
      assert.equal(await page.getByRole('button', { name: /^(Add bridge|Edit|Remove|Cordon|Uncordon|Disable|Enable|Janus configuration)/ }).count(), 0,
        'no bridge actions for noc');
      assert.equal(await page.getByRole('columnheader', { name: 'Actions' }).count(), 0);
    });
  });

  test('an admin creates an operator (a weak password is refused first) who then signs in', async () => {
    await withPage('users-create', async (page) => {
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'Users');
      const form = page.getByRole('form', { name: 'Create user' });
      await form.getByLabel('User name').fill('olivia');
      await form.getByLabel('Password', { exact: true }).fill('short');
      await form.getByRole('checkbox', { name: /^Operator/ }).check();
      await form.getByRole('button', { name: 'Create user' }).click();

      // The server's reason, next to the field, and an alert in the form.
      await form.getByRole('alert').filter({ hasText: 'The user was not created' }).waitFor();
      await form.getByText('The password must be at least 10 characters long.').waitFor();
      const password = form.getByLabel('Password', { exact: true });
      assert.equal(await password.getAttribute('aria-invalid'), 'true');
      assert.equal(await page.evaluate(() => document.activeElement?.id), 'new-user-password', 'focus is on the password');
      await screenshot(page, 'users-weak-password');

      await password.fill('Operator-Lantern-2231');
      await form.getByRole('button', { name: 'Create user' }).click();
      await form.getByRole('status').filter({ hasText: 'User olivia created.' }).waitFor();
      assert.equal(await form.getByRole('alert').count(), 0, 'the alert is gone');
      const row = rowOf(page, 'olivia');
      await row.waitFor();
      const cells = await cellsOf(page, row);
      assert.equal(cells.Roles, 'Operator');
      assert.equal(cells.Status, 'Enabled');
      assert.equal(cells['Must change password'], 'Yes');
      assert.equal(cells['Last sign-in'], 'Never');

      // The server refuses to demote the last admin; the reason shows in the roles form.
      await rowOf(page, 'admin (you)').getByRole('button', { name: 'Edit roles admin' }).click();
      const roles = page.getByRole('form', { name: 'Roles of admin' });
      await roles.getByRole('checkbox', { name: /^Admin/ }).uncheck();
      await roles.getByRole('checkbox', { name: /^NOC/ }).check();
      await roles.getByRole('button', { name: 'Save roles' }).click();
      await roles.getByRole('alert').filter({ hasText: /last enabled admin/ }).waitFor();
      await screenshot(page, 'users-last-admin');
      await roles.getByRole('button', { name: 'Cancel' }).click();
      assert.equal((await cellsOf(page, rowOf(page, 'admin (you)'))).Roles, 'Admin');
    });

    await withPage('users-new-user-signs-in', async (page) => {
      await signInToConsole(page, 'olivia', 'Operator-Lantern-2231');
      await page.getByText('olivia', { exact: true }).first().waitFor();
      const links = await mainNav(page).getByRole('link').allTextContents();
      assert.ok(!links.includes('Users') && !links.includes('Bridges'), `an operator sees no admin pages: ${links}`);
    });
  });

  test('the audit log lists the user.create entry', async () => {
    await withPage('audit-log', async (page) => {
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'Audit log');
      await page.getByRole('table').waitFor();
      await page.getByLabel('Action', { exact: true }).fill('user.create');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('status').filter({ hasText: /for action user\.create/ }).waitFor();
      const rows = page.getByRole('row').filter({ has: page.getByRole('cell', { name: 'olivia', exact: true }) });
      const created = rows.filter({ has: page.getByRole('cell', { name: '201', exact: true }) });
      await created.waitFor();
      const cells = await cellsOf(page, created);
      assert.equal(cells.User, 'admin');
      assert.equal(cells.Action, 'user.create');
      assert.equal(cells.Target, 'olivia');
      assert.equal(cells.Request, 'POST /api/v1/users');
      assert.equal(cells.Outcome, 'OK');
      assert.equal(cells.Address, '127.0.0.1');
      // The refused weak-password attempt is there too, older (further down).
      const refused = await cellsOf(page, rows.filter({ has: page.getByRole('cell', { name: '422', exact: true }) }));
      assert.equal(refused.Outcome, 'Failed');
      const order = await page.getByRole('row').filter({ hasText: 'olivia' }).allInnerTexts();
      assert.ok(order.findIndex((t) => /\b201\b/.test(t)) < order.findIndex((t) => /\b422\b/.test(t)), 'newest first');
      assert.match(page.url(), /\?action=user\.create$/, 'the filter is kept in the address');

      // Paging: 55 refused updates of an unknown user make more than one page of user.update.
      for (let i = 0; i < 55; i++) {
        assert.equal((await adminApi('PATCH', '/users/nobody', { disabled: true })).status, 404);
      }
      const total = (await adminApi('GET', '/audit?action=user.update&limit=1000')).body.entries.length;
      assert.ok(total > 50 && total <= 100, `${total} user.update entries`);
      await page.getByLabel('Action', { exact: true }).fill('user.update');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await page.getByRole('status').filter({ hasText: 'Showing 50 entries for action user.update; older ones follow.' }).waitFor();
      await page.getByRole('button', { name: 'Older entries' }).click();
      await page.getByRole('status').filter({ hasText: `Showing ${total} entries for action user.update.` }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'Older entries' }).count(), 0, 'no more pages');
      assert.equal(await page.getByRole('row').filter({ has: page.getByRole('cell', { name: '404', exact: true }) }).count(), 55);
    });
  });

  test('the log level set to debug sticks after a reload', async () => {
    await withPage('system-log-level', async (page) => {
      await signInToConsole(page, 'admin', appliance.password);
      await openFromNav(page, 'System');
      await page.getByText('Current level: info').waitFor();
      await page.getByRole('combobox', { name: 'Log level' }).selectOption('debug');
      await page.getByRole('button', { name: 'Save log level' }).click();
      await page.getByRole('status').filter({ hasText: 'Log level set to debug.' }).waitFor();

      await page.reload();
      await pageHeading(page, 'System').waitFor();
      await page.getByText('Current level: debug').waitFor();
      assert.equal(await page.getByRole('combobox', { name: 'Log level' }).inputValue(), 'debug');
      assert.equal((await adminApi('GET', '/system/log-level')).body.level, 'debug');
      await page.getByText(appliance.version, { exact: true }).first().waitFor();
    });
  });

  test('a user changes their password and the old one no longer signs in', async () => {
    const oldPassword = 'Support-Desk-Pebble-19';
    const newPassword = 'Support-Desk-Meadow-84';
    const created = await adminApi('POST', '/users', { username: 'sam', password: oldPassword, roles: ['support'] });
    assert.equal(created.status, 201);
    await withPage('account-password', async (page) => {
      await signInToConsole(page, 'sam', oldPassword);
      await openFromNav(page, 'Account');
      await page.getByLabel('Current password').fill(oldPassword);
      await page.getByLabel('New password', { exact: true }).fill(newPassword);

      // A mismatch is caught before anything is sent.
      await page.getByLabel('Confirm new password').fill(`${newPassword}x`);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('alert').filter({ hasText: /do not match/ }).waitFor();
      assert.equal(await page.getByLabel('Confirm new password').getAttribute('aria-invalid'), 'true');

      await page.getByLabel('Confirm new password').fill(newPassword);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, 'no error shown');
      await screenshot(page, 'account-password-changed');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signIn(page, 'sam', oldPassword);
      await page.getByRole('alert').filter({ hasText: WRONG_CREDENTIALS }).waitFor();
      await signIn(page, 'sam', newPassword);
      await page.getByRole('button', { name: 'Sign out' }).waitFor();
    });
  });
});
