// Service worker: keeps the app shell and the package (its JS and wasm) so the page starts with
// the network off. Network first, so an online visit always gets the current files (and
// refreshes the cache); the cache answers only when the network cannot. The model itself lives
// in the package's IndexedDB cache, not here; requests to the hub pass straight through.

const CACHE = 'instructor-demo-v1';

// The page's own files. tests/www/sw.test.mjs checks this list against the files in www/.
const SHELL = [
  './',
  'index.html',
  'style.css',
  'app/catalog.js',
  'app/cluster-view.js',
  'app/dom.js',
  'app/embed.js',
  'app/examples.js',
  'app/format.js',
  'app/instructions.js',
  'app/kmeans.js',
  'app/main.js',
  'app/model-panel.js',
  'app/offline.js',
  'app/package.js',
  'app/parse.js',
  'app/pca.js',
  'app/progress.js',
  'app/rank.js',
  'app/rng.js',
  'app/scatter.js',
  'app/search-view.js',
  'app/vectors.js',
];

/** The package's files, as its package.json publishes them (types and docs are not needed). */
async function packageFiles() {
  const manifest = await (await fetch('pkg/package.json', { cache: 'no-store' })).json();
  return ['pkg/package.json', ...manifest.files.filter((f) => !/\.(md|d\.ts)$/.test(f)).map((f) => `pkg/${f}`)];
}

self.addEventListener('install', (event) => {
  // addAll is all or nothing: once installed, everything the page needs offline is cached.
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await cache.addAll([...SHELL, ...(await packageFiles())].map((f) => new Request(f, { cache: 'no-store' })));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (e) {
    // Navigations carry the page's settings in the query (?hub=): any cached copy of the page will do.
    const hit = await cache.match(request, { ignoreSearch: request.mode === 'navigate' });
    if (hit) return hit;
    throw e;
  }
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(networkFirst(request));
});
