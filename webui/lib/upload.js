// A small resumable uploader for the server's tus 1.0 upload collections (README "Uploads"):
// POST the collection to create an upload, PATCH the file in chunks from Upload-Offset, and after
// a dropped connection or a busy answer HEAD the upload for the offset the server kept and go on
// from there. The upload's place is remembered in sessionStorage, so choosing the same file again
// after a reload resumes it instead of starting over.

import { ApiError, sendRaw } from '../api.js';
import { formatBytes, sentence } from './admin.js';

const TUS = { 'Tus-Resumable': '1.0.0' };
const CHUNK_BYTES = 8 * 1024 * 1024;
const RETRIES = 6; // attempts in a row without progress before giving up
const STORE_PREFIX = 'vcrm-upload:';

/** tus Upload-Metadata: "key base64(value),…". */
function metadataHeader(metadata) {
  return Object.entries(metadata)
    .map(([key, value]) => `${key} ${btoa(String.fromCharCode(...new TextEncoder().encode(String(value))))}`)
    .join(',');
}

function fileKey(collection, file) {
  return `${STORE_PREFIX}${collection}:${file.name}:${file.size}:${file.lastModified}`;
}

function remembered(key) {
  try {
    return sessionStorage.getItem(key);
  } catch {
    return null;
  }
}

function remember(key, location) {
  try {
    if (location) sessionStorage.setItem(key, location);
    else sessionStorage.removeItem(key);
  } catch {
    // private browsing: no resuming across reloads, nothing else lost
  }
}

/** A failure worth another try from the server's offset: no answer, a wrong offset, busy, 5xx. */
function retriable(error) {
  return error instanceof ApiError && error.code !== 'aborted'
    && (error.status === 0 || error.status === 409 || error.status === 423 || error.status === 429
      || error.status === 502 || error.status === 503 || error.status === 504);
}

const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/** The offset the server holds for the upload at `location`, or null when it is gone (404). */
async function serverOffset(location, signal) {
  try {
    const answer = await sendRaw('HEAD', location, { headers: TUS, signal });
    const offset = Number.parseInt(answer.header('Upload-Offset') ?? '', 10);
    return Number.isFinite(offset) ? offset : 0;
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 410)) return null;
    throw error;
  }
}

/**
 * Uploads `file` (a File or Blob) to the tus collection `collection` ("/restores/uploads"),
 * calling `onProgress(sentBytes, totalBytes)` as bytes go out and `onRetry(error)` before
 * each new attempt. Resolves {id, location, result}: `result` is the JSON the collection's
 * module answered to the last byte (also readable later with GET on `location`). Throws the
 * ApiError of a refusal (its message says why), or after RETRIES failed attempts in a row.
 */
export async function uploadFile(collection, file, { onProgress, onRetry, signal, metadata = {}, chunkBytes = CHUNK_BYTES } = {}) {
  const total = file.size;
  const key = fileKey(collection, file);
  const report = (sent) => onProgress?.(Math.min(sent, total), total);

  let location = remembered(key);
  let offset = null;
  if (location) {
    try {
      offset = await serverOffset(location, signal);
    } catch (error) {
      if (!retriable(error)) throw error;
    }
    if (offset === null) location = null;
  }
  if (!location) {
    const created = await sendRaw('POST', collection, {
      headers: {
        ...TUS, 'Upload-Length': String(total),
        'Upload-Metadata': metadataHeader({ filename: file.name ?? 'upload', ...metadata }),
      },
      signal,
    });
    location = created.header('Location') ?? created.data?.location;
    if (!location) throw new ApiError(500, 'bad_answer', 'The server did not say where the upload goes. Try again.');
    offset = 0;
    remember(key, location);
  }
  const id = location.split('/').pop();
  report(offset);

  let failures = 0;
  let result = null;
  let finished = false;
  while (!finished) {
    try {
      if (offset === null) offset = await serverOffset(location, signal);
      if (offset === null) {
        remember(key, null);
        throw new ApiError(404, 'upload_gone', 'The upload expired or was removed on the server. Choose the file and upload it again.');
      }
      if (offset >= total) {
        finished = true; // every byte is on the server already (a resumed upload)
        break;
      }
      const end = Math.min(offset + chunkBytes, total);
      const start = offset;
      const answer = await sendRaw('PATCH', location, {
        headers: { ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(start) },
        body: file.slice(start, end),
        onProgress: (loaded) => report(start + loaded),
        signal,
      });
      const next = Number.parseInt(answer.header('Upload-Offset') ?? '', 10);
      offset = Number.isFinite(next) ? next : end;
      failures = 0;
      report(offset);
      if (offset >= total) {
        result = answer.data;
        finished = true;
      }
    } catch (error) {
      if (!retriable(error) || failures + 1 >= RETRIES) {
        if (!retriable(error) && error.status !== 0) remember(key, null);
        throw error;
      }
      failures += 1;
      onRetry?.(error);
      await pause(Math.min(500 * 2 ** failures, 8000));
      offset = null; // ask the server what it kept
    }
  }
  remember(key, null);
  // An upload that was already complete on the server (a resumed one) answers with no body:
  // the module's answer stays readable with GET.
  if (result === null) {
    try {
      result = (await sendRaw('GET', location, { signal })).data;
    } catch {
      result = null;
    }
  }
  return { id, location, result };
}

/**
 * uploadFile with its progress shown on `bar` (admin.js progressBar): what was sent of how much
 * and at what rate, and a line while a broken connection is resumed. Ends with the bar full and
 * "Uploaded <size>. <then>"; resolves as uploadFile does.
 */
export async function uploadShowingProgress(collection, file, bar, then = '') {
  const started = Date.now();
  const done = await uploadFile(collection, file, {
    onProgress: (sent, total) => {
      const seconds = (Date.now() - started) / 1000;
      const rate = seconds > 0.5 ? `, ${formatBytes(sent / seconds)}/s` : '';
      bar.set(sent, total, `${formatBytes(sent)} of ${formatBytes(total)} sent${rate}`);
    },
    onRetry: (error) => bar.set(null, null, `The connection broke (${sentence(error.message)}) Resuming…`),
  });
  bar.finish(`Uploaded ${formatBytes(file.size)}.${then ? ` ${then}` : ''}`);
  return done;
}
