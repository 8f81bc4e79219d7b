// The "offline ready" badge: the service worker has cached the app and the package (it installs
// only once all of them are cached), and a complete model is in the package's IndexedDB cache.

export class OfflineStatus {
  #badge;
  #appCached = false;
  #models = [];
  #error = null;

  constructor(badge) {
    this.#badge = badge;
    addEventListener('online', () => this.#render());
    addEventListener('offline', () => this.#render());
  }

  async start() {
    if (!('serviceWorker' in navigator)) {
      this.#error = 'this browser cannot keep the page offline (no service workers here)';
    } else {
      try {
        await navigator.serviceWorker.register('sw.js');
        this.#render();
        await navigator.serviceWorker.ready;
        this.#appCached = true;
      } catch (e) {
        this.#error = `the app could not be cached (${e.message})`;
      }
    }
    this.#render();
  }

  /** The package's `cachedModels()`. */
  setModels(models) {
    this.#models = models.filter((m) => m.complete);
    this.#render();
  }

  #render() {
    const net = navigator.onLine ? '' : ' You are offline.';
    let state;
    let text;
    if (this.#error) {
      [state, text] = ['none', `Offline: not available: ${this.#error}.`];
    } else if (!this.#appCached) {
      [state, text] = ['pending', 'Offline: caching the app…'];
    } else if (this.#models.length === 0) {
      [state, text] = ['partial', 'App cached. Download a model to use the page offline.'];
    } else {
      [state, text] = ['ready', `Offline ready: app and ${this.#models.map((m) => m.repo).join(', ')} cached.`];
    }
    this.#badge.dataset.state = state;
    this.#badge.textContent = text + net;
  }
}
