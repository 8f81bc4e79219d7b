// Fetching a model's files from the hub into the IndexedDB cache.
//
// A browser `fetch` follows the hub's 302 to its CDN and hides the 302's headers (X-Linked-Etag),
// so sizes and sha256s come from the API (`/api/models/{repo}/revision/{rev}?blobs=true`), and
// files are fetched pinned to the commit that API returns. Which files: the same rule as the
// native loader (`modules.json` → each module's files, first present weight candidate), taken
// from the wasm module rather than re-implemented here.

import * as cache from './cache.js';

const CHUNK_BYTES = 4 << 20;

export class InstructorError extends Error {
  constructor(message, props = {}) {
    super(message);
    this.name = props.name ?? 'InstructorError';
    Object.assign(this, props);
  }
}

const trimSlash = (s) => s.replace(/\/+$/, '');
const encPath = (p) => p.split('/').map(encodeURIComponent).join('/');

async function hubJson(url) {
  let resp;
  try {
    resp = await fetch(url, { cache: 'no-store' });
  } catch (e) {
    throw new InstructorError(`instructor-embed: cannot reach the hub (${url}): ${e.message}`, {
      name: 'NetworkError',
      cause: e,
    });
  }
  if (!resp.ok) {
    const code = resp.headers.get('X-Error-Code');
    throw new InstructorError(
      `instructor-embed: ${url} answered ${resp.status}${code ? ` (${code})` : ''}`,
      { name: 'HubError', status: resp.status },
    );
  }
  return resp.json();
}

/** Free space per navigator.storage.estimate(), or Infinity when unknown. */
async function freeBytes() {
  try {
    const { quota, usage } = await navigator.storage.estimate();
    if (typeof quota === 'number' && typeof usage === 'number') return quota - usage;
  } catch {
    /* not available */
  }
  return Infinity;
}

function quotaError(file, needed, cause) {
  return new InstructorError(
    `instructor-embed: not enough storage to cache ${file}: ${needed} more bytes are needed. ` +
      'Free some space or ask for persistent storage (navigator.storage.persist()); ' +
      'what was downloaded so far is kept and the download resumes from there.',
    { name: 'QuotaExceededError', file, bytesNeeded: needed, cause },
  );
}

const isQuota = (e) => e?.name === 'QuotaExceededError' || e?.inner?.name === 'QuotaExceededError';

function concat(parts, total) {
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * Makes sure `file` of `repo@commit` is complete in the cache: downloads it, resuming with
 * `Range` from the chunks already stored, hashing as bytes arrive.
 */
async function ensureFile(ctx, entry) {
  const { repo, commit, hubUrl, wasm, progress } = ctx;
  const { file, size, sha256 } = entry;
  let rec = await cache.getFile(repo, commit, file);
  if (rec?.complete) {
    progress({ file, loaded: rec.size, total: rec.size, cached: true });
    return;
  }
  if (rec && (rec.size !== size || rec.sha256 !== sha256)) {
    await cache.deleteFile(repo, commit, file);
    rec = null;
  }
  let hasher = new wasm.Sha256Hasher();
  if (rec && rec.stored > 0) {
    // Resume: the hash state is not stored, so hash what is stored again.
    try {
      for (const c of await cache.readChunks(rec)) hasher.update(c);
    } catch {
      await cache.deleteFile(repo, commit, file);
      rec = null;
      hasher.free();
      hasher = new wasm.Sha256Hasher();
    }
  }
  if (!rec) {
    rec = { repo, commit, file, size, sha256, stored: 0, chunks: 0, complete: false };
    await cache.putFile(rec);
  }
  const free = await freeBytes();
  if (size != null && size - rec.stored > free) {
    hasher.free();
    throw quotaError(file, size - rec.stored);
  }

  if (size != null && rec.stored === size) {
    // Everything was stored but not yet verified (interrupted right at the end).
    return finishFile(ctx, entry, rec, hasher);
  }
  const url = `${hubUrl}/${encPath(repo)}/resolve/${encodeURIComponent(commit)}/${encPath(file)}`;
  const headers = rec.stored > 0 ? { Range: `bytes=${rec.stored}-` } : {};
  let resp;
  try {
    resp = await fetch(url, { headers, cache: 'no-store' });
  } catch (e) {
    hasher.free();
    throw new InstructorError(`instructor-embed: cannot download ${file}: ${e.message}`, {
      name: 'NetworkError',
      file,
      cause: e,
    });
  }
  if (rec.stored > 0 && resp.status === 200) {
    // The server ignored the Range: start over.
    await cache.deleteFile(repo, commit, file);
    rec = { ...rec, stored: 0, chunks: 0 };
    await cache.putFile(rec);
    hasher.free();
    hasher = new wasm.Sha256Hasher();
  } else if (!resp.ok) {
    hasher.free();
    throw new InstructorError(`instructor-embed: ${url} answered ${resp.status}`, {
      name: 'HubError',
      status: resp.status,
      file,
    });
  }
  const total = size ?? rec.stored + Number(resp.headers.get('Content-Length') ?? NaN);
  let loaded = rec.stored;
  progress({ file, loaded, total });

  let parts = [];
  let buffered = 0;
  const flush = async () => {
    if (buffered === 0) return;
    const data = concat(parts, buffered);
    parts = [];
    buffered = 0;
    try {
      rec = await cache.appendChunk(rec, data);
    } catch (e) {
      if (isQuota(e)) throw quotaError(file, (size ?? loaded) - rec.stored, e);
      throw e;
    }
  };
  const reader = resp.body.getReader();
  try {
    for (;;) {
      let r;
      try {
        r = await reader.read();
      } catch (e) {
        // Keep what arrived (it is hashed and correct so far); the next try resumes after it.
        await flush();
        throw new InstructorError(
          `instructor-embed: download of ${file} interrupted at ${loaded} of ${total} bytes: ${e.message}`,
          { name: 'NetworkError', file, loaded, total, cause: e },
        );
      }
      if (r.done) break;
      const piece = r.value;
      if (size != null && loaded + piece.byteLength > size) {
        await cache.deleteFile(repo, commit, file);
        throw new InstructorError(`instructor-embed: ${file} is longer than the ${size} bytes the hub lists`, {
          name: 'IntegrityError',
          file,
        });
      }
      hasher.update(piece);
      parts.push(piece);
      buffered += piece.byteLength;
      loaded += piece.byteLength;
      progress({ file, loaded, total });
      if (buffered >= CHUNK_BYTES) await flush();
    }
    await flush();
  } catch (e) {
    hasher.free();
    reader.cancel().catch(() => {});
    throw e;
  }
  return finishFile(ctx, entry, rec, hasher);
}

/** Checks the stored length and the sha256, then marks the file complete. */
async function finishFile({ repo, commit }, { file, size, sha256 }, rec, hasher) {
  if (size != null && rec.stored !== size) {
    hasher.free();
    throw new InstructorError(
      `instructor-embed: download of ${file} ended at ${rec.stored} of ${size} bytes`,
      { name: 'NetworkError', file, loaded: rec.stored, total: size },
    );
  }
  const digest = hasher.finish();
  if (sha256 && digest !== sha256) {
    await cache.deleteFile(repo, commit, file);
    throw new InstructorError(
      `instructor-embed: sha256 mismatch for ${repo}/${file}: the hub lists ${sha256}, the download hashes to ${digest}; the download was discarded`,
      { name: 'IntegrityError', file, expected: sha256, actual: digest },
    );
  }
  await cache.putFile({ ...rec, size: rec.stored, sha256: sha256 ?? digest, complete: true });
}

async function ensureFileRetrying(ctx, entry) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ensureFile(ctx, entry);
    } catch (e) {
      if (e?.name !== 'NetworkError' || attempt >= ctx.retries) throw e;
    }
  }
}

async function fileText(repo, commit, file) {
  const rec = await cache.getFile(repo, commit, file);
  const chunks = await cache.readChunks(rec);
  return new TextDecoder().decode(concat(chunks, rec.stored));
}

const INT8 = '+int8';

/** Calls `onProgress`; an exception in it is logged, not thrown into the load. */
function report(onProgress, p) {
  try {
    onProgress?.(p);
  } catch (e) {
    console.error('instructor-embed: onProgress threw', e);
  }
}

/** A ref's files as the loader takes them: `[[name, Uint8Array[]], ...]`. */
async function refFiles(ref) {
  const files = [];
  for (const f of ref.files) {
    const rec = await cache.getFile(ref.repo, ref.commit, f.file);
    if (!rec?.complete) throw new InstructorError(`instructor-embed: cache entry for ${f.file} vanished`);
    files.push([f.file, await cache.readChunks(rec)]);
  }
  return files;
}

/** Whether every file of a ref is complete in the cache. */
async function refComplete(ref) {
  const recs = await Promise.all(ref.files.map((f) => cache.getFile(ref.repo, ref.commit, f.file)));
  return recs.every((r) => r?.complete);
}

/**
 * The int8 copy of `repo@revision` (`dtype: 'int8'`): from the cache when a previous int8 load
 * stored it (a quarter of the f32 bytes, and no network), else quantized here from the f32 files
 * (`fetchModel`) and stored for next time. A model that is int8 on the hub already is returned as
 * it is. Returns what `fetchModel` does.
 */
export async function fetchInt8Model(repo, options) {
  const { revision, wasm, onProgress } = options;
  const ref8 = await cache.getRef(repo, revision + INT8);
  if (ref8 && (await refComplete(ref8))) {
    for (const f of ref8.files) report(onProgress, { file: f.file, loaded: f.size, total: f.size, cached: true });
    return { commit: ref8.commit.slice(0, -INT8.length), files: await refFiles(ref8), fromCache: true };
  }
  const f32 = await fetchModel(repo, options);
  report(onProgress, { status: 'quantizing' });
  const quantized = wasm.quantizeModel(`${repo}@${f32.commit}`, f32.files);
  if (!quantized) return f32;
  const commit8 = f32.commit + INT8;
  const entries = [];
  try {
    for (const [file, bytes] of quantized) {
      await cache.putWholeFile(repo, commit8, file, bytes, CHUNK_BYTES);
      entries.push({ file, size: bytes.byteLength, sha256: null });
    }
    await cache.putRef({ repo, revision: revision + INT8, commit: commit8, files: entries, time: Date.now() });
  } catch (e) {
    // The model still loads from memory; only the next load will quantize again.
    console.warn(`instructor-embed: the int8 copy of ${repo} was not cached:`, e);
  }
  return { commit: f32.commit, files: quantized.map(([file, bytes]) => [file, [bytes]]), fromCache: f32.fromCache };
}

/**
 * Resolves `repo@revision` to a commit and its file list, from the cache when a previous load
 * completed (no network at all), otherwise from the hub, and makes sure every file is cached.
 * Returns `{ commit, files: [[name, Uint8Array[]], ...], fromCache }`.
 */
export async function fetchModel(repo, { hubUrl, revision, wasm, onProgress, retries = 2 }) {
  hubUrl = trimSlash(hubUrl);
  const progress = (p) => report(onProgress, p);
  let ref = await cache.getRef(repo, revision);
  const fromCache = !!ref && (await refComplete(ref));
  if (!fromCache) {
    const info = await hubJson(
      `${hubUrl}/api/models/${encPath(repo)}/revision/${encodeURIComponent(revision)}?blobs=true`,
    );
    const commit = info.sha;
    if (!commit) throw new InstructorError(`instructor-embed: the hub's API gave no commit for ${repo}@${revision}`);
    const siblings = new Map((info.siblings ?? []).map((s) => [s.rfilename, s]));
    const entry = (file) => {
      const s = siblings.get(file);
      return { file, size: s?.lfs?.size ?? s?.size ?? null, sha256: s?.lfs?.sha256 ?? null };
    };
    const ctx = { repo, commit, hubUrl, wasm, progress, retries };
    if (!siblings.has('modules.json')) {
      throw new InstructorError(`instructor-embed: ${repo}@${revision} has no modules.json (not a sentence-transformers model)`);
    }
    await ensureFileRetrying(ctx, entry('modules.json'));
    const needed = JSON.parse(wasm.neededFiles(await fileText(repo, commit, 'modules.json')));
    // Optional files (sentence_bert_config.json) may be absent; the loader names any required
    // file that is missing.
    const files = needed.files.filter((f) => siblings.has(f));
    for (const candidates of needed.weights) {
      const w = candidates.find((f) => siblings.has(f));
      if (!w) {
        throw new InstructorError(
          `instructor-embed: ${repo}@${revision} has no weights: expected one of ${candidates.join(', ')}`,
        );
      }
      files.push(w);
    }
    const entries = files.map(entry);
    for (const e of entries) await ensureFileRetrying(ctx, e);
    ref = { repo, revision, commit, files: entries, hubUrl, time: Date.now() };
    await cache.putRef(ref);
  } else {
    for (const f of ref.files) progress({ file: f.file, loaded: f.size, total: f.size, cached: true });
  }
  return { commit: ref.commit, files: await refFiles(ref), fromCache };
}
