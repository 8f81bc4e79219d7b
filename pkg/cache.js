// The IndexedDB cache (database `instructor-embed`).
//
// Stores:
//   files  [repo, commit, file] → { size, sha256, stored, chunks, complete }
//   chunks [repo, commit, file, index] → { data: Uint8Array }
//   refs   [repo, revision] → { commit, files: [{ file, size, sha256 }] }   (what a load resolved)
//
// The int8 copy of a model that `dtype: 'int8'` made (hub.js) is stored under the commit and
// revision with `+int8` appended, so that a reload reads it instead of the f32 weights.
//
// Every chunk is written in one transaction together with its file record's byte count, so a
// record never claims more than is stored. `complete` is set only after the whole file was
// stored and its sha256 verified; a load only uses complete files, and a `refs` entry is written
// only once all of a model's files are complete.

const DB_NAME = 'instructor-embed';
const DB_VERSION = 1;

let dbPromise = null;

export function openDb() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      if (typeof indexedDB === 'undefined') {
        reject(new Error('instructor-embed: IndexedDB is not available in this context'));
        return;
      }
      const req = indexedDB.open(DB_NAME, DB_VERSION);
      req.onupgradeneeded = () => {
        const db = req.result;
        db.createObjectStore('files', { keyPath: ['repo', 'commit', 'file'] });
        db.createObjectStore('chunks', { keyPath: ['repo', 'commit', 'file', 'index'] });
        db.createObjectStore('refs', { keyPath: ['repo', 'revision'] });
      };
      req.onsuccess = () => {
        const db = req.result;
        db.onversionchange = () => {
          db.close();
          dbPromise = null;
        };
        resolve(db);
      };
      req.onerror = () => {
        dbPromise = null;
        reject(req.error);
      };
      req.onblocked = () => {
        dbPromise = null;
        reject(new Error('instructor-embed: IndexedDB upgrade blocked by another tab'));
      };
    });
  }
  return dbPromise;
}

/** Runs `fn(stores)` in one transaction; resolves with its result once the transaction commits. */
export async function transact(storeNames, mode, fn) {
  const db = await openDb();
  return new Promise((resolve, reject) => {
    let result;
    let tx;
    try {
      tx = db.transaction(storeNames, mode);
    } catch (e) {
      reject(e);
      return;
    }
    const stores = Object.fromEntries(storeNames.map((n) => [n, tx.objectStore(n)]));
    tx.oncomplete = () => resolve(result);
    tx.onabort = () => reject(tx.error ?? new DOMException('transaction aborted', 'AbortError'));
    tx.onerror = (e) => {
      // Keep the first error; the abort handler rejects.
      e.preventDefault?.();
    };
    Promise.resolve()
      .then(() => fn(stores))
      .then((r) => {
        result = r;
      })
      .catch((e) => {
        try {
          tx.abort();
        } catch {
          /* already finished */
        }
        reject(e);
      });
  });
}

export function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function chunkRange(repo, commit, file) {
  return IDBKeyRange.bound([repo, commit, file, 0], [repo, commit, file, Infinity]);
}

export function getFile(repo, commit, file) {
  return transact(['files'], 'readonly', ({ files }) => req(files.get([repo, commit, file])));
}

export function putFile(rec) {
  return transact(['files'], 'readwrite', ({ files }) => req(files.put(rec)));
}

/** Appends one chunk and advances the file record, atomically. */
export function appendChunk(rec, data) {
  const next = { ...rec, stored: rec.stored + data.byteLength, chunks: rec.chunks + 1 };
  return transact(['files', 'chunks'], 'readwrite', ({ files, chunks }) => {
    chunks.put({ repo: rec.repo, commit: rec.commit, file: rec.file, index: rec.chunks, data });
    files.put(next);
    return next;
  });
}

/**
 * Stores a whole file made here (the int8 copy of a model) in one transaction: its chunks and its
 * record, complete, or nothing.
 */
export function putWholeFile(repo, commit, file, bytes, chunkBytes) {
  return transact(['files', 'chunks'], 'readwrite', ({ files, chunks }) => {
    let index = 0;
    for (let o = 0; o < bytes.byteLength || index === 0; o += chunkBytes, index++) {
      chunks.put({ repo, commit, file, index, data: bytes.slice(o, o + chunkBytes) });
    }
    files.put({ repo, commit, file, size: bytes.byteLength, sha256: null, stored: bytes.byteLength, chunks: index, complete: true });
  });
}

/** The stored chunks of a file, in order (only those the record counts). */
export async function readChunks(rec) {
  const rows = await transact(['chunks'], 'readonly', ({ chunks }) =>
    req(chunks.getAll(chunkRange(rec.repo, rec.commit, rec.file))),
  );
  rows.sort((a, b) => a.index - b.index);
  const out = [];
  for (let i = 0; i < rec.chunks; i++) {
    if (!rows[i] || rows[i].index !== i) {
      throw new Error(`instructor-embed: cache entry ${rec.repo}/${rec.file} is missing chunk ${i}`);
    }
    out.push(rows[i].data);
  }
  return out;
}

/** Deletes a file's record and chunks. */
export function deleteFile(repo, commit, file) {
  return transact(['files', 'chunks'], 'readwrite', ({ files, chunks }) => {
    files.delete([repo, commit, file]);
    chunks.delete(chunkRange(repo, commit, file));
  });
}

export function getRef(repo, revision) {
  return transact(['refs'], 'readonly', ({ refs }) => req(refs.get([repo, revision])));
}

export function putRef(rec) {
  return transact(['refs'], 'readwrite', ({ refs }) => req(refs.put(rec)));
}

/** What is cached, grouped by repo and commit, with sizes. */
export async function listCached() {
  const [files, refs] = await transact(['files', 'refs'], 'readonly', ({ files, refs }) =>
    Promise.all([req(files.getAll()), req(refs.getAll())]),
  );
  const models = new Map();
  for (const f of files) {
    const key = `${f.repo}\u0000${f.commit}`;
    if (!models.has(key)) {
      models.set(key, { repo: f.repo, commit: f.commit, revisions: [], files: [], size: 0, complete: false });
    }
    const m = models.get(key);
    m.files.push({ file: f.file, size: f.size, stored: f.stored, complete: f.complete, sha256: f.sha256 });
    m.size += f.stored;
  }
  for (const r of refs) {
    const m = models.get(`${r.repo}\u0000${r.commit}`);
    if (m) {
      m.revisions.push(r.revision);
      m.complete = r.files.every((f) => m.files.some((g) => g.file === f.file && g.complete));
    }
  }
  for (const m of models.values()) m.files.sort((a, b) => a.file.localeCompare(b.file));
  return [...models.values()].sort((a, b) => a.repo.localeCompare(b.repo));
}

/** Deletes one repo's entries (every revision), or everything. */
export async function clear(repo) {
  await transact(['files', 'chunks', 'refs'], 'readwrite', async ({ files, chunks, refs }) => {
    if (repo === undefined || repo === null) {
      files.clear();
      chunks.clear();
      refs.clear();
      return;
    }
    // Keys start with the repo: a range over [repo] .. [repo, []] covers every key under it.
    const range = IDBKeyRange.bound([repo], [repo, []]);
    files.delete(range);
    chunks.delete(range);
    refs.delete(range);
  });
}
