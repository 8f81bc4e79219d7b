// Wires the views together: a loaded model gives both views an Embedder (one shared embedding
// cache per model); cache changes update the offline badge.

import { ModelPanel } from './model-panel.js';
import { SearchView } from './search-view.js';
import { ClusterView } from './cluster-view.js';
import { OfflineStatus } from './offline.js';
import { Embedder } from './embed.js';
import { $ } from './dom.js';

const panel = new ModelPanel();
const search = new SearchView();
const clusters = new ClusterView();
const offline = new OfflineStatus($('offline-status'));

panel.addEventListener('change', () => {
  const embedder = panel.model ? new Embedder(panel.model) : null;
  search.setEmbedder(embedder);
  clusters.setEmbedder(embedder);
});
panel.addEventListener('cache', (e) => offline.setModels(e.detail));

for (const view of [search, clusters]) view.setEmbedder(null);
offline.start();
panel.refreshCache();
panel.resume();
