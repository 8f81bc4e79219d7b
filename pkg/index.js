// instructor-embed: INSTRUCTOR text embeddings (hkunlp/instructor-*) in the browser.
//
//   import { Instructor } from 'instructor-embed';
//   const model = await Instructor.load('hkunlp/instructor-base', { onProgress: console.log });
//   const { data, dims } = await model.encode([['Represent the Science title: ', '3D ActionSLAM']]);
//
// The model runs in WebAssembly (SIMD) on the page's thread, its matrix products on a pool of
// Web Workers when the page is cross-origin isolated; `InstructorWorker` has the same methods and
// runs it in a Web Worker. Weights are streamed from the hub once and cached in
// IndexedDB (database `instructor-embed`); later loads make no network request.

import * as cache from './cache.js';
import { fetchInt8Model, fetchModel, InstructorError } from './hub.js';

export { InstructorError };

const DEFAULT_HUB = 'https://huggingface.co';

// Three builds of the module (scripts/build-wasm.sh): `wasm/`, single-threaded with the WebGPU
// backend, `wasm-threads/`, whose matrix products run on a pool of Web Workers but which has no
// WebGPU (wgpu's browser types cannot be shared between threads), and `wasm-simd128/`, `wasm/`
// without relaxed SIMD. The first two use relaxed SIMD (the int8 kernel's dot product); a browser
// that cannot validate it (Safari) refuses such a module whole and gets `wasm-simd128/`. A model on
// the CPU runs on the threaded build when the page is cross-origin isolated; a model on WebGPU
// always on a single-threaded one. Each is instantiated once, on first use.
const modules = { relaxed: null, simd128: null, threads: null };
let threadsFailed = false;

// (module (func (result v128) i32.const 1 i8x16.splat i32.const 2 i8x16.splat i8x16.relaxed_swizzle))
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1, 13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128,
  2, 11,
]);

/** Whether this browser runs relaxed SIMD; `simd: 'simd128'` (a load option) says no. */
function relaxedSimd(simd) {
  if (simd !== 'auto' && simd !== 'simd128') {
    throw new InstructorError(`instructor-embed: unknown simd '${simd}' (expected 'auto' or 'simd128')`, { name: 'TypeError' });
  }
  return simd === 'auto' && WebAssembly.validate(RELAXED_PROBE);
}

function single(wasmUrl, relaxed) {
  const key = relaxed ? 'relaxed' : 'simd128';
  modules[key] ??= (relaxed ? import('./wasm/instructor.js') : import('./wasm-simd128/instructor.js')).then(async (m) => {
    await m.default(wasmUrl ? { module_or_path: wasmUrl } : undefined);
    return m;
  });
  return modules[key].catch((e) => {
    modules[key] = null;
    throw e;
  });
}

/**
 * The build for the CPU: the threaded one when the page is cross-origin isolated (so
 * `SharedArrayBuffer` exists) and the browser has relaxed SIMD, its pool started with one Web
 * Worker per logical core; otherwise, or if that fails (a console warning says why), a
 * single-threaded one.
 */
async function cpuModule(wasmUrl, relaxed) {
  if (relaxed && globalThis.crossOriginIsolated && typeof SharedArrayBuffer === 'function' && !threadsFailed) {
    modules.threads ??= import('./wasm-threads/instructor.js').then(async (m) => {
      await m.default();
      await startPool(m, navigator.hardwareConcurrency || 1);
      return m;
    });
    try {
      return await modules.threads;
    } catch (e) {
      threadsFailed = true;
      modules.threads = null;
      console.warn('instructor-embed: the threaded build did not start; running single-threaded:', e);
    }
  }
  return single(wasmUrl, relaxed);
}

/** How long the thread pool's workers may take to start before the single-threaded build is used. */
const THREAD_POOL_TIMEOUT_MS = 30000;

/**
 * `initThreadPool(n)`, rejecting where it would hang: wasm-bindgen-rayon waits for a "ready"
 * message from every worker and never hears of one that did not start. The usual cause is a
 * Content-Security-Policy without `worker-src blob:` (the pool's workers are blob URLs): that
 * rejects at once, naming the policy; anything else after THREAD_POOL_TIMEOUT_MS.
 */
function startPool(m, n) {
  const target = globalThis.document ?? globalThis;
  let onViolation;
  let timer;
  const failed = new Promise((_, reject) => {
    onViolation = (e) => {
      if (String(e.blockedURI).startsWith('blob')) {
        reject(new Error(`the page's Content-Security-Policy blocks the thread pool's workers (${e.effectiveDirective}; allow blob: in worker-src): ${e.originalPolicy}`));
      }
    };
    target.addEventListener('securitypolicyviolation', onViolation);
    timer = setTimeout(() => reject(new Error(`the thread pool did not start within ${THREAD_POOL_TIMEOUT_MS / 1000} s`)), THREAD_POOL_TIMEOUT_MS);
  });
  return Promise.race([m.initThreadPool(n), failed]).finally(() => {
    clearTimeout(timer);
    target.removeEventListener('securitypolicyviolation', onViolation);
  });
}

/**
 * Instantiates the module a CPU model runs on (see above) and resolves to the number of threads
 * its matrix products use. `wasmUrl` overrides where the single-threaded .wasm is fetched from;
 * the threaded one is always next to its JS.
 */
export async function init(wasmUrl) {
  return (await cpuModule(wasmUrl, relaxedSimd('auto'))).threads();
}

/**
 * Where the model runs: `{ module, device, fallbackReason }`, `device` being what the wasm side
 * is asked for. 'auto' looks for a WebGPU adapter first: none, or only a software one
 * (SwiftShader: the CPU path is faster), means the CPU with that reason; a hardware adapter means
 * the wasm side tries it and falls back by itself if the model does not fit. This probe stays in
 * JS because it picks which wasm build to fetch (threaded CPU or WebGPU) before any wasm exists;
 * the names are the core's `Device` names ('webgpu' is its `wgpu`), and its reasons are worded
 * as the core's (`Error::Device`).
 */
async function pickDevice(device, dtype, wasmUrl, relaxed) {
  const gpu = typeof navigator !== 'undefined' ? navigator.gpu : undefined;
  const cpu = async (fallbackReason) => ({ module: await cpuModule(wasmUrl, relaxed), device: 'cpu', fallbackReason });
  switch (device ?? 'auto') {
    case 'cpu':
      return cpu(null);
    case 'auto': {
      // As the core's Device::Auto words it.
      if (dtype === 'int8') return cpu('int8 runs on the CPU');
      if (!gpu) return cpu('WebGPU is not available in this browser (no navigator.gpu)');
      const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' }).catch(() => null);
      if (!adapter) return cpu('wgpu: no GPU adapter: WebGPU offers none here');
      if (adapter.info?.isFallbackAdapter) {
        const name = adapter.info.description || adapter.info.architecture || 'unnamed adapter';
        return cpu(`wgpu: only a software adapter (${name}) was found, and the CPU path is faster`);
      }
      return { module: await single(wasmUrl, relaxed), device: 'auto', fallbackReason: null };
    }
    case 'webgpu':
      if (!gpu) {
        throw new InstructorError(
          "instructor-embed: device 'webgpu' needs WebGPU, which this browser does not offer here (no navigator.gpu; " +
            "pages need a secure context such as https or localhost); use 'auto' to fall back to the CPU",
          { name: 'NotSupportedError' },
        );
      }
      return { module: await single(wasmUrl, relaxed), device: 'webgpu', fallbackReason: null };
    default:
      throw new InstructorError(`instructor-embed: unknown device '${device}' (expected 'auto', 'cpu' or 'webgpu')`, {
        name: 'TypeError',
      });
  }
}

function checkDtype(dtype) {
  if (dtype !== 'f32' && dtype !== 'f16' && dtype !== 'int8') {
    throw new InstructorError(`instructor-embed: unknown dtype '${dtype}' (expected 'f32', 'f16' or 'int8')`, {
      name: 'TypeError',
    });
  }
}

/** `[[instruction, text], ...]` (a plain string is a text without instruction). */
export function splitPairs(pairs) {
  if (!Array.isArray(pairs)) throw new TypeError('instructor-embed: encode expects an array of [instruction, text] pairs');
  const instructions = [];
  const texts = [];
  pairs.forEach((p, i) => {
    if (typeof p === 'string') {
      instructions.push('');
      texts.push(p);
    } else if (Array.isArray(p) && p.length === 2 && typeof p[0] === 'string' && typeof p[1] === 'string') {
      instructions.push(p[0]);
      texts.push(p[1]);
    } else {
      throw new TypeError(`instructor-embed: input ${i} is not an [instruction, text] pair of strings`);
    }
  });
  return { instructions, texts };
}

/** The fields of `info` (both classes have them). */
function infoOf(m) {
  const { repo, revision, commit, device, adapter, dtype, simd, int8Kernel, threads, fromCache, fallbackReason } = m;
  return { repo, revision, commit, device, adapter, dtype, simd, int8Kernel, threads, fromCache, fallbackReason };
}

export class Instructor {
  #model;
  #dim;
  /** Encode calls run one after another (a WebGPU batch awaits its results mid-call). */
  #queue = Promise.resolve();

  /** @private use Instructor.load */
  constructor(model, info) {
    this.#model = model;
    this.#dim = model.dim();
    this.repo = info.repo;
    this.revision = info.revision;
    this.commit = info.commit;
    this.device = info.device;
    this.adapter = info.adapter;
    this.dtype = info.dtype;
    this.fallbackReason = info.fallbackReason;
    this.fromCache = info.fromCache;
    this.threads = info.threads;
    this.simd = info.simd;
    this.int8Kernel = info.int8Kernel;
  }

  /**
   * Where and how the model runs, in one object: `{ repo, revision, commit, device, adapter,
   * dtype, simd ('relaxed-simd' or 'simd128': which build was picked), int8Kernel, threads,
   * fromCache, fallbackReason }`.
   */
  get info() {
    return infoOf(this);
  }

  /**
   * Loads `repo` (e.g. 'hkunlp/instructor-base'): from the IndexedDB cache when a previous load
   * completed, otherwise streamed from the hub (resuming an interrupted download).
   */
  static async load(repo, options = {}) {
    const {
      hubUrl = DEFAULT_HUB,
      revision = 'main',
      device = 'auto',
      dtype = 'f32',
      simd = 'auto',
      onProgress,
      wasmUrl,
      retries,
    } = options;
    if (typeof repo !== 'string' || !repo.includes('/')) {
      throw new TypeError(`instructor-embed: repo must look like 'owner/name', got ${JSON.stringify(repo)}`);
    }
    checkDtype(dtype);
    const dev = await pickDevice(device, dtype, wasmUrl, relaxedSimd(simd));
    const wasm = dev.module;
    const fetch = dtype === 'int8' ? fetchInt8Model : fetchModel;
    const { commit, files, fromCache } = await fetch(repo, { hubUrl, revision, wasm, onProgress, retries });
    // The file buffers stay in the JS heap; the loader copies one tensor at a time into wasm
    // (and, on WebGPU, on to the GPU one block at a time).
    let model;
    try {
      model = await wasm.WasmModel.load(`${repo}@${commit}`, files, dtype, dev.device);
    } catch (e) {
      // The wasm side names the error's class from the core's error kind (crates/web: core_err).
      throw new InstructorError(`instructor-embed: ${repo}@${commit}: ${e?.message ?? e}`, {
        name: ['GPUError', 'TypeError'].includes(e?.name) ? e.name : 'ModelError',
      });
    } finally {
      files.length = 0;
    }
    try {
      onProgress?.({ status: 'ready' });
    } catch (e) {
      console.error('instructor-embed: onProgress threw', e);
    }
    return new Instructor(model, {
      repo,
      revision,
      commit,
      dtype: model.dtype(),
      fromCache,
      device: model.device(),
      adapter: model.adapter() ?? null,
      fallbackReason: model.fallbackReason() ?? dev.fallbackReason,
      // A model on WebGPU is always on the single-threaded build: 1.
      threads: wasm.threads(),
      simd: wasm.relaxedSimd() ? 'relaxed-simd' : 'simd128',
      int8Kernel: model.int8Kernel() ?? null,
    });
  }

  /** Size of the embeddings. */
  get dim() {
    return this.#dim;
  }

  /**
   * Embeds `[instruction, text]` pairs. Returns `{ data: Float32Array (n × dim, row-major),
   * dims: [n, dim] }`.
   */
  async encode(pairs, { batchSize = 32, normalize = false } = {}) {
    if (!this.#model) throw new InstructorError('instructor-embed: the model was disposed', { name: 'InvalidStateError' });
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new TypeError('instructor-embed: batchSize must be a positive integer');
    const { instructions, texts } = splitPairs(pairs);
    // dispose() frees the model only after the calls queued before it.
    const model = this.#model;
    const run = this.#queue.then(async () => {
      const data = await model.encode(instructions, texts, batchSize, !!normalize);
      return { data, dims: [texts.length, this.#dim] };
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Number of tokens the pairs take after truncation (for throughput figures). */
  countTokens(pairs) {
    const { instructions, texts } = splitPairs(pairs);
    return this.#model.countTokens(instructions, texts);
  }

  /**
   * Frees the model's wasm memory (the module's linear memory itself never shrinks) and GPU
   * buffers, after the encode calls already queued.
   */
  async dispose() {
    const model = this.#model;
    this.#model = null;
    await this.#queue;
    model?.free();
  }

  /** What is cached in IndexedDB: `[{ repo, commit, revisions, files, size, complete }]`. */
  static cachedModels() {
    return cache.listCached();
  }

  /** Deletes the cache of one repo (all revisions), or everything. */
  static clearCache(repo) {
    return cache.clear(repo);
  }

  /** Bytes of wasm linear memory, all builds in use together (it only grows, so this is the peak so far). */
  static async wasmMemoryBytes() {
    const loaded = await Promise.all(Object.values(modules).filter(Boolean));
    if (loaded.length === 0) loaded.push(await cpuModule());
    return loaded.reduce((sum, m) => sum + m.wasmMemoryBytes(), 0);
  }
}

function reviveError(e) {
  const err = new InstructorError(e.message, e);
  err.name = e.name;
  return err;
}

/**
 * The same API with the model in a Web Worker: the page never blocks. Calls are queued in the
 * worker and run one at a time, in order.
 */
export class InstructorWorker {
  #worker;
  #pending = new Map();
  #next = 0;

  /** @private use InstructorWorker.load */
  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (ev) => {
      const { id, progress, result, error } = ev.data;
      const p = this.#pending.get(id);
      if (!p) return;
      if (progress) {
        try {
          p.onProgress?.(progress);
        } catch (e) {
          console.error('instructor-embed: onProgress threw', e);
        }
        return;
      }
      this.#pending.delete(id);
      if (error) p.reject(reviveError(error));
      else p.resolve(result);
    };
    worker.onerror = (ev) => {
      const err = new InstructorError(`instructor-embed: worker failed: ${ev.message}`, { name: 'WorkerError' });
      for (const p of this.#pending.values()) p.reject(err);
      this.#pending.clear();
    };
  }

  #call(op, args, onProgress) {
    if (!this.#worker) return Promise.reject(new InstructorError('instructor-embed: the worker was disposed', { name: 'InvalidStateError' }));
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, onProgress });
      this.#worker.postMessage({ id, op, args });
    });
  }

  /** See Instructor's. */
  get info() {
    return infoOf(this);
  }

  static async load(repo, options = {}) {
    const { onProgress, workerUrl, ...rest } = options;
    // Written out as `new Worker(new URL('./worker.js', import.meta.url), …)`: the form bundlers
    // (Vite, webpack 5, Parcel) recognise and build as a worker entry, with its imports. A URL
    // held in a variable is copied (or inlined) as a plain asset whose `import './index.js'`
    // then resolves nowhere.
    const worker = workerUrl
      ? new Worker(workerUrl, { type: 'module' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const w = new InstructorWorker(worker);
    try {
      const info = await w.#call('load', { repo, options: rest }, onProgress);
      Object.assign(w, info);
    } catch (e) {
      w.#worker.terminate();
      w.#worker = null;
      throw e;
    }
    return w;
  }

  async encode(pairs, options = {}) {
    splitPairs(pairs); // fail here, with the caller's stack, on bad input
    return this.#call('encode', { pairs, options });
  }

  async countTokens(pairs) {
    return this.#call('countTokens', { pairs });
  }

  async dispose() {
    if (!this.#worker) return;
    await this.#call('dispose', {}).catch(() => {});
    this.#worker.terminate();
    this.#worker = null;
  }

  static cachedModels() {
    return cache.listCached();
  }

  static clearCache(repo) {
    return cache.clear(repo);
  }
}
