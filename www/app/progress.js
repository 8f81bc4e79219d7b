// Download rate and ETA per file from the package's `{ file, loaded, total }` events: the rate
// is taken over the last few seconds so that a stall shows up quickly and a burst does not
// promise an ETA it cannot keep.

const WINDOW_MS = 3000;

export class RateTracker {
  #samples = [];

  /** Records `loaded` bytes at time `now` (ms); returns `{ rate (bytes/s), eta (s) }`. */
  update(loaded, total, now) {
    this.#samples.push({ loaded, now });
    while (this.#samples.length > 2 && now - this.#samples[1].now >= WINDOW_MS) this.#samples.shift();
    const first = this.#samples[0];
    const dt = (now - first.now) / 1000;
    const rate = dt > 0 ? (loaded - first.loaded) / dt : NaN;
    const eta = loaded >= total ? 0 : rate > 0 ? (total - loaded) / rate : Infinity;
    return { rate, eta };
  }
}
