// Model picker, loading with per-file download progress, the cache table, storage status and
// the errors a person can act on (quota, failed download, no WebGPU).

import { InstructorWorker } from './package.js';
import { MODELS, FIXTURES, memoryBytes, cpuBlocker } from './catalog.js';
import { formatBytes, formatDuration } from './format.js';
import { RateTracker } from './progress.js';
import { $, h } from './dom.js';

export const DEFAULT_HUB = 'https://huggingface.co';
const PREFS_KEY = 'instructor-demo:model';

/** The hub from `?hub=` (a local mirror), else the real one. */
export function hubUrl() {
  return new URLSearchParams(location.search).get('hub') || DEFAULT_HUB;
}

function catalog() {
  return hubUrl() === DEFAULT_HUB ? MODELS : [...FIXTURES, ...MODELS];
}

async function storageEstimate() {
  try {
    return await navigator.storage.estimate();
  } catch {
    return {};
  }
}

/** Per-file rows of the download panel. */
class DownloadView {
  #rows = new Map();
  #root;

  constructor(root) {
    this.#root = root;
  }

  clear() {
    this.#rows.clear();
    this.#root.replaceChildren();
  }

  update({ file, loaded, total, cached }) {
    let row = this.#rows.get(file);
    if (!row) {
      row = { bar: h('progress'), text: h('span'), tracker: new RateTracker() };
      this.#rows.set(file, row);
      this.#root.append(h('div', { class: 'file', dataset: { file } }, h('code', {}, file), row.bar, row.text));
    }
    row.bar.max = Math.max(total, 1);
    row.bar.value = loaded;
    if (cached) {
      row.text.textContent = `${formatBytes(total)} · from the cache`;
      return;
    }
    const { rate, eta } = row.tracker.update(loaded, total, performance.now());
    const speed = Number.isFinite(rate) ? ` · ${formatBytes(rate)}/s` : '';
    const left = loaded >= total ? ' · done' : ` · ${formatDuration(eta)} left`;
    row.text.textContent = `${formatBytes(loaded)} / ${formatBytes(total)}${speed}${left}`;
  }
}

export class ModelPanel extends EventTarget {
  /** The loaded InstructorWorker, or null. */
  model = null;
  #downloads = new DownloadView($('downloads'));
  #loading = false;

  constructor() {
    super();
    const prefs = JSON.parse(localStorage.getItem(PREFS_KEY) ?? '{}');
    $('model-select').replaceChildren(
      ...catalog().map((m) => h('option', { value: m.repo }, m.fixture ? `${m.repo} (test model)` : m.repo.split('/')[1])),
    );
    if (catalog().some((m) => m.repo === prefs.repo)) $('model-select').value = prefs.repo;
    if (prefs.dtype) $('dtype-select').value = prefs.dtype;
    if (prefs.device) $('device-select').value = prefs.device;
    $('hub-input').value = hubUrl();
    $('gpu-support').textContent = navigator.gpu
      ? 'This browser has WebGPU (the line below says what the model runs on once loaded).'
      : 'This browser has no WebGPU: auto and WebGPU run on the CPU (WebGPU needs a secure context: https or localhost).';

    for (const id of ['model-select', 'dtype-select', 'device-select']) $(id).addEventListener('change', () => this.#showSizes());
    $('load-button').addEventListener('click', () => this.load());
    $('retry-button').addEventListener('click', () => this.load());
    $('hub-apply').addEventListener('click', () => {
      const url = new URL(location.href);
      const hub = $('hub-input').value.trim().replace(/\/+$/, '');
      if (!hub || hub === DEFAULT_HUB) url.searchParams.delete('hub');
      else url.searchParams.set('hub', hub);
      location.assign(url);
    });
    $('persist-button').addEventListener('click', async () => {
      await navigator.storage.persist();
      this.refreshStorage();
    });
    this.#showSizes();
  }

  #selected() {
    return {
      entry: catalog().find((m) => m.repo === $('model-select').value),
      dtype: $('dtype-select').value,
      device: $('device-select').value,
    };
  }

  async #showSizes() {
    const { entry, dtype } = this.#selected();
    const blocker = cpuBlocker(entry, dtype);
    $('load-button').disabled = this.#loading || (blocker !== null && $('device-select').value !== 'webgpu');
    if (entry.fixture) {
      $('model-sizes').textContent = 'A tiny random-weight test model (a few hundred kB) from the mirror.';
      return;
    }
    const { quota, usage } = await storageEstimate();
    const free = quota - usage;
    const room = Number.isFinite(free) && entry.download > free
      ? ` Only ${formatBytes(free)} of storage is available: delete cached models or free disk space first.`
      : '';
    $('model-sizes').textContent =
      `Download ≈ ${formatBytes(entry.download)} (the f32 checkpoint, for either precision); ` +
      `in memory ≈ ${formatBytes(memoryBytes(entry, 'f32'))} in f32, ${formatBytes(memoryBytes(entry, 'f16'))} in f16.` +
      (blocker ? ` ${blocker}` : '') + room;
  }

  #error(message) {
    $('model-error').hidden = !message;
    $('model-error-text').textContent = message ?? '';
  }

  /** Loads the selected model (from the cache when it is there); a retry resumes a download. */
  async load() {
    if (this.#loading) return;
    const { entry, dtype, device } = this.#selected();
    localStorage.setItem(PREFS_KEY, JSON.stringify({ repo: entry.repo, dtype, device }));
    this.#loading = true;
    $('load-button').disabled = true;
    this.#error(null);
    this.#downloads.clear();
    $('model-status').textContent = `Loading ${entry.repo}…`;
    try {
      await this.model?.dispose();
      this.model = null;
      this.dispatchEvent(new Event('change'));
      let notice = '';
      let model;
      try {
        model = await this.#loadWith(entry.repo, dtype, device);
      } catch (e) {
        if (device !== 'webgpu' || !['NotSupportedError', 'GPUError'].includes(e.name)) throw e;
        // Asked for the GPU and there is none (no WebGPU, no adapter, or the model did not fit
        // it): run anyway, and say so.
        notice = `WebGPU was not available (${e.message}); running on the CPU instead. `;
        model = await this.#loadWith(entry.repo, dtype, 'auto');
      }
      this.model = model;
      const why = model.fallbackReason ? ` (auto chose it: ${model.fallbackReason})` : '';
      // More than one thread only when the page is cross-origin isolated (www/serve.mjs).
      const threads = model.device === 'cpu' ? `, ${model.threads} thread${model.threads === 1 ? '' : 's'}` : '';
      $('model-status').textContent =
        `${notice}Loaded ${model.repo} @ ${model.commit.slice(0, 8)}: ${model.dim}-d embeddings, ` +
        `${model.dtype}, on ${model.device === 'cpu' ? 'the CPU' : 'WebGPU'}${why}${threads}` +
        `${model.fromCache ? ', from the cache (no network).' : '.'}`;
      // A fresh download is worth keeping: ask the browser not to evict it under storage pressure.
      if (!model.fromCache) await navigator.storage?.persist?.().catch(() => false);
      this.dispatchEvent(new Event('change'));
    } catch (e) {
      $('model-status').textContent = 'No model loaded.';
      this.#error(await this.#explain(e, entry));
    } finally {
      this.#loading = false;
      this.#showSizes();
      this.refreshCache();
    }
  }

  #loadWith(repo, dtype, device) {
    return InstructorWorker.load(repo, {
      hubUrl: hubUrl(),
      dtype,
      device,
      onProgress: (p) => {
        if (p.file) this.#downloads.update(p);
      },
    });
  }

  /** A message that says what happened and what to do about it. */
  async #explain(e, entry) {
    switch (e.name) {
      case 'QuotaExceededError': {
        const { quota, usage } = await storageEstimate();
        return `Not enough storage for ${e.file ?? entry.repo}: ${formatBytes(e.bytesNeeded)} more are needed, ` +
          `the browser allows ${formatBytes(quota - usage)} more for this page. Delete cached models below, ` +
          'free disk space or make storage persistent, then Retry: what was downloaded so far is kept.';
      }
      case 'NetworkError': {
        const cached = (await InstructorWorker.cachedModels().catch(() => [])).find((m) => m.repo === entry.repo);
        const kept = cached && !cached.complete
          ? ` ${formatBytes(cached.size)} of ${formatBytes(cached.files.reduce((s, f) => s + f.size, 0))} are kept;`
          : '';
        return `Download failed: ${e.message}.${kept} Retry resumes where it stopped.`;
      }
      case 'HubError':
        return `The hub refused the download (${e.status ?? 'error'}): ${e.message}. Check the model name and hub URL, then Retry.`;
      case 'IntegrityError':
        return `A file arrived corrupted and was discarded (${e.message}). Retry downloads it again.`;
      default:
        return `Could not load ${entry.repo}: ${e.message}`;
    }
  }

  async refreshCache() {
    let models = [];
    try {
      models = await InstructorWorker.cachedModels();
    } catch (e) {
      $('storage-status').textContent = `The cache cannot be read: ${e.message}`;
    }
    $('cache-table').tBodies[0].replaceChildren(
      ...models.map((m) =>
        h('tr', { dataset: { repo: m.repo } },
          h('td', {}, m.repo),
          h('td', {}, h('code', {}, m.commit.slice(0, 8))),
          h('td', {}, formatBytes(m.size)),
          h('td', {}, m.complete ? 'complete' : 'partial (Load resumes it)'),
          h('td', {}, h('button', { type: 'button', onclick: () => this.#delete(m.repo) }, 'Delete')),
        ),
      ),
    );
    if (models.length === 0) $('cache-table').tBodies[0].append(h('tr', {}, h('td', { colspan: 5 }, 'Nothing cached yet.')));
    this.dispatchEvent(new CustomEvent('cache', { detail: models }));
    this.refreshStorage();
  }

  async #delete(repo) {
    if (this.model?.repo === repo) {
      await this.model.dispose();
      this.model = null;
      $('model-status').textContent = 'No model loaded.';
      this.dispatchEvent(new Event('change'));
    }
    await InstructorWorker.clearCache(repo);
    this.refreshCache();
  }

  /** Loads the model last used on this page when it is cached (so a revisit works offline). */
  async resume() {
    const { repo } = JSON.parse(localStorage.getItem(PREFS_KEY) ?? '{}');
    const models = await InstructorWorker.cachedModels().catch(() => []);
    if (repo === this.#selected().entry.repo && models.some((m) => m.repo === repo && m.complete)) await this.load();
  }

  async refreshStorage() {
    const { quota, usage } = await storageEstimate();
    const persisted = await navigator.storage?.persisted?.().catch(() => false);
    $('storage-status').textContent =
      (Number.isFinite(quota) ? `This page uses ${formatBytes(usage)} of ${formatBytes(quota)} the browser allows. ` : '') +
      (persisted
        ? 'Storage is persistent: the browser will not evict the models.'
        : 'Storage is not persistent: the browser may evict the models when space runs low.');
    $('persist-button').hidden = !!persisted || !navigator.storage?.persist;
    this.#showSizes();
  }
}
