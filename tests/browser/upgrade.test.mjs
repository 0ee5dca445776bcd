// The reference guide's Admin > Maintenance > Server Software Upgrade page, in Chromium
// (playwright-core) and in Firefox (puppeteer-core over WebDriver BiDi), over HTTPS with the
// appliance's self-signed certificate: an operator uploads a real signed bundle (this build's
// installation, signed with vcrm-bundle create and the TEST key) with a progress bar and sees what it is; a tampered copy is refused
// with the reason; confirming on an appliance that does not run from a slot (this one runs from
// the build tree) says so (409 not_installed) and changes nothing; the bundle is discarded. An
// admin may allow a downgrade, an operator may not; a discard elsewhere shows at once (the
// upgrade event); support does not see the page.
// The whole upgrade of an installed appliance is upgrade-slot.test.mjs.

import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { adminCall, binDir, createReadyUser, startAppliance } from './lib/appliance.mjs';
import {
  OPERATOR, PAGE, PASSPHRASE, PENDING, TEST_KEY_ID, UPLOAD, buildBundle, esc, nextVersion, paddedBundle,
  tamperedCopy, today, trustTestKey,
} from './lib/bundles.mjs';
import { ENGINES, driverSignIn, withDriverPage } from './lib/drivers.mjs';

const SUPPORT = { username: 'sam', password: 'Support-Password-31415', roles: ['support'] };
const CHECK_TIMEOUT_MS = 120_000; // upload and every hash of a ~50 MB bundle on a busy machine

/** Records every caption the page's progress bars show (a MutationObserver in the page). */
function recordProgressCaptions() {
  window.vcrmCaptions = [];
  new MutationObserver(() => {
    for (const t of document.querySelectorAll('.progress-text')) {
      if (t.textContent && window.vcrmCaptions.at(-1) !== t.textContent) window.vcrmCaptions.push(t.textContent);
    }
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}

describe('the Server Software Upgrade page', { timeout: 900_000 }, () => {
  let appliance = null;
  let dir = null;
  let good = null;
  let tampered = null;
  let older = null;
  let next = null;
  const olderVersion = '0.0.9';

  before(async () => {
    appliance = await startAppliance();
    await trustTestKey(appliance.root);
    for (const user of [OPERATOR, SUPPORT]) {
      const made = await createReadyUser(appliance, user);
      assert.equal(made.status, 201, JSON.stringify(made.body));
    }
    dir = await mkdtemp(path.join('/tmp', 'vcrm-upgrade-page-'));
    next = nextVersion(appliance.version);
    const buildDir = path.dirname(binDir);
    // Larger than two upload chunks (8 MiB), so the bar is seen part way.
    good = await paddedBundle(buildDir, dir, `vcrm-${next}.bin`, {
      version: next, notes: `vcrm ${next}: the browser test's release.\nSecond line of the notes.\n`, padBytes: 12 << 20,
    });
    tampered = await tamperedCopy(good, path.join(dir, `vcrm-${next}-tampered.bin`));
    older = await buildBundle(buildDir, dir, `vcrm-${olderVersion}.bin`, { version: olderVersion, notes: 'An older release.\n' });
  });

  after(async () => {
    await appliance?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pending = async () => {
    const answer = await adminCall(appliance, 'GET', '/upgrade');
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body.pending;
  };

  async function openPage(page, user) {
    await page.goto(appliance.url);
    await driverSignIn(page, user.username, user.password);
    await page.clickLink(PAGE);
    await page.waitFor('text', PAGE);
    await page.waitFor('text', appliance.version, { within: 'Running version' }); // the state is read
  }

  for (const spec of ENGINES) {
    describe(`in ${spec.name}`, () => {
      let engine = null;
      before(async () => { engine = await spec.launch(); });
      after(async () => { await engine?.close().catch((error) => console.error(`closing ${spec.name}: ${error.message}`)); });

      test('an operator uploads a bundle, sees what it is, is refused a tampered one, cannot confirm outside a slot, and discards it', async () => {
        await adminCall(appliance, 'DELETE', '/upgrade/pending');
        await withDriverPage(engine, 'upgrade-page', async (page) => {
          await openPage(page, OPERATOR);
          const running = await page.text('region', 'Running version');
          assert.match(running, new RegExp(`Version\\s*${esc(appliance.version)}`));
          assert.match(running, /Slot\s*Not installed in a slot/, 'the build tree is no slot');
          assert.match(await page.text('region', 'Upgrade history'), /No upgrade has run on this appliance yet\./);

          // Nothing chosen: the form says what to do.
          await page.click('Upload and check', UPLOAD);
          await page.waitFor('text', 'Choose the upgrade bundle file first.', UPLOAD);

          // A tampered copy: uploaded, then refused with the reason; nothing is pending.
          await page.chooseFile('Upgrade bundle file', tampered, UPLOAD);
          await page.click('Upload and check', UPLOAD);
          const refusal = await page.text('text', /^This bundle cannot be installed: /, UPLOAD, CHECK_TIMEOUT_MS);
          assert.match(refusal, /does not match its signed hash: the file was altered or damaged/, refusal);
          assert.equal(await pending(), null, 'a refused bundle is not pending');

          // The real bundle: a progress bar while it uploads, then what it is.
          await page.evaluate(recordProgressCaptions);
          await page.chooseFile('Upgrade bundle file', good, UPLOAD);
          await page.click('Upload and check', UPLOAD);
          await page.waitFor('progressbar', 'Upload progress', UPLOAD);
          await page.waitFor('text', /^The bundle checks out: /, UPLOAD, CHECK_TIMEOUT_MS);
          assert.equal(await page.property('progressbar', 'Upload progress', UPLOAD, 'value'), 100, 'the bar ends full');
          const size = (await stat(good)).size;
          const captions = await page.evaluate(() => window.vcrmCaptions);
          assert.ok(captions.some((c) => /of .* sent.*: ([1-9]|[1-9][0-9]) %$/.test(c)),
            `the bar showed the upload part way (${size} bytes): ${captions.join(' | ')}`);
          assert.ok(captions.some((c) => /^Uploaded /.test(c)), captions.join(' | '));

          const what = await page.text('region', PENDING.within);
          assert.match(what, new RegExp(`Version\\s*${esc(next)}`));
          assert.match(what, new RegExp(`Running now\\s*${esc(appliance.version)}`));
          assert.match(what, new RegExp(`Signed by\\s*key ${TEST_KEY_ID}`));
          assert.match(what, new RegExp(`Release date\\s*${today()}`));
          assert.match(what, /Compatible with\s*vcrm-appliance/);
          assert.match(what, /Upgrades from\s*version 0\.0\.1 or later/);
          assert.match(what, /Licence\s*Entitled \(upgrades released until 2099-12-31\)/);
          assert.match(what, /Release notes/);
          assert.match(what, new RegExp(`vcrm ${esc(next)}: the browser test's release\\.`));
          assert.doesNotMatch(what, /downgrade/i, 'a newer version is no downgrade');
          assert.doesNotMatch(what, /\[object |undefined|NaN/, 'nothing shows unrendered');
          assert.equal((await pending())?.version, next);
          await page.screenshot('upgrade-page-verified');

          // Confirm: the passphrase rules first, then the server's refusal outside a slot.
          await page.fill('Passphrase for the pre-upgrade backup', 'too short', PENDING);
          await page.click('Upgrade now', PENDING);
          await page.waitFor('text', 'Use a passphrase of at least 12 characters.', PENDING);
          await page.fill('Passphrase for the pre-upgrade backup', PASSPHRASE, PENDING);
          await page.fill('Repeat the passphrase', 'not the same passphrase', PENDING);
          await page.click('Upgrade now', PENDING);
          await page.waitFor('text', 'The two passphrases differ: type the same one twice.', PENDING);
          await page.fill('Repeat the passphrase', PASSPHRASE, PENDING);
          await page.click('Upgrade now', PENDING);
          await page.click('Upgrade now', { dialog: `Upgrade to ${next}?` });
          const notInstalled = await page.text('text', /^The upgrade did not start: /, PENDING, 30_000);
          assert.match(notInstalled, /does not run from an installed slot/, notInstalled);
          assert.equal((await pending())?.version, next, 'the refused confirmation leaves the bundle pending');
          assert.equal(await page.visible('progressbar', 'Upgrade progress', { within: 'Upgrade progress' }), false);

          // Discard: gone from the page and from the appliance.
          await page.click('Discard', PENDING);
          await page.click('Discard', { dialog: 'Discard this bundle?' });
          await page.waitFor('text', 'The bundle was discarded. Nothing was changed.', PENDING);
          await page.waitFor('text', 'No bundle is waiting: upload one above.', PENDING);
          assert.equal(await pending(), null);
        });
      });

      test('a downgrade: refused for an operator; an admin allows it on verify and sees the warning', async () => {
        await adminCall(appliance, 'DELETE', '/upgrade/pending');
        await withDriverPage(engine, 'upgrade-downgrade', async (page) => {
          await openPage(page, OPERATOR);
          assert.equal(await page.visible('control', 'Allow a downgrade', UPLOAD), false, 'operators have no such box');
          await page.chooseFile('Upgrade bundle file', older, UPLOAD);
          await page.click('Upload and check', UPLOAD);
          const refusal = await page.text('text', /^This bundle cannot be installed: /, UPLOAD, CHECK_TIMEOUT_MS);
          assert.match(refusal, new RegExp(esc(olderVersion)), refusal);
          assert.equal(await pending(), null);
        });
        await withDriverPage(engine, 'upgrade-downgrade-admin', async (page) => {
          await openPage(page, { username: 'admin', password: appliance.password });
          await page.chooseFile('Upgrade bundle file', older, UPLOAD);
          await page.click('Upload and check', UPLOAD);
          await page.waitFor('text', /^This bundle cannot be installed: /, UPLOAD, CHECK_TIMEOUT_MS);
          // The refusal kept the upload: ticking the box checks it again.
          await page.check('Allow a downgrade', UPLOAD);
          await page.click('Upload and check', UPLOAD);
          await page.waitFor('text', /^The bundle checks out: /, UPLOAD, CHECK_TIMEOUT_MS);
          const what = await page.text('region', PENDING.within);
          assert.match(what, new RegExp(`This is a downgrade: ${esc(olderVersion)} is not newer than the running `
            + `${esc(appliance.version)}\\. An admin \\(admin\\) allowed it\\.`));
          const p = await pending();
          assert.equal(p?.version, olderVersion);
          assert.equal(p?.allow_downgrade, true);
          // Discarded elsewhere (another console, vcrmctl): the page follows the upgrade event.
          assert.equal((await adminCall(appliance, 'DELETE', '/upgrade/pending')).status, 204);
          await page.waitFor('text', 'No bundle is waiting: upload one above.', PENDING);
        });
      });

      test('support does not see the page', async () => {
        await withDriverPage(engine, 'upgrade-support', async (page) => {
          await page.goto(appliance.url);
          await driverSignIn(page, SUPPORT.username, SUPPORT.password);
          await page.waitFor('link', 'Backup/Restore');
          assert.equal(await page.visible('link', PAGE), false, 'no upgrade page in the nav for support');
          await page.goto(new URL('/upgrade', appliance.url).href);
          await page.waitFor('text', 'Your account does not have access to this page. Choose a page from the menu.');
        });
      });
    });
  }
});
