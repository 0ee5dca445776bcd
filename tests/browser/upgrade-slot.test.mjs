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
  OPERATOR, PAGE, PASSPHRASE, PENDING, PROGRESS, UPLOAD, buildBundle, esc, trustTestKey,
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

const unhealthyDir = process.env.VCRM_UNHEALTHY_BUILD || path.join(path.dirname(path.dirname(binDir)), 'build-unhealthy');
const unhealthyMissing = existsSync(path.join(unhealthyDir, 'bin', 'vcrmd')) ? false
  : `no unhealthy next build (its /healthz answers 503) in ${unhealthyDir}; VCRM_UNHEALTHY_BUILD names another, `
    + 'packaging/dev test builds it';

test('the next builds are there when packaging/dev test requires them', () => {
  assert.ok(!nplus1Required || !nplus1Missing, nplus1Missing);
  assert.ok(!nplus1Required || !unhealthyMissing, unhealthyMissing);
});

/**
 * Waits until the page's upgrade (or going back) shows `wanted` in Upgrade progress, signing in
 * again if the restart ended the session; fails on `unwanted`. Returns the text shown.
 */
async function waitForEnd(page, wanted, unwanted = /^Rolled back: /) {
  const deadline = Date.now() + UPGRADE_TIMEOUT_MS;
  for (;;) {
    assert.ok(Date.now() < deadline, `the upgrade ended within ${UPGRADE_TIMEOUT_MS / 1000} s`);
    if (await page.visible('text', wanted, PROGRESS)) return page.text('text', wanted, PROGRESS);
    if (unwanted && await page.visible('text', unwanted, PROGRESS)) {
      assert.fail(`the page shows: ${await page.text('text', unwanted, PROGRESS)}`);
    }
    if (await page.visible('button', 'Sign in')) {
      await driverSignIn(page, OPERATOR.username, OPERATOR.password);
      await page.waitFor('text', PAGE);
    }
    await new Promise((resolve) => { setTimeout(resolve, 250); });
  }
}

/** This build installed in slot a under vcrm-supervisor, trusting the TEST key, with OPERATOR. */
async function installedAppliance() {
  const appliance = await startAppliance({ installFrom: path.dirname(binDir) });
  try {
    await trustTestKey(appliance.root);
    const made = await createReadyUser(appliance, OPERATOR);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    return appliance;
  } catch (error) {
    await appliance.stop();
    throw error;
  }
}

/** Signs in as OPERATOR, uploads `bundle` (of `version`) on the page and confirms it. */
async function uploadAndConfirm(page, appliance, bundle, version) {
  await page.goto(appliance.url);
  await page.waitFor('text', `Version ${appliance.version}`);
  await driverSignIn(page, OPERATOR.username, OPERATOR.password);
  await page.clickLink(PAGE);
  await page.waitFor('text', appliance.version, { within: 'Running version' });
  assert.match(await page.text('region', 'Running version'), /Slot\s*Slot a/);
  await page.chooseFile('Upgrade bundle file', bundle, UPLOAD);
  await page.click('Upload and check', UPLOAD);
  await page.waitFor('text', /^The bundle checks out: /, UPLOAD, 120_000);
  assert.match(await page.text('region', PENDING.within), new RegExp(`Version\\s*${esc(version)}`));
  await page.fill('Passphrase for the pre-upgrade backup', PASSPHRASE, PENDING);
  await page.fill('Repeat the passphrase', PASSPHRASE, PENDING);
  await page.click('Upgrade now', PENDING);
  await page.click('Upgrade now', { dialog: `Upgrade to ${version}?` });
  await page.waitFor('progressbar', 'Upgrade progress', PROGRESS, 30_000);
}

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

  for (const spec of ENGINES) {
    test(`in ${spec.name}: upload N+1, confirm, follow the steps across the restart, end on N+1${spec.name === 'firefox' ? ', go back to N' : ''}`, async () => {
      const appliance = await installedAppliance();
      const engine = await spec.launch();
      try {
        assert.equal(appliance.version, versionN);
        await withDriverPage(engine, 'upgrade-slot', async (page) => {
          await uploadAndConfirm(page, appliance, bundle, versionN1);
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

describe('a new version that fails its health check, in the browser', { timeout: 600_000, skip: unhealthyMissing }, () => {
  test('in chromium: it is rolled back by itself and the page says why', async () => {
    const dir = await mkdtemp(path.join('/tmp', 'vcrm-upgrade-unhealthy-'));
    const appliance = await installedAppliance();
    const engine = await ENGINES.find((e) => e.name === 'chromium').launch();
    try {
      const version = await versionOf(path.join(unhealthyDir, 'bin', 'vcrmd'));
      const bundle = await buildBundle(unhealthyDir, dir, `vcrm-${version}.bin`, { version, notes: 'An unhealthy release.\n' });
      await withDriverPage(engine, 'upgrade-slot-rolled-back', async (page) => {
        await uploadAndConfirm(page, appliance, bundle, version);
        const text = await waitForEnd(page, /^Rolled back: /, /^Upgrade complete/);
        assert.match(text, new RegExp(`The appliance runs ${esc(appliance.version)} again, with its data as it was\\.$`), text);
        const state = (await adminCall(appliance, 'GET', '/upgrade')).body;
        assert.equal(state.running.version, appliance.version);
        assert.equal(state.running.slot, 'a');
        assert.equal(state.upgrade.outcome, 'rolled-back', JSON.stringify(state.upgrade));
        assert.ok(text.includes(state.upgrade.rollback_reason.replace(/[.]$/, '').slice(1)), `the reason is shown: ${text}`);
        assert.match(await page.text('region', 'Upgrade history'),
          new RegExp(`Upgrade\\s*${esc(appliance.version)}\\s*${esc(version)}\\s*Rolled back`));
        assert.equal(await headerVersion(page), appliance.version);
      });
    } finally {
      await engine.close().catch((error) => console.error(`closing chromium: ${error.message}`));
      await appliance.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
