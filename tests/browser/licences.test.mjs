// The reference guide's licence steps in the browser: read the serial number on Admin >
// Licences (and copy it), obtain a licence file for it from the vendor's tool, choose it,
// Preview its features and what changes, Apply it, and see the active licence; a file for
// another server is refused with the reason and changes nothing; the dashboard's Licence pane.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { issueTestLicence, launchBrowser, screenshot, startAppliance, submitSignIn, withPage as pageSession } from './lib/appliance.mjs';

describe('licences', { timeout: 300_000 }, () => {
  let appliance = null;
  let browser = null;
  let dir = null;

  before(async () => {
    appliance = await startAppliance({ applyTestLicence: false });
    browser = await launchBrowser();
    dir = await mkdtemp(path.join('/tmp', 'vcrm-licence-files-'));
  });

  after(async () => {
    await browser?.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
    await appliance?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const withPage = (name, body, options) => pageSession(browser, name, body, options);

  test('record the serial, preview and apply its licence, see it active and on the dashboard', async () => {
    await withPage('licences-guide', async (page, context) => {
      await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: appliance.url.replace(/\/$/, '') });
      await page.goto(appliance.url);
      await submitSignIn(page, 'admin', appliance.password);
      await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
      // The dashboard says the appliance runs in evaluation mode.
      const pane = page.getByRole('region', { name: 'Licence' });
      await pane.getByText('Evaluation mode', { exact: true }).waitFor();
      await pane.getByText('Ports in use: 0 of 10 licensed').waitFor();

      // 1. Admin > Licences: record the serial number.
      await page.getByRole('link', { name: 'Licences' }).click();
      await page.getByRole('heading', { name: 'Licences', level: 1 }).waitFor();
      const serialNode = page.locator('#serial-number');
      await page.waitForFunction(() => /^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}-.$/.test(document.querySelector('#serial-number')?.textContent ?? ''));
      const serial = (await serialNode.textContent()).trim();
      await page.getByRole('button', { name: 'Copy serial number' }).click();
      await page.getByRole('status').filter({ hasText: 'Serial number copied.' }).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), serial);
      await page.getByText(/No licence is applied\. The appliance runs in evaluation mode/).waitFor();

      // 2. The vendor issues files: one for this serial, one for another server.
      const good = path.join(dir, 'this-server.lic');
      await writeFile(good, await issueTestLicence(serial, { ports: 40, bridges: 4, licenceId: 'L-GUIDE-1', validDays: 90 }));
      const other = path.join(dir, 'other-server.lic');
      await writeFile(other, await issueTestLicence('0000-0000-0000-0000-0', { licenceId: 'L-OTHER' }));

      // A file for another server: refused with the reason, nothing to apply.
      const update = page.getByRole('region', { name: 'Update licence' });
      await update.getByLabel('Licence file').setInputFiles(other);
      await update.getByRole('button', { name: 'Preview' }).click();
      const refusal = update.getByRole('alert');
      await refusal.waitFor();
      assert.match(await refusal.textContent(), /0000-0000-0000-0000-0/);
      assert.match(await refusal.textContent(), new RegExp(serial.replace(/[$*~=]/g, '\\$&')));
      assert.equal(await update.getByRole('button', { name: 'Apply licence' }).count(), 0);

      // 3. Choose the file, 4. Preview its features and what changes.
      await update.getByLabel('Licence file').setInputFiles(good);
      await update.getByRole('button', { name: 'Preview' }).click();
      await update.getByRole('heading', { name: 'Preview of L-GUIDE-1' }).waitFor();
      const changes = update.getByRole('table', { name: 'What changes against evaluation mode' });
      const portsRow = changes.getByRole('row', { name: /Concurrent ports/ });
      assert.match(await portsRow.textContent(), /10.*40/);

      // 5. Apply: the Active licence section is updated.
      await update.getByRole('button', { name: 'Apply licence' }).click();
      await update.getByRole('status').filter({ hasText: 'Licence L-GUIDE-1 applied.' }).waitFor();
      const active = page.getByRole('region', { name: 'Active licence' });
      await active.getByText('L-GUIDE-1', { exact: true }).waitFor();
      await active.getByText('40', { exact: true }).waitFor();
      await page.getByRole('region', { name: 'This server' }).getByText('Licensed', { exact: true }).waitFor();
      await screenshot(page, 'licences-applied');

      // The same file again is refused: it is the active licence.
      await update.getByLabel('Licence file').setInputFiles(good);
      await update.getByRole('button', { name: 'Preview' }).click();
      await update.getByRole('alert').filter({ hasText: /not newer than the active licence/ }).waitFor();

      // The dashboard's Licence pane.
      await page.getByRole('link', { name: 'Dashboard' }).click();
      await pane.getByText('Licensed', { exact: true }).waitFor();
      await pane.getByText('Ports in use: 0 of 40 licensed').waitFor();
      await pane.getByText(/90 days left/).waitFor();
    });
  });
});
