// Two versions of a process side by side: bpmn-js-differ compares their semantic models and each viewer marks
// what changed (added in the newer, removed from the older, changed and moved in both).
import NavigatedViewer from 'bpmn-js/lib/NavigatedViewer';
import { diff } from 'bpmn-js-differ';

const KINDS = [
  ['_added', 'cf-diff-added', 'added'],
  ['_removed', 'cf-diff-removed', 'removed'],
  ['_changed', 'cf-diff-changed', 'changed'],
  ['_layoutChanged', 'cf-diff-layout', 'moved'],
];

/** A changed value, short enough for one line of the list. */
function shown(value) {
  if (value === undefined || value === null) return '—';
  const text = typeof value === 'object' ? (value.id || value.$type || JSON.stringify(value)) : String(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}

function mark(viewer, ids, marker) {
  const registry = viewer.get('elementRegistry');
  const canvas = viewer.get('canvas');
  for (const id of ids) if (registry.get(id)) canvas.addMarker(id, marker);
}

/** Draws `older` and `newer` (XML) in two viewers inside `container`; returns [{id, kind, type, attrs}]. */
export async function showComparison(container, older, newer, labels) {
  container.replaceChildren();
  const panes = [older, newer].map((_, i) => {
    const pane = document.createElement('div');
    pane.className = 'cf-compare-pane';
    const title = document.createElement('h3');
    title.textContent = labels[i];
    const canvas = document.createElement('div');
    canvas.className = 'cf-compare-canvas';
    canvas.dataset.testid = i === 0 ? 'compare-older' : 'compare-newer';
    pane.append(title, canvas);
    container.append(pane);
    return canvas;
  });
  const viewers = panes.map((canvas) => new NavigatedViewer({ container: canvas }));
  await viewers[0].importXML(older);
  await viewers[1].importXML(newer);
  for (const v of viewers) v.get('canvas').zoom('fit-viewport');
  const changes = diff(viewers[0].getDefinitions(), viewers[1].getDefinitions());
  const rows = [];
  for (const [key, marker, kind] of KINDS) {
    const ids = Object.keys(changes[key] || {});
    if (kind !== 'added') mark(viewers[0], ids, marker);
    if (kind !== 'removed') mark(viewers[1], ids, marker);
    for (const id of ids) {
      const entry = changes[key][id];
      const model = entry.model || entry;
      // bpmn-js-differ 3.2 hands jsondiffpatch's [older, newer] pair to ChangeHandler.changed(model, property,
      // newValue, oldValue) in that order, so `newValue` holds the older value (tests/console checks the order).
      const attrs = Object.entries(entry.attrs || {}).map(([name, change]) => `${name}: ${shown(change.newValue)} → ${shown(change.oldValue)}`);
      rows.push({ id, kind, type: (model.$type || '').replace('bpmn:', ''), attrs });
    }
  }
  return { rows, viewers };
}
