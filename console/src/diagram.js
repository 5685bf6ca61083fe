// Process diagrams for operate, drawn read-only by bpmn-js's NavigatedViewer (loaded on first use): the
// labels in the chosen language, counts per element (a heat map), and an instance's path, wait and
// incidents as markers. The bpmn.io watermark bpmn-js draws stays visible (its licence asks for it).
import { bilingual } from './i18n.js';

let viewerClass = null;

async function loadViewer() {
  viewerClass ??= (await import('bpmn-js/lib/NavigatedViewer')).default;
  return viewerClass;
}

/** The diagram's XML with each `name` attribute shown in `lang` ("中文 English" → one of them). */
export function localise(xml, lang) {
  if (typeof DOMParser === 'undefined') return xml;
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  if (doc.getElementsByTagName('parsererror').length) return xml;
  for (const el of doc.getElementsByTagName('*')) {
    const name = el.getAttribute('name');
    if (name) el.setAttribute('name', bilingual(name, lang));
  }
  return new XMLSerializer().serializeToString(doc);
}

/** Draws `xml` into `container` fitted to its size; returns the viewer (call destroy() when done). */
export async function drawDiagram(container, xml, lang) {
  const NavigatedViewer = await loadViewer();
  const viewer = new NavigatedViewer({ container });
  await viewer.importXML(localise(xml, lang));
  viewer.get('canvas').zoom('fit-viewport', 'auto');
  return viewer;
}

function has(viewer, elementId) {
  return Boolean(elementId) && Boolean(viewer.get('elementRegistry').get(elementId));
}

/**
 * Per element: a blue badge with the active instances (cf-count), a red one with open incidents
 * (cf-incidents), and a heat marker (cf-heat-1 … cf-heat-4) by its share of the busiest element.
 * `elements` is GetProcessStatistics' list: [{element_id, active, incidents}].
 */
export function showStatistics(viewer, elements, labels) {
  const overlays = viewer.get('overlays');
  const canvas = viewer.get('canvas');
  overlays.remove({ type: 'cf-stats' });
  const busiest = Math.max(1, ...elements.map((e) => Number(e.active ?? 0)));
  for (const stat of elements) {
    const id = stat.element_id;
    if (!has(viewer, id)) continue;
    const active = Number(stat.active ?? 0);
    const incidents = Number(stat.incidents ?? 0);
    for (let level = 1; level <= 4; level += 1) canvas.removeMarker(id, `cf-heat-${level}`);
    if (active) canvas.addMarker(id, `cf-heat-${Math.min(4, Math.ceil((active / busiest) * 4))}`);
    if (!active && !incidents) continue;
    const badge = document.createElement('div');
    badge.className = 'cf-badges';
    if (active) {
      const count = document.createElement('span');
      count.className = 'cf-count';
      count.title = labels.active(active);
      count.textContent = String(active);
      badge.append(count);
    }
    if (incidents) {
      const count = document.createElement('span');
      count.className = 'cf-incidents';
      count.title = labels.incidents(incidents);
      count.textContent = String(incidents);
      badge.append(count);
    }
    overlays.add(id, 'cf-stats', { position: { bottom: 12, left: -8 }, html: badge });
  }
}

/**
 * An instance on its diagram: elements it completed (cf-done, with the sequence flows between them),
 * where it waits (cf-active) and where incidents stand (cf-incident).
 */
export function showInstance(viewer, { done = [], active = [], incidents = [] }) {
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  const doneSet = new Set(done.filter((id) => has(viewer, id)));
  const activeSet = new Set(active.filter((id) => has(viewer, id)));
  for (const id of doneSet) canvas.addMarker(id, 'cf-done');
  for (const flow of registry.filter((el) => el.type === 'bpmn:SequenceFlow')) {
    const source = flow.source?.id;
    const target = flow.target?.id;
    if (doneSet.has(source) && (doneSet.has(target) || activeSet.has(target))) canvas.addMarker(flow.id, 'cf-done');
  }
  for (const id of activeSet) canvas.addMarker(id, 'cf-active');
  for (const id of incidents) if (has(viewer, id)) canvas.addMarker(id, 'cf-incident');
}
