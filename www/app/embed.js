// Embedding through the worker with progress, a per-model cache, and cancellation of stale
// requests. The package embeds a whole list in one call; sending it in slices lets the page show
// progress on long inputs and drop work nobody waits for any more (the user kept typing).

import { rows } from './vectors.js';

/** Pairs per encode call: small enough for frequent progress, large enough to batch well. */
const SLICE = 16;

export class Superseded extends Error {
  constructor() {
    super('superseded by a newer request');
    this.name = 'Superseded';
  }
}

export class Embedder {
  #model;
  #cache = new Map();

  constructor(model) {
    this.#model = model;
  }

  get model() {
    return this.#model;
  }

  /**
   * Unit-length embeddings of `[instruction, text]` pairs (Float32Arrays, in order). Pairs seen
   * before come from the cache. `onProgress(done, total)`; `isStale()` is checked between slices
   * and throws `Superseded` when it returns true.
   */
  async embed(pairs, { onProgress = () => {}, isStale = () => false } = {}) {
    const key = ([instruction, text]) => `${instruction}\u0000${text}`;
    const missing = [...new Map(pairs.filter((p) => !this.#cache.has(key(p))).map((p) => [key(p), p])).values()];
    onProgress(pairs.length - missing.length, pairs.length);
    for (let i = 0; i < missing.length; i += SLICE) {
      if (isStale()) throw new Superseded();
      const slice = missing.slice(i, i + SLICE);
      // normalize: cosine becomes a dot product and k-means works on the unit sphere.
      const vectors = rows(await this.#model.encode(slice, { normalize: true }));
      slice.forEach((p, j) => this.#cache.set(key(p), vectors[j]));
      onProgress(pairs.length - missing.length + i + slice.length, pairs.length);
    }
    if (isStale()) throw new Superseded();
    return pairs.map((p) => this.#cache.get(key(p)));
  }
}
