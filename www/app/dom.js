// Small DOM helpers shared by the views.

export const $ = (id) => document.getElementById(id);

/** `h('li', { class: 'x', dataset: { i: 1 } }, child, 'text')` */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

/** Calls `fn` once typing pauses for `ms`. */
export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function fillDatalist(list, presets) {
  list.replaceChildren(...presets.map((p) => h('option', { value: p }, p === '' ? '(no instruction)' : p)));
}

/** A progress bar driven by `{ done, total }`. */
export function showProgress(bar, done, total) {
  bar.hidden = done >= total;
  bar.max = Math.max(total, 1);
  bar.value = done;
}
