// Migrations (#/operate/migrations, #/operate/migrations/plan/<process_id>, #/operate/migrations/<batch_id>),
// for ops: move running instances of
// one version of a process to another. Pick the process and both versions; the plan is drawn on both
// diagrams side by side (mapped by id, mapped by hand, waits the target lacks, new in the target);
// mappings are made by picking a source element and then a target element; "Check" is the dry run
// (PlanMigration), "Migrate" starts a batch (StartMigration) whose progress is polled (GetMigration) and
// refreshed by the live feed; past batches (ListMigrations) open their own page.
import { h, replace } from '../dom.js';
import { drawDiagram, elementProcesses, processOfFile } from '../diagram.js';
import { bilingual, language, t } from '../i18n.js';
import { when } from '../format.js';

const POLL_MS = 1000;
const MAX_ITEMS = 200; // a batch's items shown at once
const SKIPPED_TYPES = new Set([
  'bpmn:Process',
  'bpmn:Collaboration',
  'bpmn:Participant',
  'bpmn:Lane',
  'bpmn:LaneSet',
  'bpmn:SequenceFlow',
  'bpmn:MessageFlow',
  'bpmn:Association',
  'bpmn:TextAnnotation',
  'bpmn:DataObjectReference',
  'bpmn:DataStoreReference',
  'label',
]);
const MARKERS = ['cf-mig-mapped', 'cf-mig-own', 'cf-mig-problem', 'cf-mig-new', 'cf-mig-picked'];

/** "MIGRATION_STATE_RUNNING" → "RUNNING" (enum names come whole from the API). */
export function enumTail(value, prefix) {
  return String(value ?? '').replace(new RegExp(`^${prefix}_`), '') || 'UNSPECIFIED';
}

/** The elements of a drawn diagram a plan can name: flow nodes, not flows, lanes, pools or labels. */
function flowNodes(viewer) {
  const nodes = new Map();
  for (const element of viewer.get('elementRegistry').getAll()) {
    if (element.type === 'label' || SKIPPED_TYPES.has(element.type) || !element.businessObject) continue;
    if (!element.parent) continue; // the root of a plane
    if (element.id.endsWith('_plane')) continue;
    nodes.set(element.id, element.businessObject.name ?? '');
  }
  return nodes;
}

/**
 * How each element of both versions stands in the plan: `source` and `target` map an element id to
 * "own" (a mapping names it), "mapped" (same id in both), "problem" (instances wait there and the target
 * has no such element and no mapping) or "new" (only in the target). Pure, for the page and its tests.
 */
export function planMarks(sourceIds, targetIds, mappings, waiting, problems = []) {
  // mappings and problems of the process in view only (the caller filters them)
  const source = new Map();
  const target = new Map();
  const mappedSources = new Set(mappings.map((m) => m.source_element_id));
  const mappedTargets = new Set(mappings.map((m) => m.target_element_id));
  for (const id of sourceIds) {
    if (mappedSources.has(id)) source.set(id, 'own');
    else if (targetIds.has(id)) source.set(id, 'mapped');
    else if (waiting.has(id)) source.set(id, 'problem');
  }
  for (const id of problems) if (sourceIds.has(id)) source.set(id, 'problem');
  for (const id of targetIds) {
    if (mappedTargets.has(id)) target.set(id, 'own');
    else if (sourceIds.has(id)) target.set(id, 'mapped');
    else target.set(id, 'new');
  }
  return { source, target };
}

/** Every named element of the diagram files: id → name ("中文 English"), for labels outside the view. */
function elementNames(xmlTexts) {
  const names = new Map();
  if (typeof DOMParser === 'undefined') return names;
  for (const xml of xmlTexts) {
    const doc = new DOMParser().parseFromString(xml, 'application/xml');
    for (const el of doc.getElementsByTagName('*')) {
      const id = el.getAttribute('id');
      const name = el.getAttribute('name');
      if (id && name && !names.has(id)) names.set(id, name);
    }
  }
  return names;
}

function section(title, testid, ...children) {
  return h('section', { class: 'panel', 'data-testid': testid, 'aria-label': title }, h('h2', {}, title), children);
}

function table(headers, rows, testid = null) {
  return h(
    'table',
    { class: 'grid', 'data-testid': testid },
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows),
  );
}

function instanceLink(id, key) {
  return h('a', { href: `#/operate/instances/${encodeURIComponent(id)}` }, key || id.slice(0, 8));
}

/** One batch: its state and counts, a progress bar, its plan and reason, and (GetMigration) its items. */
function batchView(batch) {
  const state = enumTail(batch.state, 'MIGRATION_STATE');
  const total = Number(batch.total ?? 0);
  const done = Number(batch.migrated ?? 0) + Number(batch.skipped ?? 0) + Number(batch.failed ?? 0);
  const plan = batch.plan ?? {};
  // a large batch: the failed and skipped items first, then the rest, at most MAX_ITEMS rows
  const order = { FAILED: 0, SKIPPED: 1, PENDING: 2, MIGRATED: 3 };
  const items = [...(batch.items ?? [])]
    .sort((a, b) => (order[enumTail(a.state, 'MIGRATION_ITEM_STATE')] ?? 4) - (order[enumTail(b.state, 'MIGRATION_ITEM_STATE')] ?? 4))
    .slice(0, MAX_ITEMS);
  return h(
    'div',
    { class: 'batch', 'data-testid': 'mig-batch', 'data-batch-id': batch.batch_id, 'data-state': state },
    h(
      'p',
      { class: 'batch-state', 'data-testid': 'mig-batch-state' },
      h('span', { class: ['state', state === 'COMPLETED' ? 'completed' : 'active'] }, t(`batch${state}`)),
      ' ',
      t('batchState', {
        total,
        migrated: batch.migrated ?? 0,
        skipped: batch.skipped ?? 0,
        failed: batch.failed ?? 0,
      }),
    ),
    h('progress', { max: String(Math.max(total, 1)), value: String(total ? done : state === 'COMPLETED' ? 1 : 0) }),
    h(
      'dl',
      { class: 'meta' },
      h('dt', {}, t('plan')),
      h('dd', { class: 'mono' }, `${plan.source_definition_id ?? ''} → ${plan.target_definition_id ?? ''}`),
      (plan.mappings ?? []).length
        ? [
            h('dt', {}, t('mappings')),
            h(
              'dd',
              { class: 'mono' },
              plan.mappings.map((m) => `${m.source_element_id} → ${m.target_element_id}${m.restart ? ` (${t('restart')})` : ''}`).join(', '),
            ),
          ]
        : null,
      h('dt', {}, t('reason').replace(/[((].*$/, '').trim()),
      h('dd', { class: 'wrap' }, batch.reason ?? ''),
      h('dt', {}, t('createdBy')),
      h('dd', {}, `${batch.created_by ?? ''} · ${when(batch.created_at)}`),
      batch.ended_at ? [h('dt', {}, t('ended')), h('dd', {}, when(batch.ended_at))] : null,
    ),
    items.length
      ? table(
          [t('businessKey'), t('state'), t('message'), t('updated')],
          items.map((item) => {
            const itemState = enumTail(item.state, 'MIGRATION_ITEM_STATE');
            return h(
              'tr',
              { 'data-testid': 'mig-batch-item', 'data-instance-id': item.instance_id, 'data-state': itemState },
              h('td', {}, instanceLink(item.instance_id, item.business_key), h('div', { class: 'muted mono' }, item.instance_id)),
              h('td', {}, h('span', { class: ['state', `item-${itemState.toLowerCase()}`] }, t(`item${itemState}`))),
              h('td', { class: 'wrap' }, item.message ?? ''),
              h('td', {}, when(item.updated_at)),
            );
          }),
        )
      : null,
    items.length < (batch.items ?? []).length ? h('p', { class: 'muted' }, t('countOf', { shown: items.length, total: batch.items.length })) : null,
  );
}

/** Follows one batch: GetMigration now, then every second while it runs and on live events. */
function followBatch(ctx, holder, batchId, onDone) {
  let timer = null;
  let stopped = false;
  const load = async () => {
    clearTimeout(timer);
    if (stopped) return;
    try {
      const batch = await ctx.api.get(`/api/migrations/${ctx.api.segment(batchId)}`);
      if (stopped) return;
      replace(holder, batchView(batch));
      if (enumTail(batch.state, 'MIGRATION_STATE') === 'RUNNING') timer = setTimeout(load, POLL_MS);
      else onDone?.(batch);
    } catch (error) {
      if (!stopped) replace(holder, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
    }
  };
  load();
  const stopLive = ctx.onLive(() => load(), (event) => Boolean(event.instance_id));
  return () => {
    stopped = true;
    clearTimeout(timer);
    stopLive?.();
  };
}

function batchList(ctx, batches) {
  return batches.length
    ? table(
        [t('created'), t('plan'), t('state'), t('createdBy'), t('reason').replace(/[((].*$/, '').trim()],
        batches.map((batch) => {
          const state = enumTail(batch.state, 'MIGRATION_STATE');
          const href = `#/operate/migrations/${encodeURIComponent(batch.batch_id)}`;
          return h(
            'tr',
            {
              class: 'instance-row',
              'data-testid': 'mig-batch-row',
              'data-batch-id': batch.batch_id,
              'data-state': state,
              onclick: (event) => {
                if (!event.target.closest('a')) location.hash = href;
              },
            },
            h('td', {}, h('a', { href }, when(batch.created_at))),
            h('td', { class: 'mono' }, `${batch.plan?.source_definition_id ?? ''} → ${batch.plan?.target_definition_id ?? ''}`),
            h(
              'td',
              {},
              h('span', { class: ['state', state === 'COMPLETED' ? 'completed' : 'active'] }, t(`batch${state}`)),
              ' ',
              h('span', { class: 'muted' }, `${batch.migrated ?? 0}/${batch.total ?? 0}`),
            ),
            h('td', {}, batch.created_by ?? ''),
            h('td', { class: 'wrap' }, batch.reason ?? ''),
          );
        }),
        'mig-batch-list',
      )
    : h('p', { class: 'muted', 'data-testid': 'mig-batch-list' }, t('noBatches'));
}

async function batchPage(container, ctx, batchId) {
  const holder = h('div', {}, h('p', { class: 'loading' }, t('loading')));
  replace(
    container,
    h('p', { class: 'crumbs' }, h('a', { href: '#/operate' }, t('backToOperate')), ' › ', h('a', { href: '#/operate/migrations' }, t('migrations'))),
    h('h1', {}, t('batch'), ' ', h('span', { class: 'muted mono' }, batchId)),
    h('section', { class: 'panel' }, holder),
  );
  const stop = followBatch(ctx, holder, batchId);
  return { destroy: stop };
}

async function planner(container, ctx, chosenProcess = '') {
  const body = await ctx.api.get('/api/definitions');
  const all = (body?.definitions ?? []).slice();
  const byProcess = new Map();
  for (const d of all) {
    if (!byProcess.has(d.process_id)) byProcess.set(d.process_id, []);
    byProcess.get(d.process_id).push(d);
  }
  for (const list of byProcess.values()) list.sort((a, b) => (b.version ?? 0) - (a.version ?? 0));
  const processIds = [...byProcess.keys()].sort();

  const state = {
    processId: '',
    // per side: {definition, files: [{name, content, processId}], ids: Map element id → process id,
    // viewer (of the file in view, or null), nodes: Map id → name (in view), waiting: Map id → count}
    source: null,
    target: null,
    shown: '', // the process whose diagrams are in view: the chosen one or a process it calls
    mappings: [], // {process_id, source_element_id, target_element_id, restart}
    picked: '', // a source element waiting for its target
    problems: [], // {process_id, element_id} the last check named
  };
  const counts = new Map(); // version → running instances
  let destroyed = false;
  let stopBatch = null;

  const processSelect = h(
    'select',
    { 'data-testid': 'mig-process', 'aria-label': t('process') },
    h('option', { value: '' }, t('chooseProcess')),
    processIds.map((pid) => h('option', { value: pid }, `${bilingual(byProcess.get(pid)[0].name || pid)} · ${pid}`)),
  );
  const sourceSelect = h('select', { 'data-testid': 'mig-source', 'aria-label': t('sourceVersion'), disabled: true });
  const targetSelect = h('select', { 'data-testid': 'mig-target', 'aria-label': t('targetVersion'), disabled: true });
  const sourceCanvas = h('div', { class: 'diagram', 'data-testid': 'mig-source-diagram', role: 'figure', 'aria-label': t('sourceVersion') });
  const targetCanvas = h('div', { class: 'diagram', 'data-testid': 'mig-target-diagram', role: 'figure', 'aria-label': t('targetVersion') });
  const fileTabs = h('div', { class: 'diagram-tabs', role: 'group', 'aria-label': t('diagram') });
  const sourceHead = h('h2', {}, t('sourceVersion'));
  const targetHead = h('h2', {}, t('targetVersion'));
  const hint = h('p', { class: 'muted', 'data-testid': 'mig-hint', 'aria-live': 'polite' });
  const mappingList = h('div', { 'data-testid': 'mig-mappings' });
  const mapSource = h('select', { 'data-testid': 'mig-map-source', 'aria-label': t('sourceVersion') });
  const mapTarget = h('select', { 'data-testid': 'mig-map-target', 'aria-label': t('targetVersion') });
  const businessKey = h('input', { type: 'text', 'data-testid': 'mig-business-key', id: 'mig-business-key', autocomplete: 'off' });
  const waitingAt = h('select', { 'data-testid': 'mig-waiting-at', id: 'mig-waiting-at' });
  const withIncidents = h('input', { type: 'checkbox', 'data-testid': 'mig-with-incidents' });
  const checkButton = h('button', { type: 'button', class: 'primary', 'data-testid': 'mig-check', disabled: true, onclick: () => check() }, t('checkPlan'));
  const checkResult = h('div', { 'data-testid': 'mig-check-result', 'aria-live': 'polite' });
  const reason = h('textarea', { rows: 2, 'data-testid': 'mig-reason', id: 'mig-reason' });
  const skip = h('input', { type: 'checkbox', 'data-testid': 'mig-skip' });
  const startError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'mig-error' });
  const startButton = h('button', { type: 'submit', class: 'danger', 'data-testid': 'mig-start', disabled: true }, t('migrate'));
  const batchHolder = h('div', { 'data-testid': 'mig-current-batch' });
  const pastHolder = h('div', {});

  const plan = () => ({
    source_definition_id: state.source?.definition.definition_id ?? '',
    target_definition_id: state.target?.definition.definition_id ?? '',
    mappings: state.mappings.map((m) => ({ ...m })),
  });
  const selection = () => ({
    business_key: businessKey.value.trim(),
    waiting_at_element_id: waitingAt.value,
    with_incidents: withIncidents.checked,
  });
  const ready = () => Boolean(state.source?.files && state.target?.files && state.source.definition.definition_id !== state.target.definition.definition_id);
  /** A mapping's or problem's process: "" (or the plan's own) is the chosen process. */
  const processOf = (item) => item.process_id || state.processId;
  const inView = (item) => processOf(item) === state.shown;

  const label = (side, id) => {
    const name = state[side]?.nodes.get(id) || state[side]?.names.get(id);
    return name ? `${bilingual(name)} (${id})` : id;
  };

  const mark = () => {
    if (!state.source?.viewer && !state.target?.viewer) return;
    const marks = planMarks(
      new Set(state.source?.nodes.keys() ?? []),
      new Set(state.target?.nodes.keys() ?? []),
      state.mappings.filter(inView),
      state.source?.waiting ?? new Map(),
      state.problems.filter(inView).map((p) => p.element_id),
    );
    for (const side of ['source', 'target']) {
      const viewer = state[side]?.viewer;
      if (!viewer) continue;
      const canvas = viewer.get('canvas');
      const overlays = viewer.get('overlays');
      overlays.remove({ type: 'cf-mig' });
      for (const id of state[side].nodes.keys()) {
        for (const marker of MARKERS) canvas.removeMarker(id, marker);
        const how = marks[side].get(id);
        if (how) canvas.addMarker(id, `cf-mig-${how}`);
      }
      if (side === 'source') {
        if (state.picked) canvas.addMarker(state.picked, 'cf-mig-picked');
        for (const [id, count] of state.source.waiting) {
          if (!state.source.nodes.has(id)) continue;
          const badge = h('div', { class: 'cf-badges' }, h('span', { class: 'cf-count', title: `${count} ${t('running')}` }, String(count)));
          overlays.add(id, 'cf-mig', { position: { bottom: 12, left: -8 }, html: badge });
        }
      }
    }
  };

  const renderMappings = () => {
    replace(
      mappingList,
      state.mappings.length
        ? table(
            [t('sourceVersion'), t('targetVersion'), t('restart'), ''],
            state.mappings.map((m, index) =>
              h(
                'tr',
                { 'data-testid': 'mig-mapping-row', 'data-process-id': processOf(m), 'data-source': m.source_element_id, 'data-target': m.target_element_id },
                h('td', {}, m.process_id ? h('span', { class: 'muted mono' }, `${m.process_id} / `) : null, inView(m) ? label('source', m.source_element_id) : m.source_element_id),
                h('td', {}, inView(m) ? label('target', m.target_element_id) : m.target_element_id),
                h(
                  'td',
                  {},
                  h('input', {
                    type: 'checkbox',
                    'data-testid': 'mig-mapping-restart',
                    'aria-label': t('restart'),
                    checked: m.restart,
                    onchange: (e) => {
                      m.restart = e.currentTarget.checked;
                      planChanged();
                      mark();
                    },
                  }),
                ),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    {
                      type: 'button',
                      class: 'secondary',
                      'data-testid': 'mig-mapping-remove',
                      onclick: () => {
                        state.mappings.splice(index, 1);
                        planChanged();
                        renderMappings();
                        mark();
                      },
                    },
                    t('remove'),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, t('noMappings')),
    );
  };

  /** The plan changed: the last check's answer no longer holds. */
  const planChanged = () => {
    state.problems = [];
    replace(checkResult);
  };

  const addMapping = (sourceId, targetId) => {
    if (!sourceId || !targetId) return;
    planChanged();
    const processId = state.shown === state.processId ? '' : state.shown;
    state.mappings = state.mappings.filter((m) => !(inView(m) && m.source_element_id === sourceId));
    state.mappings.push({ process_id: processId, source_element_id: sourceId, target_element_id: targetId, restart: false });
    state.picked = '';
    hint.textContent = '';
    mapSource.value = '';
    mapTarget.value = '';
    renderMappings();
    mark();
  };

  const fillElementSelects = () => {
    const options = (side) =>
      [...(state[side]?.nodes.keys() ?? [])].sort().map((id) => h('option', { value: id }, label(side, id)));
    replace(mapSource, h('option', { value: '' }, '—'), options('source'));
    replace(mapTarget, h('option', { value: '' }, '—'), options('target'));
    replace(waitingAt, h('option', { value: '' }, t('anyElement')), options('source'));
  };

  const clicked = (side) => (event) => {
    let element = event.element;
    if (element?.type === 'label') element = element.labelTarget;
    if (!element || !state[side]?.nodes.has(element.id)) return;
    if (side === 'source') {
      state.picked = state.picked === element.id ? '' : element.id;
      hint.textContent = state.picked ? t('pickedSource', { element: label('source', element.id) }) : '';
      mapSource.value = state.picked;
      mark();
    } else if (state.picked) {
      addMapping(state.picked, element.id);
    } else {
      hint.textContent = t('pickSourceFirst');
    }
  };

  /** Reads a version's diagram files (the process's own first, then those it calls). */
  const loadSide = async (side, definition) => {
    state[side]?.viewer?.destroy();
    state[side] = null;
    if (!definition) return;
    const detail = await ctx.api.get(`/api/definitions/${ctx.api.segment(definition.definition_id)}`);
    const files = (detail?.resources ?? [])
      .filter((r) => /\.bpmn$/i.test(r.name ?? '') && r.content)
      .map((r) => ({ name: r.name, content: r.content, processId: processOf({ process_id: processOfFile(r.content) }) }));
    if (files.length) files[0].processId = state.processId; // the process's own file, whatever it holds else
    const texts = files.map((f) => f.content);
    state[side] = { definition, files, ids: elementProcesses(texts), names: elementNames(texts), viewer: null, nodes: new Map(), waiting: new Map() };
  };

  /** Draws the shown process's file of one side (or says the version has no such process). */
  const showSide = async (side) => {
    const canvas = side === 'source' ? sourceCanvas : targetCanvas;
    const held = state[side];
    if (!held) {
      canvas.replaceChildren();
      return;
    }
    held.viewer?.destroy();
    held.viewer = null;
    held.nodes = new Map();
    canvas.replaceChildren();
    const file = held.files.find((f) => f.processId === state.shown);
    if (!file) {
      replace(canvas, h('p', { class: 'notice' }, t('processNotInVersion', { process: state.shown })));
      return;
    }
    try {
      const viewer = await drawDiagram(canvas, file.content, language());
      if (destroyed || state[side] !== held) return viewer.destroy();
      viewer.on('element.click', clicked(side));
      held.viewer = viewer;
      held.nodes = flowNodes(viewer);
    } catch (error) {
      replace(canvas, h('p', { class: 'error', role: 'alert' }, t('diagramFailed', { message: error.message })));
    }
  };

  /** Tabs for the processes the versions hold (the chosen one and those it calls), when more than one. */
  const renderTabs = () => {
    const seen = [];
    for (const file of [...(state.source?.files ?? []), ...(state.target?.files ?? [])]) {
      if (!seen.includes(file.processId)) seen.push(file.processId);
    }
    replace(
      fileTabs,
      seen.length > 1
        ? seen.map((pid) =>
            h(
              'button',
              {
                type: 'button',
                class: ['tab', pid === state.shown && 'on'],
                'aria-pressed': String(pid === state.shown),
                'data-testid': 'mig-file',
                'data-process-id': pid,
                onclick: () => showProcess(pid),
              },
              pid,
            ),
          )
        : null,
    );
  };

  const showProcess = async (pid) => {
    state.shown = pid;
    state.picked = '';
    hint.textContent = '';
    renderTabs();
    await Promise.all([showSide('source'), showSide('target')]);
    if (destroyed) return;
    fillElementSelects();
    renderMappings();
    mark();
  };

  const loadWaiting = async () => {
    if (!state.source) return;
    try {
      const stats = await ctx.api.get(`/api/processes/${ctx.api.segment(state.processId)}/statistics`, { version: state.source.definition.version });
      state.source.waiting = new Map((stats?.elements ?? []).filter((e) => Number(e.active ?? 0) > 0).map((e) => [e.element_id, Number(e.active)]));
    } catch {
      state.source.waiting = new Map();
    }
  };

  const versionOption = (d) => h('option', { value: String(d.version) }, t('versionRunning', { version: d.version, count: counts.get(d.version) ?? '…' }));

  const refreshButtons = () => {
    checkButton.disabled = !ready();
    startButton.disabled = !ready();
    sourceHead.textContent = `${t('sourceVersion')}${state.source ? ` · v${state.source.definition.version}` : ''}`;
    targetHead.textContent = `${t('targetVersion')}${state.target ? ` · v${state.target.definition.version}` : ''}`;
  };

  const redraw = async () => {
    const versions = byProcess.get(state.processId) ?? [];
    const source = versions.find((d) => String(d.version) === sourceSelect.value);
    const target = versions.find((d) => String(d.version) === targetSelect.value);
    state.problems = [];
    state.picked = '';
    replace(checkResult);
    const keep = state.mappings;
    try {
      await Promise.all([
        state.source?.definition === source ? null : loadSide('source', source),
        state.target?.definition === target ? null : loadSide('target', target),
      ]);
    } catch (error) {
      replace(sourceCanvas, h('p', { class: 'error', role: 'alert' }, t('diagramFailed', { message: error.message })));
      return;
    }
    await loadWaiting();
    if (destroyed) return;
    // a mapping stays while both its elements are in their process in both versions
    const holds = (side, m) => {
      const holder = state[side]?.ids.get(side === 'source' ? m.source_element_id : m.target_element_id);
      const file = state[side]?.files.find((f) => f.processId === processOf(m));
      return Boolean(holder && file) && (holder === processOf(m) || file === state[side].files[0]);
    };
    state.mappings = keep.filter((m) => holds('source', m) && holds('target', m));
    const processes = new Set([...(state.source?.files ?? []), ...(state.target?.files ?? [])].map((f) => f.processId));
    await showProcess(processes.has(state.shown) ? state.shown : state.processId);
    refreshButtons();
    if (source && target && source.version === target.version) hint.textContent = t('sameVersion');
  };

  const chooseProcess = async (pid) => {
    // the address names the process, so a reload or a language switch comes back to it
    if (pid) history.replaceState(null, '', `#/operate/migrations/plan/${encodeURIComponent(pid)}`);
    state.processId = pid;
    state.shown = pid;
    state.mappings = [];
    const versions = byProcess.get(pid) ?? [];
    counts.clear();
    await Promise.all(
      versions.map((d) =>
        ctx.api
          .get(`/api/processes/${ctx.api.segment(pid)}/statistics`, { version: d.version })
          .then((s) => counts.set(d.version, Number(s?.running_instances ?? 0)))
          .catch(() => counts.set(d.version, 0)),
      ),
    );
    if (destroyed) return;
    // the source: the newest older version with running instances; the target: the latest
    const older = versions.slice(1);
    const source = older.find((d) => (counts.get(d.version) ?? 0) > 0) ?? older[0] ?? versions[0];
    replace(sourceSelect, versions.map(versionOption));
    replace(targetSelect, versions.map(versionOption));
    sourceSelect.disabled = targetSelect.disabled = !versions.length;
    if (source) sourceSelect.value = String(source.version);
    if (versions[0]) targetSelect.value = String(versions[0].version);
    await Promise.all([redraw(), loadPast()]);
  };

  async function check(more = null) {
    if (!ready()) return;
    checkButton.disabled = true;
    if (!more) replace(checkResult, h('p', { class: 'muted' }, t('checking')));
    try {
      const asked = { plan: plan(), selection: selection(), page_size: 500, page_token: more?.next_page_token ?? '' };
      const page = await ctx.api.post('/api/migrations/plan', asked);
      // a further page adds its instances to those shown (the selection is the same)
      const answer = more ? { ...page, instances: [...(more.instances ?? []), ...(page?.instances ?? [])] } : page;
      const instances = answer?.instances ?? [];
      const planProblems = answer?.plan_problems ?? [];
      state.problems = [...planProblems, ...instances.flatMap((i) => i.problems ?? [])].filter((p) => p.element_id);
      mark();
      const applicable = instances.filter((i) => i.applicable).length;
      const action = (move) => t(`move${enumTail(move.action, 'MOVE_ACTION')}`);
      replace(
        checkResult,
        planProblems.length
          ? h(
              'div',
              { class: 'plan-problems' },
              h('h3', {}, t('planProblems')),
              h('ul', {}, planProblems.map((p) => h('li', { class: 'error', 'data-testid': 'mig-plan-problem', 'data-element-id': p.element_id }, p.element_id ? [h('strong', {}, label('source', p.element_id)), ': '] : null, p.message))),
            )
          : null,
        h(
          'p',
          { 'data-testid': 'mig-check-summary' },
          t('checkResult', { selected: answer?.selected ?? instances.length, applicable }),
          answer?.next_page_token ? [' ', t('countOf', { shown: instances.length, total: answer.selected ?? '?' })] : null,
        ),
        instances.length
          ? table(
              [t('businessKey'), t('applicable'), t('problems'), t('moves')],
              instances.map((i) =>
                h(
                  'tr',
                  { 'data-testid': 'mig-check-row', 'data-instance-id': i.instance_id, 'data-applicable': String(Boolean(i.applicable)), class: i.applicable ? null : 'has-incidents' },
                  h('td', {}, instanceLink(i.instance_id, i.business_key), h('div', { class: 'muted mono' }, i.instance_id)),
                  h('td', {}, h('span', { class: ['state', i.applicable ? 'completed' : 'problem'] }, i.applicable ? t('yes') : t('no'))),
                  h(
                    'td',
                    { class: 'wrap' },
                    (i.problems ?? []).map((p) => h('div', { class: 'error', 'data-testid': 'mig-problem', 'data-element-id': p.element_id }, p.element_id ? [h('strong', {}, label('source', p.element_id)), ': '] : null, p.message)),
                  ),
                  h(
                    'td',
                    {},
                    (i.moves ?? []).map((m) =>
                      h(
                        'div',
                        { 'data-testid': 'mig-move', 'data-action': enumTail(m.action, 'MOVE_ACTION') },
                        `${label('source', m.source_element_id)} → ${m.target_element_id ? label('target', m.target_element_id) : '×'}`,
                        ' ',
                        h('span', { class: ['move-action', enumTail(m.action, 'MOVE_ACTION').toLowerCase()] }, action(m)),
                        m.kind ? h('span', { class: 'muted' }, ` · ${m.kind}`) : null,
                        m.detail ? h('div', { class: 'muted' }, m.detail) : null,
                      ),
                    ),
                  ),
                ),
              ),
              'mig-check-table',
            )
          : null,
        answer?.next_page_token
          ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'mig-check-more', onclick: () => check(answer) }, t('more'))
          : null,
      );
    } catch (error) {
      replace(checkResult, h('p', { class: 'error', role: 'alert' }, errorText(error)));
    } finally {
      checkButton.disabled = !ready();
    }
  }

  function errorText(error) {
    const violations = error.fieldViolations ?? [];
    return violations.length ? violations.map((v) => `${v.field}: ${v.description}`).join(' ') : error.message;
  }

  const startMigration = async (event) => {
    event.preventDefault();
    startError.textContent = '';
    reason.removeAttribute('aria-invalid');
    if (!reason.value.trim()) {
      reason.setAttribute('aria-invalid', 'true');
      startError.textContent = t('reasonRequired');
      return;
    }
    startButton.disabled = true;
    try {
      const batch = await ctx.api.post('/api/migrations', { plan: plan(), selection: selection(), reason: reason.value.trim(), skip_refused: skip.checked });
      ctx.notify(t('migrationStarted'));
      stopBatch?.();
      stopBatch = followBatch(ctx, batchHolder, batch.batch_id, () => {
        loadPast();
        chooseCounts();
      });
      loadPast();
    } catch (error) {
      startError.textContent = errorText(error);
    } finally {
      startButton.disabled = !ready();
    }
  };

  // after a batch: the running counts per version and the waits on the source diagram change
  const chooseCounts = async () => {
    const versions = byProcess.get(state.processId) ?? [];
    await Promise.all(
      versions.map((d) =>
        ctx.api
          .get(`/api/processes/${ctx.api.segment(state.processId)}/statistics`, { version: d.version })
          .then((s) => counts.set(d.version, Number(s?.running_instances ?? 0)))
          .catch(() => {}),
      ),
    );
    for (const select of [sourceSelect, targetSelect]) {
      const chosen = select.value;
      replace(select, versions.map(versionOption));
      select.value = chosen;
    }
    await loadWaiting();
    mark();
  };

  async function loadPast() {
    try {
      const answer = await ctx.api.get('/api/migrations', { process_id: state.processId, page_size: 20 });
      replace(pastHolder, batchList(ctx, answer?.batches ?? []));
    } catch (error) {
      replace(pastHolder, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
    }
  }

  processSelect.addEventListener('change', () => chooseProcess(processSelect.value));
  sourceSelect.addEventListener('change', redraw);
  targetSelect.addEventListener('change', redraw);
  mapSource.addEventListener('change', () => {
    state.picked = mapSource.value;
    hint.textContent = state.picked ? t('pickedSource', { element: label('source', state.picked) }) : '';
    mark();
  });

  replace(
    container,
    h(
      'div',
      { class: 'migrations-page', 'data-testid': 'migrations-page' },
      h('p', { class: 'crumbs' }, h('a', { href: '#/operate' }, t('backToOperate'))),
      h('h1', {}, t('migrationsTitle')),
      h('div', { class: 'diagram-bar' }, processSelect, h('label', {}, t('sourceVersion'), ' ', sourceSelect), '→', h('label', {}, t('targetVersion'), ' ', targetSelect)),
      fileTabs,
      h(
        'div',
        { class: 'side-by-side' },
        h('div', { class: 'side' }, sourceHead, sourceCanvas),
        h('div', { class: 'side' }, targetHead, targetCanvas),
      ),
      h('p', { class: 'legend muted' }, t('migrationLegend')),
      hint,
      h(
        'div',
        { class: 'migration-forms' },
        section(
          t('mappings'),
          'mig-mapping-panel',
          mappingList,
          h(
            'div',
            { class: 'filters' },
            mapSource,
            '→',
            mapTarget,
            h('button', { type: 'button', class: 'secondary', 'data-testid': 'mig-map-add', onclick: () => addMapping(mapSource.value, mapTarget.value) }, '+'),
          ),
        ),
        section(
          t('selection'),
          'mig-selection',
          h(
            'div',
            { class: 'fields' },
            h('div', { class: 'field' }, h('label', { for: 'mig-business-key' }, t('businessKey')), businessKey),
            h('div', { class: 'field' }, h('label', { for: 'mig-waiting-at' }, t('waitingAtElement')), waitingAt),
            h('label', { class: 'check' }, withIncidents, ' ', t('withIncidents')),
          ),
          h('div', { class: 'actions' }, checkButton),
        ),
      ),
      section(t('checkPlan'), 'mig-check-panel', checkResult),
      section(
        t('migrate'),
        'mig-start-panel',
        h(
          'form',
          { class: 'message-form', onsubmit: startMigration },
          h('label', { for: 'mig-reason' }, t('reason')),
          reason,
          h('label', { class: 'check' }, skip, ' ', t('skipRefused')),
          startError,
          startButton,
        ),
        batchHolder,
      ),
      section(t('pastBatches'), 'mig-past', pastHolder),
    ),
  );
  renderMappings();
  refreshButtons();
  fillElementSelects();
  for (const canvas of [sourceCanvas, targetCanvas]) replace(canvas, h('p', { class: 'notice' }, t('chooseProcess')));
  if (chosenProcess && byProcess.has(chosenProcess)) {
    processSelect.value = chosenProcess;
    await chooseProcess(chosenProcess);
  } else {
    await loadPast();
  }
  return {
    destroy() {
      destroyed = true;
      stopBatch?.();
      state.source?.viewer?.destroy();
      state.target?.viewer?.destroy();
    },
  };
}

export async function mountMigrations(container, ctx, batchId = '', processId = '') {
  if (!ctx.can.migrate) {
    replace(container, h('p', { class: 'notice', 'data-testid': 'not-allowed' }, t('errorForbidden')));
    return {};
  }
  return batchId ? batchPage(container, ctx, batchId) : planner(container, ctx, processId);
}
