// A whole upgrade in the browser, in Chromium and in Firefox, over HTTPS: build N installed in
// slot a under vcrm-supervisor (as `packaging/dev run` does); an operator uploads the N+1 bundle
// (packaging/build-bundle of the N+1 build) on Server Software Upgrade, confirms with a backup
// passphrase, watches the steps across the restart and ends on "Upgrade complete — now running
// N+1"; the sign-in page then shows N+1, the history has the upgrade, the pre-upgrade backup is
// kept. In Firefox the operator then goes back to N with "Go back to the previous version".
//
// N+1 is a build of this source with another -DVCRM_VERSION in VCRM_NPLUS1_BUILD (default
// build-nplus1 beside the build under test), which packaging/dev test makes; by hand:
//   cmake -S . -B build-nplus1 -G Ninja -DCMAKE_BUILD_TYPE=Release -DVCRM_VERSION=0.1.1
//   cmake --build build-nplus1 --target vcrmd vcrmctl vcrm-bundle vcrm-supervisor webui
// Without it the test is skipped, or fails when VCRM_NEXT_BUILDS_REQUIRED=1 (packaging/dev test).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { adminCall, binDir, createReadyUser, startAppliance } from './lib/appliance.mjs';
import {
  FREE_PORTS, OPERATOR, PAGE, PASSPHRASE, PENDING, PROGRESS, UPLOAD, buildBundle, esc, trustTestKey,
} from './lib/bundles.mjs';
import { ENGINES, driverSignIn, withDriverPage } from './lib/drivers.mjs';

const UPGRADE_TIMEOUT_MS = 240_000;

const nplus1Dir = process.env.VCRM_NPLUS1_BUILD || path.join(path.dirname(path.dirname(binDir)), 'build-nplus1');
const nplus1Missing = existsSync(path.join(nplus1Dir, 'bin', 'vcrmd')) ? false
  : `no N+1 build in ${nplus1Dir} (bin/vcrmd is missing; VCRM_NPLUS1_BUILD names another): see the comment at the `
    + 'top of upgrade-slot.test.mjs';
const nplus1Required = process.env.VCRM_NEXT_BUILDS_REQUIRED === '1';

const headerVersion = (page) => page.evaluate(() => document.getElementById('header-version').textContent);
const versionOf = async (vcrmd) => (await promisify(execFile)(vcrmd, ['--version'])).stdout.trim().split(/\s+/).pop();

test('the N+1 build is there when packaging/dev test requires it', () => {
  assert.ok(!nplus1Required || !nplus1Missing, nplus1Missing);
});

describe('a whole upgrade in the browser', { timeout: 1_200_000, skip: nplus1Missing }, () => {
  let dir = null;
  let bundle = null;
  let versionN = null;
  let versionN1 = null;

  before(async () => {
    versionN = await versionOf(path.join(binDir, 'vcrmd'));
    versionN1 = await versionOf(path.join(nplus1Dir, 'bin', 'vcrmd'));
    assert.notEqual(versionN1, versionN, 'the N+1 build has another version');
    dir = await mkdtemp(path.join('/tmp', 'vcrm-upgrade-slot-'));
    bundle = await buildBundle(nplus1Dir, dir, `vcrm-${versionN1}.bin`, {
      version: versionN1, notes: `vcrm ${versionN1}, the next release.\n`,
    });
  });

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Waits until the page's upgrade (or going back) ends, signing in again if the restart ended
   * the session; returns the Upgrade progress region's final status text.
   */
  async function waitForEnd(page, finished) {
    const deadline = Date.now() + UPGRADE_TIMEOUT_MS;
    for (;;) {
      assert.ok(Date.now() < deadline, `the upgrade ended within ${UPGRADE_TIMEOUT_MS / 1000} s`);
      if (await page.visible('text', finished, PROGRESS)) return page.text('text', finished, PROGRESS);
      if (await page.visible('text', /^Rolled back: /, PROGRESS)) {
        assert.fail(`the upgrade rolled back: ${await page.text('text', /^Rolled back: /, PROGRESS)}`);
      }
      if (await page.visible('button', 'Sign in')) {
        await driverSignIn(page, OPERATOR.username, OPERATOR.password);
        await page.waitFor('text', PAGE);
      }
      await new Promise((resolve) => { setTimeout(resolve, 250); });
    }
  }

  for (const spec of ENGINES) {
    test(`in ${spec.name}: upload N+1, confirm, follow the steps across the restart, end on N+1${spec.name === 'firefox' ? ', go back to N' : ''}`, async () => {
      const appliance = await startAppliance({ installFrom: path.dirname(binDir), extraArgs: FREE_PORTS });
      const engine = await spec.launch();
      try {
        await trustTestKey(appliance.root);
        const made = await createReadyUser(appliance, OPERATOR);
        assert.equal(made.status, 201, JSON.stringify(made.body));
        assert.equal(appliance.version, versionN);

        await withDriverPage(engine, 'upgrade-slot', async (page) => {
          await page.goto(appliance.url);
          await page.waitFor('text', `Version ${versionN}`);
          await driverSignIn(page, OPERATOR.username, OPERATOR.password);
          await page.clickLink(PAGE);
          await page.waitFor('text', versionN, { within: 'Running version' });
          assert.match(await page.text('region', 'Running version'), /Slot\s*Slot a/);

          await page.chooseFile('Upgrade bundle file', bundle, UPLOAD);
          await page.click('Upload and check', UPLOAD);
          await page.waitFor('text', /^The bundle checks out: /, UPLOAD, 120_000);
          assert.match(await page.text('region', PENDING.within), new RegExp(`Version\\s*${esc(versionN1)}`));

          await page.fill('Passphrase for the pre-upgrade backup', PASSPHRASE, PENDING);
          await page.fill('Repeat the passphrase', PASSPHRASE, PENDING);
          await page.click('Upgrade now', PENDING);
          await page.click('Upgrade now', { dialog: `Upgrade to ${versionN1}?` });
          await page.waitFor('progressbar', 'Upgrade progress', PROGRESS, 30_000);
          const done = await waitForEnd(page, /^Upgrade complete — now running /);
          assert.equal(done, `Upgrade complete — now running ${versionN1}.`);
          assert.equal(await headerVersion(page), versionN1, 'the header shows the new version');

          // What the appliance says matches what the page showed.
          const state = (await adminCall(appliance, 'GET', '/upgrade')).body;
          assert.equal(state.running.version, versionN1);
          assert.equal(state.running.slot, 'b');
          assert.equal(state.upgrade.outcome, 'complete', JSON.stringify(state.upgrade));
          const steps = await page.evaluate(() => [...document.querySelectorAll('.upgrade-steps li')].map((li) => li.textContent));
          assert.equal(steps.length, state.upgrade.steps.length, `every step is listed: ${steps.join(' | ')}`);
          state.upgrade.steps.forEach((s, i) => assert.ok(steps[i].startsWith(s.label ?? ''), `step ${i}: ${steps[i]} is ${s.label}`));
          assert.match(await page.text('region', 'Upgrade history'),
            new RegExp(`Upgrade\\s*${esc(versionN)}\\s*${esc(versionN1)}\\s*Complete`));
          await page.waitFor('text', /^Upgrade complete/, PROGRESS);
          const backups = (await adminCall(appliance, 'GET', '/backups')).body.backups;
          assert.ok(backups.some((b) => b.origin === 'pre-upgrade' && b.id === state.upgrade.backup),
            `the pre-upgrade backup is kept: ${JSON.stringify(backups)}`);
          await page.screenshot('upgrade-slot-complete');

          // The guide's verification: the sign-in page shows the new version.
          await page.click('Sign out');
          await page.waitFor('text', `Version ${versionN1}`);
          await page.goto(appliance.url);
          await page.waitFor('text', `Version ${versionN1}`);

          if (spec.name === 'firefox') {
            await driverSignIn(page, OPERATOR.username, OPERATOR.password);
            await page.clickLink(PAGE);
            await page.waitFor('text', versionN1, { within: 'Running version' });
            await page.click('Go back to the previous version', { within: 'Running version' });
            await page.click('Go back', { dialog: `Go back to version ${versionN}?` });
            const back = await waitForEnd(page, /^Went back to the previous version — now running /);
            assert.equal(back, `Went back to the previous version — now running ${versionN}.`);
            // Going back returned the pre-upgrade database, where this session did not exist yet:
            // the operator signed in again, and the header says what runs now.
            assert.equal(await headerVersion(page), versionN, 'the header shows the version gone back to');
            const after = (await adminCall(appliance, 'GET', '/upgrade')).body;
            assert.equal(after.running.version, versionN);
            assert.equal(after.running.slot, 'a');
          }
        });
      } finally {
        await engine.close().catch((error) => console.error(`closing ${spec.name}: ${error.message}`));
        await appliance.stop();
      }
    });
  }
});
