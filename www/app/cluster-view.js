// Clustering: embed the texts with one instruction, k-means on the unit vectors, a 2-D PCA
// scatter coloured by cluster, and a table of the clusters.

import { CLUSTER_PRESETS } from './instructions.js';
import { SCIENCE_TITLES } from './examples.js';
import { parseLines } from './parse.js';
import { kmeans } from './kmeans.js';
import { pca2 } from './pca.js';
import { drawScatter, clusterColour } from './scatter.js';
import { Superseded } from './embed.js';
import { $, h, fillDatalist, showProgress } from './dom.js';

export class ClusterView {
  #embedder = null;
  #generation = 0;

  constructor() {
    fillDatalist($('cluster-presets'), CLUSTER_PRESETS);
    this.#example();
    $('cluster-example').addEventListener('click', () => {
      this.#example();
      this.run();
    });
    $('cluster-button').addEventListener('click', () => this.run());
  }

  #example() {
    $('cluster-instruction').value = CLUSTER_PRESETS[0];
    $('cluster-input').value = SCIENCE_TITLES.join('\n');
    $('cluster-k').value = 4;
  }

  setEmbedder(embedder) {
    this.#embedder = embedder;
    $('cluster-button').disabled = !embedder;
    $('cluster-example').disabled = !embedder;
    $('cluster-status').textContent = embedder ? '' : 'Load a model (step 1) to cluster.';
  }

  async run() {
    const generation = ++this.#generation;
    const texts = parseLines($('cluster-input').value);
    const k = Number($('cluster-k').value);
    const seed = Number($('cluster-seed').value);
    if (!this.#embedder) return;
    if (texts.length === 0) {
      $('cluster-status').textContent = 'Add some texts (one per line), or use the example.';
      return;
    }
    if (!Number.isInteger(k) || k < 1) {
      $('cluster-status').textContent = 'k must be a whole number ≥ 1.';
      return;
    }
    const instruction = $('cluster-instruction').value;
    try {
      const vectors = await this.#embedder.embed(texts.map((t) => [instruction, t]), {
        isStale: () => generation !== this.#generation,
        onProgress: (done, total) => {
          showProgress($('cluster-progress'), done, total);
          $('cluster-status').textContent = `Embedding ${done} / ${total}…`;
        },
      });
      const { assignments, iterations } = kmeans(vectors, k, { seed: Number.isInteger(seed) ? seed : 0 });
      const { coords, variance, totalVariance } = pca2(vectors);
      drawScatter($('cluster-plot'), $('plot-tooltip'), { coords, assignments, texts });
      this.#table(texts, assignments);
      const shown = totalVariance > 0 ? Math.round((100 * (variance[0] + variance[1])) / totalVariance) : 100;
      $('cluster-status').textContent =
        `${texts.length} texts in ${Math.min(k, texts.length)} clusters (k-means++, seed ${seed}, ${iterations} iterations). ` +
        `The plot shows ${shown}% of the variance.`;
    } catch (e) {
      // A newer request took over (or the model changed under this one): its result is what counts.
      if (e instanceof Superseded || generation !== this.#generation) return;
      $('cluster-progress').hidden = true;
      $('cluster-status').textContent = `Clustering failed: ${e.message}`;
    }
  }

  #table(texts, assignments) {
    const k = Math.max(...assignments) + 1;
    const members = Array.from({ length: k }, () => []);
    assignments.forEach((c, i) => members[c].push(texts[i]));
    $('cluster-table').tBodies[0].replaceChildren(
      ...members.map((m, c) =>
        h('tr', { dataset: { cluster: c } },
          h('td', {}, h('span', { class: 'swatch', style: `background: ${clusterColour(c)}` }), String(c + 1)),
          h('td', {}, String(m.length)),
          h('td', {}, h('ul', {}, ...m.map((t) => h('li', {}, t)))),
        ),
      ),
    );
  }
}
