// The cluster scatter plot: one SVG circle per text at its PCA position, coloured by cluster,
// with the text on hover (a tooltip, and a <title> for screen readers).

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 600;
const HEIGHT = 400;
const MARGIN = 20;

/** Colour of cluster `c` (distinct for the first ten, then repeating with another lightness). */
export function clusterColour(c) {
  const hues = [212, 28, 140, 350, 270, 48, 185, 320, 95, 0];
  return `hsl(${hues[c % hues.length]} 70% ${c < hues.length ? 45 : 65}%)`;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

/** Scales `coords` into the plot, keeping the aspect ratio (distances in PCA space mean something). */
function layout(coords) {
  const xs = coords.map((c) => c[0]);
  const ys = coords.map((c) => c[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((WIDTH - 2 * MARGIN) / (x1 - x0 || 1), (HEIGHT - 2 * MARGIN) / (y1 - y0 || 1));
  const cx = (WIDTH - (x1 - x0) * scale) / 2;
  const cy = (HEIGHT - (y1 - y0) * scale) / 2;
  // SVG's y grows downwards; flip it so the plot reads like a chart.
  return coords.map(([x, y]) => [cx + (x - x0) * scale, HEIGHT - (cy + (y - y0) * scale)]);
}

export function drawScatter(plot, tooltip, { coords, assignments, texts }) {
  const points = layout(coords);
  plot.replaceChildren(
    ...points.map(([x, y], i) => {
      const dot = svg('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: 6, fill: clusterColour(assignments[i]), 'data-index': i, 'data-cluster': assignments[i] });
      const title = svg('title', {});
      title.textContent = texts[i];
      dot.append(title);
      dot.addEventListener('mouseenter', () => {
        tooltip.textContent = `${assignments[i] + 1} · ${texts[i]}`;
        tooltip.hidden = false;
        const box = plot.getBoundingClientRect();
        tooltip.style.left = `${(x / WIDTH) * box.width + 10}px`;
        tooltip.style.top = `${(y / HEIGHT) * box.height + 10}px`;
      });
      dot.addEventListener('mouseleave', () => {
        tooltip.hidden = true;
      });
      return dot;
    }),
  );
}
