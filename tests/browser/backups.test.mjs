// The reference guide's backup steps and their undoing, in the browser, as support does them:
// on Backup/Restore create an archive with a passphrase and watch its progress end, download it
// (the file is a vcrm archive), change the data, upload the archive on Restore (a wrong
// passphrase is refused in words), see what it holds, confirm, follow the restore across the
// appliance's restart and find the data as it was; then Go back to the replaced database and
// find the changed data again, and Discard what going back kept.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import {
  adminCall, createReadyUser, freePort, launchBrowser, screenshot, startAppliance, submitSignIn, withPage as pageSession,
} from './lib/appliance.mjs';

const SUPPORT = { username: 'sam', password: 'Support-Password-31415', roles: ['support'] };
const PASSPHRASE = 'correct horse battery staple';
const MAGIC = Buffer.from('VCRMBAK\0', 'latin1');
const RESTORE_TIMEOUT_MS = 180_000;

async function firstBytes(file, n) {
  const handle = await open(file, 'r');
  try {
    const buffer = Buffer.alloc(n);
    await handle.read(buffer, 0, n, 0);
    return buffer;
  } finally {
    await handle.close();
  }
}

describe('backup and restore', { timeout: 600_000 }, () => {
  let appliance = null;
  let browser = null;
  let dir = null;

  before(async () => {
    appliance = await startAppliance({ fixedHttpsPort: true });
    const made = await createReadyUser(appliance, SUPPORT);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    browser = await launchBrowser();
    dir = await mkdtemp(path.join('/tmp', 'vcrm-backup-files-'));
  });

  after(async () => {
    await browser?.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
    await appliance?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const withPage = (name, body, options) => pageSession(browser, name, body, options);
  const bridgeNames = async () => {
    const answer = await adminCall(appliance, 'GET', '/bridges');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.bridges.map((b) => b.name).sort();
  };
  const addBridge = async (name) => {
    const answer = await adminCall(appliance, 'POST', '/bridges', {
      name, url: 'http://127.0.0.1:9/janus', admin_url: 'http://127.0.0.1:9/admin',
      admin_secret: `${name}-secret`, capacity_ports: 10, state: 'disabled',
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.body));
  };

  /**
   * Waits until the page's restore ends (it follows the restore across the restart); signs in
   * again if the restart ended the session. Returns the Restore region's status text.
   */
  async function waitForRestoreEnd(page, region) {
    const finished = region.getByRole('status').filter({ hasText: /^(Restore finished|Went back)/ });
    const failed = region.getByRole('alert').filter({ hasText: /failed/ });
    const signIn = page.getByRole('button', { name: 'Sign in' });
    const deadline = Date.now() + RESTORE_TIMEOUT_MS;
    for (;;) {
      await finished.or(failed).or(signIn).first().waitFor({ timeout: Math.max(1000, deadline - Date.now()) });
      if (await signIn.isVisible()) {
        // The restored database has its own sessions: sign in again, the page shows the outcome.
        await submitSignIn(page, SUPPORT.username, SUPPORT.password);
        await page.getByRole('heading', { name: 'Backup/Restore', level: 1 }).waitFor();
        continue;
      }
      if (await failed.count()) assert.fail(`the restore failed: ${await failed.first().textContent()}`);
      return finished.first().textContent();
    }
  }

  test('create and download a backup, change data, restore it, then go back', async () => {
    await addBridge('before-backup');
    await withPage('backups-guide', async (page) => {
      await page.goto(appliance.url);
      await submitSignIn(page, SUPPORT.username, SUPPORT.password);
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();

      // Admin > Maintenance > Backup/Restore: create an archive with a passphrase.
      await page.getByRole('link', { name: 'Backup/Restore' }).click();
      await page.getByRole('heading', { name: 'Backup/Restore', level: 1 }).waitFor();
      const create = page.getByRole('region', { name: 'Create a backup' });
      await create.getByLabel('Passphrase', { exact: true }).fill(PASSPHRASE);
      await create.getByLabel('Repeat the passphrase').fill('not the same passphrase');
      await create.getByRole('button', { name: 'Create backup' }).click();
      await create.getByText('The two passphrases differ: type the same one twice.').waitFor();
      await create.getByLabel('Repeat the passphrase').fill(PASSPHRASE);
      await create.getByRole('button', { name: 'Create backup' }).click();
      const bar = create.getByRole('progressbar', { name: 'Backup progress' });
      await bar.waitFor();
      await create.getByRole('status').filter({ hasText: 'Backup complete.' }).waitFor({ timeout: 120_000 });
      assert.equal(await bar.getAttribute('value'), '100', 'the progress bar ends full');

      // The archive is listed: manual, made by sam.
      const list = page.getByRole('region', { name: 'Backup archives' });
      await list.getByRole('cell', { name: 'Manual (sam)' }).waitFor();

      // Download it to a drive that is not on the server.
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        create.getByRole('link', { name: 'Download the archive' }).click(),
      ]);
      const archive = path.join(dir, download.suggestedFilename());
      await download.saveAs(archive);
      assert.match(download.suggestedFilename(), /^vcrm-.+\.vcrmbak$/);
      assert.deepEqual(await firstBytes(archive, 8), MAGIC, 'the download is a vcrm backup archive');
      const size = (await stat(archive)).size;
      assert.ok(size > 72, `the archive has more than its header (${size} bytes)`);

      // Verify it on the appliance with its passphrase.
      const row = list.getByRole('row').filter({ hasText: 'Manual (sam)' });
      await row.getByRole('button', { name: /^Verify/ }).click();
      await row.getByLabel('Passphrase of this archive').fill(PASSPHRASE);
      await row.getByRole('button', { name: 'Check the archive' }).click();
      await row.getByRole('status').filter({ hasText: /is sound/ }).waitFor();

      // The data changes after the backup.
      await addBridge('after-backup');
      assert.deepEqual(await bridgeNames(), ['after-backup', 'before-backup']);

      // Restore: upload the archive — the connection breaks during the first PATCH, and the
      // upload resumes from the offset the server reports (HEAD) —; a wrong passphrase is
      // refused in words.
      const uploadItem = /\/api\/v1\/restores\/uploads\/[0-9a-f]{32}$/;
      const uploadRequests = [];
      let broken = false;
      await page.route(uploadItem, (route) => {
        uploadRequests.push(route.request().method());
        if (route.request().method() === 'PATCH' && !broken) {
          broken = true;
          return route.abort('connectionreset');
        }
        return route.continue();
      });
      const restore = page.getByRole('region', { name: 'Restore' });
      await restore.getByLabel('Backup archive file').setInputFiles(archive);
      await restore.getByLabel('Passphrase of the archive').fill('a wrong passphrase here');
      await restore.getByRole('button', { name: 'Upload and check' }).click();
      await restore.getByRole('progressbar', { name: 'Upload progress' }).waitFor();
      const refusal = restore.getByRole('alert').filter({ hasText: /^This archive cannot be restored: / });
      await refusal.waitFor({ timeout: 60_000 });
      assert.match(await refusal.textContent(), /passphrase/i, 'the refusal says the passphrase is wrong');
      await restore.getByText(/^Uploaded /).waitFor();
      assert.deepEqual(uploadRequests, ['PATCH', 'HEAD', 'PATCH'], 'a broken PATCH is resumed after a HEAD');
      await page.unroute(uploadItem);

      // The right passphrase: what the archive holds.
      await restore.getByLabel('Passphrase of the archive').fill(PASSPHRASE);
      await restore.getByRole('button', { name: 'Upload and check' }).click();
      await restore.getByRole('heading', { name: 'What the archive holds' }).waitFor({ timeout: 60_000 });
      const holds = await restore.locator('dl').textContent();
      assert.match(holds, /Same server\s*Yes/);
      assert.match(holds, new RegExp(`Product version\\s*${appliance.version.replace(/[.+]/g, '\\$&')}`));
      assert.match(holds, /Users\s*2/, 'admin and sam');
      assert.doesNotMatch(await restore.textContent(), /\[object |undefined|NaN/, 'nothing shows unrendered');
      await screenshot(page, 'backups-restore-contents');

      // Confirm, and follow the restore across the restart.
      await restore.getByRole('button', { name: 'Confirm restore' }).click();
      await page.getByRole('dialog', { name: 'Restore this archive?' }).getByRole('button', { name: 'Restore now' }).click();
      await restore.getByRole('progressbar', { name: 'Restore progress' }).waitFor();
      assert.match(await waitForRestoreEnd(page, restore), /^Restore finished/);
      assert.deepEqual(await bridgeNames(), ['before-backup'], 'the data is as it was at the backup');

      // The replaced database is kept: go back to it.
      const previous = page.getByRole('region', { name: 'Previous database' });
      await previous.getByRole('button', { name: 'Go back' }).click();
      await page.getByRole('dialog', { name: 'Go back to the previous database?' }).getByRole('button', { name: 'Go back' }).click();
      assert.match(await waitForRestoreEnd(page, previous), /^Went back/);
      assert.deepEqual(await bridgeNames(), ['after-backup', 'before-backup'], 'the changed data is back');
      const log = await readFile(appliance.logPath, 'utf8');
      assert.equal(log.match(/RESTARTING/g)?.length, 2, 'vcrmd restarted in place for the restore and for going back');

      // Discard what going back kept (the restored database): nothing is kept any more.
      await previous.getByRole('button', { name: 'Discard' }).click();
      await page.getByRole('dialog', { name: 'Discard the previous database?' }).getByRole('button', { name: 'Discard' }).click();
      await previous.getByRole('status').filter({ hasText: 'The previous database was discarded.' }).waitFor();
      await previous.getByText(/^No previous database is kept/).waitFor();
      assert.equal(await previous.getByRole('button', { name: 'Go back' }).isVisible(), false);
      assert.deepEqual(await bridgeNames(), ['after-backup', 'before-backup'], 'discarding changes nothing live');

      // An archive kept on the appliance is checked from the list without uploading it;
      // Cancel leaves everything as it is.
      await row.getByRole('button', { name: /^Restore/ }).click();
      await restore.getByText(/^Archive: the one of .* kept on this appliance\./).waitFor();
      await restore.getByLabel('Passphrase of the archive').fill(PASSPHRASE);
      await restore.getByRole('button', { name: 'Check the archive' }).click();
      await restore.getByRole('heading', { name: 'What the archive holds' }).waitFor({ timeout: 60_000 });
      await restore.getByRole('button', { name: 'Cancel' }).click();
      await restore.getByRole('status').filter({ hasText: 'Nothing was changed.' }).waitFor();
      assert.equal(await restore.getByRole('button', { name: 'Confirm restore' }).isVisible(), false);
      assert.deepEqual(await bridgeNames(), ['after-backup', 'before-backup']);
    });
  });
  test('the schedule is saved with write-only secrets, and a scheduled backup whose copy fails shows on the dashboard', async () => {
    // An SFTP target nobody listens on: the archive is made, its copy off the box fails.
    const keyFile = path.join(dir, 'sftp-key');
    await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'vcrm-test', '-f', keyFile]);
    const privateKey = await readFile(keyFile, 'utf8');
    const hostKey = (await readFile(`${keyFile}.pub`, 'utf8')).trim();
    const closedPort = await freePort();
    await withPage('backups-schedule', async (page) => {
      await page.goto(appliance.url);
      await submitSignIn(page, SUPPORT.username, SUPPORT.password);
      await page.getByRole('link', { name: 'Backup/Restore' }).click();
      const schedule = page.getByRole('region', { name: 'Schedule' });
      await schedule.getByText('No passphrase is set.').waitFor();
      await schedule.getByLabel('Make a backup every day').check();
      await schedule.getByLabel('Time of day').fill('03:30');
      await schedule.getByLabel('Time zone').selectOption('UTC');
      await schedule.getByLabel('Scheduled archives to keep').fill('3');
      await schedule.getByLabel('Copy each scheduled archive to an SFTP server').check();
      await schedule.getByLabel('SFTP host').fill('127.0.0.1');
      await schedule.getByLabel('SFTP port').fill(String(closedPort));
      await schedule.getByLabel('SFTP user name').fill('backup');
      await schedule.getByLabel('Folder on the SFTP server').fill('vcrm');
      await schedule.getByLabel('SFTP private key').fill(privateKey);
      await schedule.getByLabel('SFTP server host key').fill(hostKey);
      // Without a passphrase the form says what is missing.
      await schedule.getByRole('button', { name: 'Save schedule' }).click();
      await schedule.getByText('Scheduled archives need a passphrase: enter one.').waitFor();
      await schedule.getByLabel('Passphrase for scheduled archives').fill(PASSPHRASE);
      await schedule.getByRole('button', { name: 'Save schedule' }).click();
      await schedule.getByRole('status').filter({ hasText: 'Schedule saved: a backup every day at 03:30 (UTC), keeping 3.' }).waitFor();

      // Reopened, the secrets are never shown: the page only says they are set.
      await page.reload();
      await schedule.getByText('A passphrase is set; it is never shown. Type a new one to replace it.').waitFor();
      await schedule.getByText('A private key is set; it is never shown. Type a new one to replace it.').waitFor();
      assert.equal(await schedule.getByLabel('Passphrase for scheduled archives').inputValue(), '');
      assert.equal(await schedule.getByLabel('SFTP private key').inputValue(), '');
      assert.equal(await schedule.getByLabel('SFTP host').inputValue(), '127.0.0.1');
      assert.match(await schedule.textContent(), /Next scheduled backup: /);
      const stored = await adminCall(appliance, 'GET', '/backups/schedule');
      assert.equal(JSON.stringify(stored.body).includes('PRIVATE KEY'), false, 'the API never gives the key back');

      // Run it now: the archive is made, the copy fails, and the dashboard says so.
      await schedule.getByRole('button', { name: 'Run the scheduled backup now' }).click();
      await schedule.getByRole('status').filter({ hasText: /starts in a moment/ }).waitFor();
      const deadline = Date.now() + 120_000;
      for (;;) {
        const last = (await adminCall(appliance, 'GET', '/backups/schedule')).body.last_run;
        if (last && last.state !== 'running') {
          assert.equal(last.state, 'copy_failed', JSON.stringify(last));
          break;
        }
        assert.ok(Date.now() < deadline, 'the scheduled backup ran within 2 minutes');
        await sleep(500);
      }
      await page.reload();
      await schedule.getByText(/^The scheduled backup of .* failed: The archive was made but not copied off the box/).waitFor();
      const list = page.getByRole('region', { name: 'Backup archives' });
      await list.getByRole('row').filter({ hasText: 'Scheduled' }).getByText('Copy failed').waitFor();

      await page.getByRole('link', { name: 'Dashboard' }).click();
      const pane = page.getByRole('region', { name: 'Backups' });
      await pane.getByText(/^The scheduled backup of .* failed: The archive was made but not copied off the box/).waitFor();
      await screenshot(page, 'backups-dashboard-failure');
    });
  });
});
