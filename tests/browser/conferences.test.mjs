// Conferences in the browser, end to end: a real vcrmd, a real Janus registered as its bridge, and
// Debian's Chromium. Elements are found by role and label, as a screen reader would find them.
// The reference guide's verification in the browser: schedule a conference, start it, watch a
// participant join, mute and drop, terminate it, find its CDR and download the CSV.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { createReadyUser, launchBrowser, screenshot, startAppliance, submitSignIn, withPage as pageSession } from './lib/appliance.mjs';
import { JanusParticipant, apiClient, eventually, startBridge, stopEverything } from './lib/janus.mjs';

const VCRMD_SETTINGS = [
  '--set', 'conference.prelaunch_seconds=2',
  '--set', 'bridge.probe_seconds=1',
  '--set', 'bridge_events.port=0',
];

describe('conferences in the web UI', { timeout: 300_000 }, () => {
  let appliance = null;
  let browser = null;
  let api = null;
  let bridge = null;
  let janus = null;
  const participants = [];
  // Shared by the monitor, terminate and CDR tests, which follow one conference.
  let live = null;
  // The day (in the browser's zone) of the booking the first test makes.
  let quarterlyDate = null;
  // Alice, in the live conference through Janus.
  let alice = null;

  before(async () => {
    appliance = await startAppliance({ extraArgs: VCRMD_SETTINGS });
    api = await apiClient(appliance);
    ({ bridge, janus } = await startBridge(api, { name: 'browser-janus', capacity: 20 }));
    browser = await launchBrowser();
  });

  after(async () => {
    await stopEverything({ participants, browser, api, janus, appliance });
  });

  const withPage = (name, body, options) => pageSession(browser, name, body, options);

  async function signIn(page, username = 'admin', password = appliance.password) {
    await page.goto(appliance.url);
    await page.getByRole('heading', { name: 'Sign in to vcrm' }).waitFor();
    await submitSignIn(page, username, password);
    await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
  }

  const nav = (page) => page.getByRole('navigation', { name: 'Main' });

  async function openConferences(page) {
    await nav(page).getByRole('link', { name: 'Conferences' }).click();
    await page.getByRole('heading', { name: 'Conferences', level: 1 }).waitFor();
  }

  /** Wall-clock date and time `minutesAhead` from now in the browser's time zone, on a 5-minute step. */
  function browserWallClock(page, minutesAhead) {
    return page.evaluate((ahead) => {
      const t = Math.ceil((Date.now() + ahead * 60_000) / 300_000) * 300_000;
      const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', {
        year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
      }).formatToParts(t).map((p) => [p.type, p.value]));
      return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}`, epoch: t };
    }, minutesAhead);
  }

  async function conferenceByName(name) {
    const answer = await api.get('/conferences?limit=1000');
    return answer.body.conferences.find((c) => c.name === name);
  }

  test('an admin schedules a conference through the form and sees it listed', async () => {
    await withPage('conferences-schedule', async (page) => {
      await signIn(page);
      await openConferences(page);
      await page.getByRole('button', { name: 'New booking' }).click();
      const form = page.getByRole('form', { name: 'Schedule conference' });
      await form.waitFor();
      // The browser's time zone is the default.
      const browserZone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
      assert.equal(await form.getByLabel('Time zone').inputValue(), browserZone);

      const start = await browserWallClock(page, 120);
      quarterlyDate = start.date;
      await form.getByLabel('Name', { exact: true }).fill('Quarterly review');
      await form.getByLabel('Start date').fill(start.date);
      await form.getByLabel('Start time').fill(start.time);
      await form.getByLabel('Duration (minutes)').fill('45');
      await form.getByLabel('PIN (optional)').fill('12');
      await form.getByLabel('Bridge (optional)').selectOption({ label: `browser-janus (up, 20 ports)` });

      // A mistake the page catches is named next to its field.
      await form.getByLabel('Ports').fill('6');
      await form.getByRole('button', { name: 'Schedule' }).click();
      await form.getByText('The PIN is 4 to 12 digits, or leave it empty.').first().waitFor();
      assert.equal(await form.getByLabel('PIN (optional)').getAttribute('aria-invalid'), 'true');

      // A refusal by the server is shown beside the form in its own words.
      await form.getByLabel('PIN (optional)').fill('2468');
      await form.getByLabel('Ports').fill('500');
      await form.getByRole('button', { name: 'Schedule' }).click();
      const refusal = form.getByRole('alert');
      await refusal.filter({ hasText: /Could not schedule the conference: cannot book 500 ports/ }).waitFor();
      assert.match(await refusal.textContent(), /browser-janus has only 20 of 20 ports free/);
      await screenshot(page, 'conferences-form-refused');

      await form.getByLabel('Ports').fill('6');
      await form.getByRole('button', { name: 'Schedule' }).click();
      await page.getByRole('status').filter({ hasText: 'Scheduled "Quarterly review"' }).waitFor();
      assert.equal(await page.getByRole('form', { name: 'Schedule conference' }).count(), 0, 'the form closes');

      const row = page.getByRole('row', { name: /Quarterly review/ });
      await row.waitFor();
      assert.match(await row.textContent(), /Scheduled/);
      assert.match(await row.textContent(), new RegExp(start.time));

      const booked = await conferenceByName('Quarterly review');
      assert.ok(booked, 'the booking exists');
      assert.equal(booked.ports, 6);
      assert.equal(booked.pin, '2468');
      assert.equal(booked.time_zone, browserZone);
      assert.equal(booked.bridge_id, bridge.id);
      assert.equal(Date.parse(booked.start), start.epoch);
      assert.equal(Date.parse(booked.end) - Date.parse(booked.start), 45 * 60_000);
      await page.setViewportSize({ width: 1280, height: 900 });
    });
  });

  test('an admin edits a booking, books a weekly series and cancels them', async () => {
    await withPage('conferences-edit-series-cancel', async (page) => {
      await signIn(page);
      await page.goto(`${appliance.url}conferences?view=day&date=${quarterlyDate}`);
      await page.getByRole('heading', { name: 'Conferences', level: 1 }).waitFor();
      const row = page.getByRole('row', { name: /Quarterly review/ });
      await row.getByRole('button', { name: 'Edit Quarterly review' }).click();
      const edit = page.getByRole('form', { name: 'Edit conference "Quarterly review"' });
      await edit.waitFor();
      assert.equal(await edit.getByLabel('Duration (minutes)').inputValue(), '45');
      await edit.getByLabel('Duration (minutes)').fill('90');
      await edit.getByLabel('Ports').fill('8');
      await edit.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved "Quarterly review"' }).waitFor();
      const edited = await conferenceByName('Quarterly review');
      assert.equal(Date.parse(edited.end) - Date.parse(edited.start), 90 * 60_000);
      assert.equal(edited.ports, 8);

      // A weekly series on two weekdays, four occurrences.
      await page.getByRole('button', { name: 'New booking' }).click();
      const form = page.getByRole('form', { name: 'Schedule conference' });
      const start = await browserWallClock(page, 180);
      await form.getByLabel('Name', { exact: true }).fill('Team sync');
      await form.getByLabel('Start date').fill(start.date);
      await form.getByLabel('Start time').fill(start.time);
      await form.getByLabel('Ports').fill('2');
      await form.getByLabel('Repeat', { exact: true }).selectOption('weekly');
      const recurrence = form.getByRole('group', { name: 'Recurrence' });
      await recurrence.getByLabel('Repeat every (weeks)').fill('1');
      const weekdays = recurrence.getByRole('group', { name: 'On these weekdays' });
      const firstDay = await weekdays.getByRole('checkbox', { checked: true }).getAttribute('id');
      assert.ok(firstDay, "the start date's weekday is ticked");
      const other = firstDay === 'conf-wd-MO' ? 'Thursday' : 'Monday';
      await weekdays.getByRole('checkbox', { name: other }).check();
      await recurrence.getByLabel('Number of occurrences').fill('4');
      await form.getByRole('button', { name: 'Schedule' }).click();
      await page.getByRole('status').filter({ hasText: 'Scheduled "Team sync": 4 occurrences' }).waitFor();
      const series = (await api.get('/conferences?limit=1000')).body.conferences.filter((c) => c.name === 'Team sync');
      assert.equal(series.length, 4);
      assert.ok(series.every((c) => c.series_id === series[0].series_id && c.series_id !== null));

      // Change the series from its second occurrence on: the first keeps its 2 ports.
      series.sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
      await page.goto(`${appliance.url}conferences?edit=${series[1].id}`);
      const editSeries = page.getByRole('form', { name: 'Edit conference "Team sync"' });
      await editSeries.waitFor();
      assert.equal(await editSeries.getByLabel('Apply the changes to').inputValue(), 'one', 'one occurrence unless asked');
      await editSeries.getByLabel('Ports').fill('3');
      await editSeries.getByLabel('Duration (minutes)').fill('30');
      await editSeries.getByLabel('Apply the changes to').selectOption('series');
      await editSeries.getByRole('button', { name: 'Save changes' }).click();
      await page.getByRole('status').filter({ hasText: 'Saved 3 occurrences of "Team sync"' }).waitFor();
      const reshaped = (await api.get('/conferences?limit=1000')).body.conferences
        .filter((c) => c.name === 'Team sync').sort((a, b) => Date.parse(a.start) - Date.parse(b.start));
      assert.deepEqual(reshaped.map((c) => c.ports), [2, 3, 3, 3]);
      assert.deepEqual(reshaped.map((c) => (Date.parse(c.end) - Date.parse(c.start)) / 60_000), [60, 30, 30, 30]);
      assert.deepEqual(reshaped.map((c) => c.start), series.map((c) => c.start), 'the dates stay');

      await page.goto(`${appliance.url}conferences?view=week&date=${start.date}`);
      await page.getByRole('row', { name: /Team sync/ }).first().waitFor();

      // Cancel the rest of the series, confirming in the dialog.
      await page.getByRole('row', { name: /Team sync/ }).first()
        .getByRole('button', { name: 'Cancel series Team sync' }).click();
      const dialog = page.getByRole('dialog', { name: 'Cancel the series?' });
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Cancel series' }).click();
      await page.getByRole('status').filter({ hasText: 'Cancelled 4 occurrences of "Team sync".' }).waitFor();
      const after = (await api.get('/conferences?limit=1000')).body.conferences.filter((c) => c.name === 'Team sync');
      assert.ok(after.every((c) => c.state === 'cancelled'), JSON.stringify(after.map((c) => c.state)));

      // Cancel the edited booking; Escape first, which keeps it.
      await page.goto(`${appliance.url}conferences?view=day&date=${quarterlyDate}`);
      const quarterly = page.getByRole('row', { name: /Quarterly review/ });
      await quarterly.getByRole('button', { name: 'Cancel Quarterly review' }).click();
      const confirm = page.getByRole('dialog', { name: 'Cancel this conference?' });
      await confirm.waitFor();
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Keep it', 'focus moves into the dialog');
      await page.keyboard.press('Escape');
      await confirm.waitFor({ state: 'detached' });
      assert.equal((await conferenceByName('Quarterly review')).state, 'scheduled', 'Escape cancels nothing');
      await quarterly.getByRole('button', { name: 'Cancel Quarterly review' }).click();
      await confirm.getByRole('button', { name: 'Cancel conference' }).click();
      await page.getByRole('status').filter({ hasText: 'Cancelled "Quarterly review".' }).waitFor();
      await eventually(async () => /Cancelled/.test(await quarterly.textContent()), 'the row to say Cancelled');
      assert.equal((await conferenceByName('Quarterly review')).state, 'cancelled');
    }, { width: 1280 });
  });

  test('the monitor shows participants joining on Janus without a reload; mute and drop work', async () => {
    await withPage('conference-monitor', async (page) => {
      await signIn(page);
      await openConferences(page);
      await page.getByRole('button', { name: 'New booking' }).click();
      const form = page.getByRole('form', { name: 'Schedule conference' });
      await form.getByLabel('Name', { exact: true }).fill('Live check');
      await form.getByLabel('Start now').check();
      assert.ok(await form.getByLabel('Start date').isHidden(), 'no start date when starting now');
      await form.getByLabel('Duration (minutes)').fill('30');
      await form.getByLabel('Ports').fill('4');
      await form.getByLabel('PIN (optional)').fill('1234');
      await form.getByRole('button', { name: 'Schedule' }).click();
      await page.getByRole('status').filter({ hasText: 'Scheduled "Live check"' }).waitFor();

      await page.getByRole('link', { name: 'Live check', exact: true }).click();
      await page.getByRole('heading', { name: 'Live check', level: 1 }).waitFor();
      live = await eventually(async () => {
        const c = await conferenceByName('Live check');
        return c?.state === 'active' ? c : null;
      }, 'the conference to be active');
      const details = page.getByRole('region', { name: 'Details' });
      await details.getByText('Active', { exact: true }).waitFor();
      await page.getByText('Nobody is in the room.').waitFor();
      // Anything set on the page survives only if it is never reloaded.
      await page.evaluate(() => { window.vcrmTestMarker = 'no reload'; });

      const table = page.getByRole('table', { name: 'Participants now in the room' });
      alice = await JanusParticipant.join(janus.httpUrl, { room: live.room, display: 'Alice', pin: '1234' });
      participants.push(alice);
      const joinedAt = Date.now();
      await table.getByRole('row', { name: /Alice/ }).waitFor({ timeout: 5_000 });
      console.log(`Alice shown in the monitor ${Date.now() - joinedAt} ms after she joined`);
      const bob = await JanusParticipant.join(janus.httpUrl, { room: live.room, display: 'Bob', pin: '1234' });
      participants.push(bob);
      await table.getByRole('row', { name: /Bob/ }).waitFor({ timeout: 5_000 });
      await page.getByRole('heading', { name: 'Participants (2)' }).waitFor();

      // Mute and unmute Alice.
      const aliceRow = table.getByRole('row', { name: /Alice/ });
      await aliceRow.getByRole('button', { name: 'Mute Alice' }).click();
      await aliceRow.getByRole('button', { name: 'Unmute Alice' }).waitFor();
      assert.match(await aliceRow.textContent(), /Muted/);
      const muted = (await api.get(`/conferences/${live.id}`)).body.participants.find((p) => p.display_name === 'Alice');
      assert.equal(muted.muted, true);
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Unmute Alice', 'focus stays on the button');
      await aliceRow.getByRole('button', { name: 'Unmute Alice' }).click();
      await aliceRow.getByRole('button', { name: 'Mute Alice' }).waitFor();
      await page.getByRole('status').filter({ hasText: 'Alice is unmuted.' }).waitFor();

      // Drop Bob: his row goes, and Janus tells him he was kicked.
      await table.getByRole('row', { name: /Bob/ }).getByRole('button', { name: 'Drop Bob' }).click();
      await table.getByRole('row', { name: /Bob/ }).waitFor({ state: 'detached' });
      await page.getByRole('status').filter({ hasText: 'Bob was dropped from the conference.' }).waitFor();
      const kicked = await bob.waitForEvent((e) => e.plugindata?.data?.leaving !== undefined, 5_000);
      assert.ok(kicked, 'Janus told Bob he was kicked');
      const now = (await api.get(`/conferences/${live.id}`)).body.participants.map((p) => p.display_name);
      assert.deepEqual(now, ['Alice']);

      // Extend by 15 minutes.
      const endBefore = Date.parse(live.end);
      await page.getByLabel('Extend by (minutes)').fill('15');
      await page.getByRole('button', { name: 'Extend', exact: true }).click();
      await page.getByRole('status').filter({ hasText: 'Extended by 15 minutes' }).waitFor();
      assert.equal(Date.parse((await api.get(`/conferences/${live.id}`)).body.end) - endBefore, 15 * 60_000);

      assert.equal(await page.evaluate(() => window.vcrmTestMarker), 'no reload', 'the page was never reloaded');
      await page.setViewportSize({ width: 1280, height: 900 });
    });
  });

  test('the dashboard shows the live conference, its participant and the bridge', async () => {
    assert.ok(live, 'the monitor test started a conference');
    await withPage('dashboard-live', async (page) => {
      await signIn(page);
      await page.getByRole('region', { name: 'Active conferences' }).getByText('1', { exact: true }).waitFor();
      await page.getByRole('region', { name: 'Participants now' }).getByText('1', { exact: true }).waitFor();
      await page.getByRole('region', { name: 'Bridges up' }).getByText('1 of 1', { exact: true }).waitFor();
      const chart = page.getByRole('img', { name: /Conferences and participants per hour, last 24 hours/ });
      await chart.waitFor();
      // The same figures as a table: this hour has the conference and Alice (and Bob, unless
      // he left in the hour before).
      await page.getByText('Show the figures as a table').click();
      const hours = page.getByRole('table', { name: 'Conferences and participants per hour' });
      const rows = await hours.getByRole('row').allTextContents();
      assert.equal(rows.length, 25, 'a header and 24 hours');
      const [conferencesNow, participantsNow] = (await hours.getByRole('row').last().getByRole('cell').allTextContents())
        .map((t) => Number(t.trim()));
      assert.equal(conferencesNow, 1);
      assert.ok(participantsNow >= 1 && participantsNow <= 2, `participants this hour: ${participantsNow}`);
      assert.match(await page.getByRole('region', { name: 'Redundancy' }).textContent(), /later release/);
      // The test licence lifts every limit; the live conference's ports are among those in use.
      const inUse = /Licensed.*Ports in use: (\d+) of 1000000 licensed/.exec(await page.getByRole('region', { name: 'Licence' }).textContent());
      assert.ok(inUse && Number(inUse[1]) >= live.ports, `the Licence pane: ${inUse?.[0]}`);
      // Live: when Alice leaves, "Participants now" follows without a reload.
      await page.evaluate(() => { window.vcrmTestMarker = 'no reload'; });
      await alice.leave();
      await page.getByRole('region', { name: 'Participants now' }).getByText('0', { exact: true }).waitFor();
      assert.equal(await page.evaluate(() => window.vcrmTestMarker), 'no reload');
      alice = await JanusParticipant.join(janus.httpUrl, { room: live.room, display: 'Alice', pin: '1234' });
      participants.push(alice);
      await page.getByRole('region', { name: 'Participants now' }).getByText('1', { exact: true }).waitFor();
    }, { width: 1280 });
  });

  test('terminating asks for confirmation, ends every leg, and the CDR is on the CDR page', async () => {
    assert.ok(live, 'the monitor test started a conference');
    await withPage('conference-terminate-cdr', async (page) => {
      await signIn(page);
      await page.goto(`${appliance.url}conferences/${live.id}`);
      await page.getByRole('heading', { name: 'Live check', level: 1 }).waitFor();
      const table = page.getByRole('table', { name: 'Participants now in the room' });
      await table.getByRole('row', { name: /Alice/ }).waitFor();

      await page.getByRole('button', { name: 'Terminate', exact: true }).click();
      let dialog = page.getByRole('dialog', { name: 'Terminate this conference?' });
      await dialog.waitFor();
      assert.match(await dialog.textContent(), /the 1 participant in the room is removed/);
      await dialog.getByRole('button', { name: 'Keep it running' }).click();
      await dialog.waitFor({ state: 'detached' });
      assert.equal((await api.get(`/conferences/${live.id}`)).body.state, 'active', 'keeping it changes nothing');

      await page.getByRole('button', { name: 'Terminate', exact: true }).click();
      dialog = page.getByRole('dialog', { name: 'Terminate this conference?' });
      await dialog.getByRole('button', { name: 'Terminate conference' }).click();
      await page.getByRole('status').filter({ hasText: 'Terminated.' }).waitFor();
      await page.getByText('Nobody is in the room.').waitFor();
      await page.getByRole('region', { name: 'Details' }).getByText('Ended', { exact: true }).waitFor();
      const ended = (await api.get(`/conferences/${live.id}`)).body;
      assert.equal(ended.state, 'ended');
      assert.equal(ended.end_cause, 'terminated by user');
      assert.equal(await page.getByRole('button', { name: 'Terminate', exact: true }).count(), 0, 'nothing left to terminate');

      await page.getByRole('link', { name: 'See its call detail records' }).click();
      await page.getByRole('heading', { name: 'CDRs', level: 1 }).waitFor();
      assert.equal(await page.getByLabel('Conference id (optional)').inputValue(), String(live.id));
      const conferences = page.getByRole('table', { name: 'Conference records' });
      const row = conferences.getByRole('row', { name: /Live check/ });
      await row.waitFor();
      assert.match(await row.textContent(), /terminated by user/);
      const legs = page.getByRole('table', { name: 'Participant records' });
      // Alice left once and came back (dashboard test), then was removed by the termination.
      await legs.getByRole('row', { name: /Alice/ }).first().waitFor();
      const aliceLegs = await legs.getByRole('row', { name: /Alice/ }).allTextContents();
      assert.equal(aliceLegs.length, 2, aliceLegs.join('\n'));
      assert.ok(aliceLegs.some((t) => /terminated by user/.test(t)), aliceLegs.join('\n'));
      assert.match(await legs.getByRole('row', { name: /Bob/ }).textContent(), /dropped by admin/);
      await page.getByRole('status').filter({ hasText: '1 record shown.' }).waitFor();

      // The CDR matches the conference's own times.
      const cdr = (await api.get(`/cdrs/conferences?conference_id=${live.id}`)).body.cdrs[0];
      assert.equal(cdr.end_cause, 'terminated by user');
      assert.equal(cdr.legs, 3);
      assert.equal(cdr.peak_participants, 2);
      assert.ok(Math.abs(Date.parse(cdr.actual_end) - Date.parse(ended.actual_end)) < 1000);
      await page.setViewportSize({ width: 1280, height: 900 });
    });
  });

  test('the CDR page downloads CSV with its filters', async () => {
    assert.ok(live, 'the monitor test ran a conference');
    await withPage('cdrs-download-csv', async (page) => {
      await signIn(page);
      await nav(page).getByRole('link', { name: 'CDRs' }).click();
      await page.getByRole('heading', { name: 'CDRs', level: 1 }).waitFor();
      await page.getByRole('table', { name: 'Conference records' }).getByRole('row', { name: /Live check/ }).waitFor();

      const [download] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download CSV of conference records' }).click(),
      ]);
      assert.equal(download.suggestedFilename(), 'conference-cdrs.csv');
      const csv = await readFile(await download.path(), 'utf8');
      const lines = csv.trimEnd().split('\r\n');
      assert.match(lines[0], /^conference_id,name,owner,bridge_id,bridge_name,room,reserved_start,/);
      const record = lines.find((l) => l.startsWith(`${live.id},Live check,admin,`));
      assert.ok(record, `the conference is in the CSV:\n${csv}`);
      assert.match(record, /terminated by user/);

      const [legsDownload] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download CSV of participant records' }).click(),
      ]);
      const legsCsv = await readFile(await legsDownload.path(), 'utf8');
      assert.match(legsCsv, /,Alice,/);
      assert.match(legsCsv, /,Bob,.*dropped by admin/);

      // The link carries the filters: a window before the conference gives only the header.
      await page.getByLabel('From date').fill('2020-01-01');
      await page.getByLabel('To date').fill('2020-01-02');
      await page.getByRole('button', { name: 'Show records' }).click();
      await page.getByText('No conference ended in this period.').waitFor();
      const [empty] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('link', { name: 'Download CSV of conference records' }).click(),
      ]);
      const emptyCsv = await readFile(await empty.path(), 'utf8');
      assert.equal(emptyCsv.trimEnd().split('\r\n').length, 1, `only the header:\n${emptyCsv}`);
    });
  });

  test('a noc user sees the dashboard and bridges, and no admin actions', async () => {
    const created = await createReadyUser(appliance, { username: 'nina', password: 'night shift watcher 42', roles: ['noc'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    await withPage('noc-no-admin-actions', async (page) => {
      await signIn(page, 'nina', 'night shift watcher 42');
      const links = (await nav(page).getByRole('link').allTextContents()).map((t) => t.trim());
      assert.ok(links.includes('Dashboard') && links.includes('Bridges'), links.join(', '));
      for (const hidden of ['Conferences', 'CDRs', 'Users', 'Audit log', 'System']) {
        assert.ok(!links.includes(hidden), `no ${hidden} in the nav: ${links.join(', ')}`);
      }
      await page.getByRole('region', { name: 'Bridges up' }).getByText('1 of 1').waitFor();
      // The NOC reads the live figures (no PINs or names in them) but books nothing.
      await page.getByRole('region', { name: 'Active conferences' }).waitFor();
      assert.equal(await page.getByRole('button', { name: 'New booking' }).count(), 0);

      // Opening an admin page by its address shows no admin controls either.
      await page.goto(`${appliance.url}conferences`);
      await page.getByText('Your account does not have access to this page.').waitFor();
      assert.equal(await page.getByRole('button', { name: 'New booking' }).count(), 0);
      assert.equal(await page.getByRole('table').count(), 0);
      await page.goto(`${appliance.url}conferences/${live?.id ?? 1}`);
      await page.getByText('Your account does not have access to this page.').waitFor();
      assert.equal(await page.getByRole('button', { name: /Terminate|Extend|Mute|Drop/ }).count(), 0);

      // The bridges page is read-only for the NOC.
      await nav(page).getByRole('link', { name: 'Bridges' }).click();
      await page.getByRole('heading', { name: 'Bridges', level: 1 }).waitFor();
      await page.getByText('browser-janus').first().waitFor();
      const adminButtons = page.getByRole('button', { name: /add|edit|save|remove|delete|cordon|disable|enable|register/i });
      assert.equal(await adminButtons.count(), 0, `no admin buttons: ${await adminButtons.allTextContents()}`);

      // And the server refuses anyway: the page's own session cannot book.
      const refused = await page.evaluate(async () => {
        const session = await (await fetch('/api/v1/auth/session')).json();
        const r = await fetch('/api/v1/conferences', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': session.csrf_token },
          body: JSON.stringify({ name: 'Not allowed', start_now: true, duration_minutes: 5, ports: 1 }),
        });
        return { status: r.status, body: await r.json() };
      });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
    });
  });

  test('a form post without its CSRF token is refused', async () => {
    await withPage('csrf-refused', async (page) => {
      await signIn(page);
      await openConferences(page);
      const answer = await page.evaluate(async () => {
        const r = await fetch('/api/v1/conferences', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name: 'No token', start_now: true, duration_minutes: 5, ports: 1 }),
        });
        return { status: r.status, body: await r.json() };
      });
      assert.equal(answer.status, 403);
      assert.equal(answer.body.error.code, 'csrf_failed');
      assert.equal(await conferenceByName('No token'), undefined, 'nothing was booked');

      // A wrong token is refused the same way.
      const wrong = await page.evaluate(async () => {
        const r = await fetch('/api/v1/conferences', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'not-the-token' },
          body: JSON.stringify({ name: 'Wrong token', start_now: true, duration_minutes: 5, ports: 1 }),
        });
        return { status: r.status, body: await r.json() };
      });
      assert.equal(wrong.status, 403);
      assert.equal(wrong.body.error.code, 'csrf_failed');
      assert.equal(await conferenceByName('Wrong token'), undefined, 'nothing was booked');
    });
  });
});
