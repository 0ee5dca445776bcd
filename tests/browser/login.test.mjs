// The sign-in page, as a person uses it: a real vcrmd, Debian's Chromium, elements found by
// their role and label the way a screen reader would find them.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { adminCall, launchBrowser, startAppliance, submitSignIn, withPage as pageSession } from './lib/appliance.mjs';

const WRONG_CREDENTIALS = 'Wrong user name or password.';

describe('login page', { timeout: 300_000 }, () => {
  let appliance = null;
  let browser = null;

  before(async () => {
    appliance = await startAppliance();
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close().catch((error) => console.error(`closing Chromium: ${error.message}`));
    await appliance?.stop();
  });

  const withPage = (name, body, options) => pageSession(browser, name, body, options);

  const signInHeading = (page) => page.getByRole('heading', { name: 'Sign in to vcrm' });
  const dashboardHeading = (page) => page.getByRole('heading', { name: 'Dashboard' });

  /** Waits until the page has decided between the sign-in page and the console; returns which. */
  async function settledView(page) {
    await page.getByRole('heading', { name: /^(Sign in to vcrm|Dashboard)$/ }).waitFor();
    return (await dashboardHeading(page).count()) > 0 ? 'dashboard' : 'login';
  }

  test('the sign-in page shows the product version', async () => {
    await withPage('login-version', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      const version = page.getByText(`Version ${appliance.version}`, { exact: true });
      await version.waitFor();
      assert.ok(await version.isVisible(), `"Version ${appliance.version}" is shown`);
      assert.ok(await page.getByLabel('User name', { exact: true }).isVisible());
      assert.ok(await page.getByLabel('Password', { exact: true }).isVisible());
    });
  });

  test('a wrong password shows an alert and stays on the sign-in page', async () => {
    await withPage('login-wrong-password', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'admin', `${appliance.password}-wrong`);

      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.equal((await alert.textContent()).trim(), WRONG_CREDENTIALS);
      assert.ok(await signInHeading(page).isVisible(), 'still on the sign-in page');
      assert.equal(await dashboardHeading(page).count(), 0, 'no dashboard');
    });
  });

  test('the admin password signs in to the dashboard', async () => {
    await withPage('login-success', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'admin', appliance.password);

      await dashboardHeading(page).waitFor();
      await page.getByText('admin', { exact: true }).waitFor();
      assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible());
      assert.equal(await signInHeading(page).count(), 0, 'the sign-in page is gone');

      // The session is an HttpOnly cookie; nothing about it is readable or stored by the page.
      const stored = await page.evaluate(() => ({
        cookies: document.cookie,
        local: localStorage.length,
        session: sessionStorage.length,
      }));
      assert.deepEqual(stored, { cookies: '', local: 0, session: 0 });
    });
  });

  test('a reload keeps the session and signing out ends it', async () => {
    await withPage('login-reload-logout', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'admin', appliance.password);
      await dashboardHeading(page).waitFor();

      await page.reload();
      assert.equal(await settledView(page), 'dashboard', 'still signed in after a reload');
      await page.getByText('admin', { exact: true }).waitFor();

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signInHeading(page).waitFor();
      assert.equal(await dashboardHeading(page).count(), 0);

      await page.reload();
      assert.equal(await settledView(page), 'login', 'still signed out after a reload');
    });
  });

  test('a user given a one-time password is taken to the password form, then uses the console', async () => {
    const oneTime = 'Handed-Over-Once-5521';
    const own = 'Newcomer-Own-Choice-8830';
    const created = await adminCall(appliance, 'POST', '/users', { username: 'newcomer', password: oneTime, roles: ['admin'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.must_change_password, true);
    await withPage('login-must-change-password', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'newcomer', oneTime);

      // Straight to the form, not the dashboard.
      await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
      await page.getByRole('heading', { name: 'Change password' }).waitFor();
      assert.ok(await page.getByText('You signed in with a one-time password. Choose your own password now', { exact: false }).first().isVisible());
      assert.equal(await dashboardHeading(page).count(), 0, 'no dashboard yet');
      // Another page, from the menu or by its address, leads back to the form.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Conferences' }).click();
      await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();
      await page.goto(`${appliance.url}conferences`);
      await page.getByRole('heading', { name: 'Change password' }).waitFor();
      assert.equal(new URL(page.url()).pathname, '/account');

      await page.getByLabel('Current password').fill(oneTime);
      await page.getByLabel('New password', { exact: true }).fill(own);
      await page.getByLabel('Confirm new password').fill(own);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor();

      // Now the console is open: the conferences page lists bookings, no error.
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Conferences' }).click();
      await page.getByRole('heading', { name: 'Conferences', level: 1 }).waitFor();
      await page.getByRole('button', { name: 'New booking' }).waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, 'no error shown');
      assert.equal((await adminCall(appliance, 'GET', '/users/newcomer')).body.must_change_password, false);
    });
  });

  // Last in the suite: it changes the admin password the other tests sign in with.
  test('the admin changes the password and signs in with the new one', async () => {
    const newPassword = 'Conference-Room-Harbour-7351';
    await withPage('account-change-password', async (page) => {
      await page.goto(appliance.url);
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'admin', appliance.password);
      await dashboardHeading(page).waitFor();
      await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Account' }).click();
      await page.getByRole('heading', { name: 'Account', level: 1 }).waitFor();

      // A mismatch is caught before anything is sent.
      await page.getByLabel('Current password').fill(appliance.password);
      await page.getByLabel('New password', { exact: true }).fill(newPassword);
      await page.getByLabel('Confirm new password').fill(`${newPassword}x`);
      await page.getByRole('button', { name: 'Change password' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      assert.match(await alert.textContent(), /do not match/);

      await page.getByLabel('Confirm new password').fill(newPassword);
      await page.getByRole('button', { name: 'Change password' }).click();
      await page.getByRole('status').filter({ hasText: 'Password changed.' }).waitFor();
      assert.equal(await page.getByRole('alert').count(), 0, 'the mismatch alert is gone');

      await page.getByRole('button', { name: 'Sign out' }).click();
      await signInHeading(page).waitFor();
      await submitSignIn(page, 'admin', appliance.password);
      await page.getByRole('alert').filter({ hasText: WRONG_CREDENTIALS }).waitFor();
      await submitSignIn(page, 'admin', newPassword);
      await dashboardHeading(page).waitFor();
    });
  });
});
