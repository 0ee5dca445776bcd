// Test support for the upgrade tests: signed bundles made the vendor's way (packaging/build-bundle
// with the repository's TEST key), an appliance that trusts that key, and the names the
// Server Software Upgrade page shows.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { binDir, sourceDir } from './appliance.mjs';

export const TEST_KEY_ID = 'vcrm-test-bundle-1';

export const OPERATOR = { username: 'olivia', password: 'Operator-Lantern-2231', roles: ['operator'] };
export const PASSPHRASE = 'correct horse battery staple';
// The page, and its regions as the drivers' scopes.
export const PAGE = 'Server Software Upgrade';
export const UPLOAD = { within: 'Upload a bundle' };
export const PENDING = { within: 'Bundle waiting for confirmation' };
export const PROGRESS = { within: 'Upgrade progress' };
/** `s` as a literal inside a RegExp. */
export const esc = (s) => String(s).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** "0.1.1" from "0.1.0": the running version with its last number one higher. */
export function nextVersion(version) {
  const parts = String(version).split('.');
  parts[parts.length - 1] = String(Number.parseInt(parts[parts.length - 1], 10) + 1);
  return parts.join('.');
}

/** Today's date (UTC) as a bundle's release date. */
export const today = () => new Date().toISOString().slice(0, 10);

/**
 * Makes `<dir>/<name>` with packaging/build-bundle from the build tree `buildDir` (the
 * installation a slot holds, signed with the TEST key): version `version`, release notes
 * `notes`. Resolves the file's path.
 */
export async function buildBundle(buildDir, dir, name, { version, notes, minVersion = '0.0.1' }) {
  const out = path.join(dir, name);
  const notesFile = path.join(dir, `${name}.notes.txt`);
  await writeFile(notesFile, notes);
  await promisify(execFile)(path.join(sourceDir, 'packaging', 'build-bundle'), ['--build', buildDir,
    '--version', version, '--min-version', minVersion, '--notes', notesFile, '--out', out], { maxBuffer: 16 << 20 });
  return out;
}

/**
 * Like buildBundle, with vcrm-bundle create itself: the installation of `buildDir` plus
 * `padBytes` of random bytes in share/vcrm/test-padding.bin, so the bundle is larger than one
 * upload chunk (8 MiB) and its upload shows its progress part way. Resolves the file's path.
 */
export async function paddedBundle(buildDir, dir, name, { version, notes, padBytes, minVersion = '0.0.1' }) {
  const out = path.join(dir, name);
  const tree = await mkdtemp(path.join(dir, 'tree-'));
  try {
    await promisify(execFile)('cmake', ['--install', buildDir, '--prefix', tree], { maxBuffer: 16 << 20 });
    await writeFile(path.join(tree, 'share', 'vcrm', 'test-padding.bin'), randomBytes(padBytes));
    await promisify(execFile)('chmod', ['-R', 'u+rwX,go+rX,go-w,ug-s', tree]);
    const notesFile = path.join(dir, `${name}.notes.txt`);
    await writeFile(notesFile, notes);
    await promisify(execFile)(path.join(binDir, 'vcrm-bundle'), ['create',
      '--key', path.join(sourceDir, 'upgrade', 'keys', 'vcrm-test-bundle.key'), '--version', version,
      '--release-date', today(), '--compatible', 'vcrm-appliance', '--min-version', minVersion,
      '--notes', notesFile, '--from', tree, '--out', out]);
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
  return out;
}

/** A copy of `file` at `out` with one byte of its payload (near the end) flipped. */
export async function tamperedCopy(file, out) {
  const bytes = await readFile(file);
  bytes[bytes.length - 100] ^= 0xff;
  await writeFile(out, bytes);
  return out;
}

/** Makes the appliance under `root` trust the repository's TEST bundle key (as packaging/dev run does). */
export async function trustTestKey(root) {
  await mkdir(path.join(root, 'etc', 'vcrm'), { recursive: true });
  const pub = await readFile(path.join(sourceDir, 'upgrade', 'keys', 'vcrm-test-bundle.pub'), 'utf8');
  await writeFile(path.join(root, 'etc', 'vcrm', 'bundle-keyring'), pub, { mode: 0o644 });
}
