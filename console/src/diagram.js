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

/** The process a diagram file holds: its first executable process (else its first process). */
export function processOfFile(xml) {
  if (typeof DOMParser === 'undefined') return '';
  const doc = new DOMParser().parseFromString(xml ?? '', 'application/xml');
  const processes = [...doc.getElementsByTagNameNS('*', 'process')];
  const chosen = processes.find((p) => p.getAttribute('isExecutable') === 'true') ?? processes[0];
  return chosen?.getAttribute('id') ?? '';
}

/** Which process holds each element id, from the diagram files' XML: element id → process id. */
export function elementProcesses(xmlTexts) {
  const found = new Map();
  if (typeof DOMParser === 'undefined') return found;
  for (const xml of xmlTexts) {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    for (const process of doc.getElementsByTagNameNS('*', 'process')) {
      const processId = process.getAttribute('id');
      for (const el of process.getElementsByTagName('*')) {
        const id = el.getAttribute('id');
        if (id && !found.has(id)) found.set(id, processId);
      }
    }
  }
  return found;
}

/**
 * Per element: a blue badge with the active instances (cf-count), a red one with open incidents
 * (cf-incidents), a heat marker (cf-heat-1 … cf-heat-4) by its share of the busiest element, and a red
 * outline (cf-heat-incident) where incidents stand. `elements` is GetProcessStatistics' list:
 * [{element_id, active, incidents}]; counts of elements inside a called process or a collapsed
 * subprocess add up on the call activity or the box that holds them (`where`: {callers, processes}).
 */
export function showStatistics(viewer, elements, labels, where = {}) {
  const overlays = viewer.get('overlays');
  const canvas = viewer.get('canvas');
  const callers = where.callers ?? new Map();
  const processes = where.processes ?? new Map();
  overlays.remove({ type: 'cf-stats' });
  const totals = new Map();
  for (const stat of elements) {
    const spot = onDiagram(viewer, { element_id: stat.element_id, process_id: processes.get(stat.element_id) }, callers);
    if (!spot) continue;
    // an element on a collapsed subprocess's plane counts on its own plane and on the box above
    for (const id of withEnclosing(viewer, [spot])) {
      const total = totals.get(id) ?? { active: 0, incidents: 0 };
      total.active += Number(stat.active ?? 0);
      total.incidents += Number(stat.incidents ?? 0);
      totals.set(id, total);
    }
  }
  const busiest = Math.max(1, ...[...totals.values()].map((c) => c.active));
  for (const element of viewer.get('elementRegistry').getAll()) {
    for (let level = 1; level <= 4; level += 1) canvas.removeMarker(element.id, `cf-heat-${level}`);
    canvas.removeMarker(element.id, 'cf-heat-incident');
  }
  for (const [id, { active, incidents }] of totals) {
    if (active) canvas.addMarker(id, `cf-heat-${Math.min(4, Math.ceil((active / busiest) * 4))}`);
    if (incidents) canvas.addMarker(id, 'cf-heat-incident');
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
 * Which call activities call each process, from the diagram files' XML: process id → [{id, inProcess}]
 * (the call activity's id and the process that holds it). Lets a wait inside a called process show on
 * the call activity of the diagram in view.
 */
export function callersOf(xmlTexts) {
  const callers = new Map();
  if (typeof DOMParser === 'undefined') return callers;
  for (const xml of xmlTexts) {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    for (const call of doc.getElementsByTagNameNS('*', 'callActivity')) {
      const called = call.getAttribute('calledElement');
      let holder = call.parentElement;
      while (holder && holder.localName !== 'process') holder = holder.parentElement;
      if (!called) continue;
      if (!callers.has(called)) callers.set(called, []);
      callers.get(called).push({ id: call.getAttribute('id'), inProcess: holder?.getAttribute('id') ?? '' });
    }
  }
  return callers;
}

/** The element on the diagram in view that stands for `element_id` of process `process_id`: itself, or
 * the call activity that (through any depth of calls) leads to that process; null when none. */
function onDiagram(viewer, { element_id: id, process_id: process }, callers) {
  if (has(viewer, id)) return id;
  const queue = [process];
  const seen = new Set();
  while (queue.length) {
    const current = queue.shift();
    if (!current || seen.has(current)) continue;
    seen.add(current);
    for (const caller of callers.get(current) ?? []) {
      if (has(viewer, caller.id)) return caller.id;
      queue.push(caller.inProcess);
    }
  }
  return null;
}

/**
 * An instance on its diagram: elements it completed (cf-done, with the sequence flows between them),
 * where it waits (cf-active) and where incidents stand (cf-incident). `active` and `incidents` are
 * [{element_id, process_id}]: one inside a called process or a collapsed subprocess marks the call
 * activity or the subprocess's box that holds it.
 */
export function showInstance(viewer, { done = [], active = [], incidents = [] }, callers = new Map()) {
  const canvas = viewer.get('canvas');
  const registry = viewer.get('elementRegistry');
  for (const element of registry.getAll()) {
    for (const marker of ['cf-done', 'cf-active', 'cf-incident']) canvas.removeMarker(element.id, marker);
  }
  const place = (items) => withEnclosing(viewer, items.map((item) => onDiagram(viewer, item, callers)).filter(Boolean));
  const activeIds = place(active);
  const doneSet = new Set(done.filter((id) => has(viewer, id)));
  const activeSet = new Set(activeIds);
  for (const id of doneSet) canvas.addMarker(id, 'cf-done');
  for (const flow of registry.filter((el) => el.type === 'bpmn:SequenceFlow')) {
    const source = flow.source?.id;
    const target = flow.target?.id;
    if (doneSet.has(source) && (doneSet.has(target) || activeSet.has(target))) canvas.addMarker(flow.id, 'cf-done');
  }
  for (const id of activeIds) canvas.addMarker(id, 'cf-active');
  for (const id of place(incidents)) canvas.addMarker(id, 'cf-incident');
}

/**
 * The ids and the collapsed subprocesses that hold them: an element inside a collapsed subprocess is drawn
 * on that subprocess's own plane, so the mark also goes on the subprocess's box in the plane above.
 */
export function withEnclosing(viewer, ids) {
  const registry = viewer.get('elementRegistry');
  const found = new Set();
  for (const id of ids) {
    found.add(id);
    let element = registry.get(id);
    while (element) {
      const parent = element.parent;
      const holder = parent?.businessObject?.id;
      // a plane's root element stands for the subprocess whose contents it shows
      const box = holder && parent.id !== holder ? registry.get(holder) : null;
      if (box && box !== element && !found.has(holder)) found.add(holder);
      element = box ?? (parent?.parent ? parent : null);
    }
  }
  return [...found];
}
