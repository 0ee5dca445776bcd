// Real media: Chromium publishes its fake camera and microphone over WebRTC to a Janus on another
// host, and the admin mutes it from the monitor. Run by ./run, which puts this process (and so
// vcrmd and Chromium) on host "a" and starts Janus on host "b" of a veth link in 198.18.0.0/15.
// Signalling goes through Janus's own HTTP API from Node; only the PeerConnection is in the page.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { launchBrowser, startAppliance, submitSignIn, withPage as pageSession } from '../lib/appliance.mjs';
import { JanusParticipant, apiClient, eventually, startBridge, stopEverything } from '../lib/janus.mjs';

const HOST_A = process.env.VCRM_NETNS_HOST_A;
const HOST_B = process.env.VCRM_NETNS_HOST_B;
const NETNS_B = process.env.VCRM_NETNS_B;

/**
 * In `page`, captures the fake camera and microphone, offers them send-only and returns the
 * offer once ICE gathering is complete (so it carries the candidates: no trickle needed).
 */
function offerFromBrowser(page) {
  return page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    for (const track of stream.getTracks()) pc.addTransceiver(track, { direction: 'sendonly', streams: [stream] });
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') resolve();
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') resolve();
      });
    });
    window.vcrmPeer = pc;
    return pc.localDescription.sdp;
  });
}

/** Applies Janus's answer in `page` and waits until media flows: connected, RTP bytes sent. */
async function connectInBrowser(page, answerSdp) {
  await page.evaluate((sdp) => window.vcrmPeer.setRemoteDescription({ type: 'answer', sdp }), answerSdp);
  await page.waitForFunction(() => window.vcrmPeer.connectionState === 'connected', null, { timeout: 20_000 });
  const sent = () => page.evaluate(async () => {
    let bytes = 0;
    (await window.vcrmPeer.getStats()).forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'audio') bytes += s.bytesSent;
    });
    return bytes;
  });
  const first = await sent();
  await eventually(async () => (await sent()) > first, 'audio RTP to flow to Janus', 10_000, 200);
}

const moderated = (participant, what) => participant.waitForEvent(
  (e) => e.sender === participant.handle && e.plugindata?.data?.moderation === what, 10_000);

describe('real media from Chromium through a Janus on another host', { timeout: 240_000 }, () => {
  let appliance = null;
  let browser = null;
  let api = null;
  let janus = null;
  const participants = [];

  before(async () => {
    assert.ok(HOST_A && HOST_B && NETNS_B, 'run through tests/browser/netns/run, which makes the two hosts');
    appliance = await startAppliance({
      extraArgs: ['--set', 'conference.prelaunch_seconds=2', '--set', 'bridge.probe_seconds=1',
        '--set', 'bridge_events.port=0', '--set', `bridge_events.listen=${HOST_A}`],
    });
    api = await apiClient(appliance);
    ({ janus } = await startBridge(api, { name: 'remote-janus', ip: HOST_B, netns: NETNS_B }));
    browser = await launchBrowser({ extraArgs: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'] });
  });

  after(async () => {
    await stopEverything({ participants, browser, api, janus, appliance });
  });

  const withPage = (name, body, options) => pageSession(browser, name, body, options);

  test('mute from the monitor silences a publishing browser; a mute given before media is applied when it starts', async () => {
    const booked = await api.post('/conferences', {
      name: 'Media check', start_now: true, duration_minutes: 30, ports: 4, pin: '1234',
    });
    assert.equal(booked.status, 201, JSON.stringify(booked.body));
    const live = await eventually(async () => {
      const c = (await api.get(`/conferences/${booked.body.id}`)).body;
      return c.state === 'active' ? c : null;
    }, 'the conference to be active');
    const participant = (name) => async () =>
      (await api.get(`/conferences/${live.id}`)).body.participants.find((p) => p.display_name === name);

    await withPage('media-monitor', async (page) => {
      await page.goto(appliance.url);
      await submitSignIn(page, 'admin', appliance.password);
      await page.getByRole('heading', { name: 'Dashboard', level: 1 }).waitFor();
      await page.goto(`${appliance.url}conferences/${live.id}`);
      await page.getByRole('heading', { name: 'Media check', level: 1 }).waitFor();
      const table = page.getByRole('table', { name: 'Participants now in the room' });

      // Alice publishes her camera and microphone from a browser of her own.
      await withPage('media-alice', async (alicePage) => {
        await alicePage.goto(appliance.url); // any page of a secure origin may capture media
        const alice = await JanusParticipant.join(janus.httpUrl, { room: live.room, display: 'Alice', pin: '1234' });
        participants.push(alice);
        await connectInBrowser(alicePage, await alice.publish(await offerFromBrowser(alicePage)));
        await eventually(async () => (await participant('Alice')())?.publishing, 'vcrmd to see Alice publishing');
        const aliceRow = table.getByRole('row', { name: /Alice/ });
        await aliceRow.getByText('Yes', { exact: true }).waitFor();

        await aliceRow.getByRole('button', { name: 'Mute Alice' }).click();
        const muted = await moderated(alice, 'muted');
        assert.ok(muted, 'Janus muted a stream of Alice');
        const audioMid = muted.plugindata.data.mid;
        const mids = await alicePage.evaluate(() =>
          window.vcrmPeer.getTransceivers().map((t) => ({ mid: t.mid, kind: t.sender.track?.kind })));
        assert.equal(mids.find((t) => t.mid === audioMid)?.kind, 'audio', `mid ${audioMid} is her microphone: ${JSON.stringify(mids)}`);
        await aliceRow.getByRole('button', { name: 'Unmute Alice' }).waitFor();

        await aliceRow.getByRole('button', { name: 'Unmute Alice' }).click();
        const unmuted = await moderated(alice, 'unmuted');
        assert.ok(unmuted, 'Janus unmuted Alice');
        assert.equal(unmuted.plugindata.data.mid, audioMid);
        await aliceRow.getByRole('button', { name: 'Mute Alice' }).waitFor();
      }, { width: 640 });

      // Bob is muted while he has no media; when his browser starts publishing, vcrmd applies it.
      const bob = await JanusParticipant.join(janus.httpUrl, { room: live.room, display: 'Bob', pin: '1234' });
      participants.push(bob);
      const bobRow = table.getByRole('row', { name: /Bob/ });
      await bobRow.getByRole('button', { name: 'Mute Bob' }).click();
      await bobRow.getByRole('button', { name: 'Unmute Bob' }).waitFor();
      await withPage('media-bob', async (bobPage) => {
        await bobPage.goto(appliance.url);
        const bobMuted = moderated(bob, 'muted');
        await connectInBrowser(bobPage, await bob.publish(await offerFromBrowser(bobPage)));
        assert.ok(await bobMuted, "vcrmd applied Bob's mute when his media started");
        assert.equal((await participant('Bob')()).muted, true);
      }, { width: 640 });
    }, { width: 1280 });
  });
});
