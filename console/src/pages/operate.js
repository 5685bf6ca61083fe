// Operate (#/operate, #/operate/processes/<process_id>, #/operate/instances/<instance_id>): processes
// with their running instances and incidents, a process's diagram as a heat map, instance search, and
// (pages/instance.js) one instance.
import { h, replace } from '../dom.js';
import { callersOf, drawDiagram, elementProcesses, showStatistics } from '../diagram.js';
import { bilingual, language, t } from '../i18n.js';
import { relative, stateLabel, stateName, when } from '../format.js';
import { mountInstance } from './instance.js';
import { mountMigrations } from './migrations.js';

const STATES = ['ACTIVE', 'COMPLETED', 'CANCELED'];

/** Makes a whole table row open `href` when clicked (its first cell holds the real link for keyboards). */
function rowLink(href) {
  return (event) => {
    if (event.target.closest('a, button, input, select, textarea')) return;
    location.hash = href;
  };
}

/** A table of instance summaries (data-testid instance-row each), linking to their pages; `names` maps a
 * process id to its name where known. */
export function instanceTable(instances, names = new Map()) {
  return h(
    'table',
    { class: 'grid instances' },
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        [t('businessKey'), t('process'), t('state'), t('waitingAt'), t('incidents'), t('updated')].map((c, i) =>
          h('th', { scope: 'col', class: i === 4 ? 'num' : null }, c),
        ),
      ),
    ),
    h(
      'tbody',
      {},
      instances.map((inst) =>
        h(
          'tr',
          {
            class: ['instance-row', Number(inst.open_incidents ?? 0) > 0 && 'has-incidents'],
            'data-testid': 'instance-row',
            'data-instance-id': inst.instance_id,
            onclick: rowLink(`#/operate/instances/${encodeURIComponent(inst.instance_id)}`),
          },
          h(
            'td',
            {},
            h('a', { href: `#/operate/instances/${encodeURIComponent(inst.instance_id)}` }, inst.business_key || inst.instance_id.slice(0, 8)),
            h('div', { class: 'muted mono' }, inst.instance_id),
          ),
          h(
            'td',
            {},
            bilingual(names.get(inst.process_id) || inst.process_id || ''),
            h('span', { class: 'muted' }, ` ${inst.definition_id?.split(':')[1] ? `v${inst.definition_id.split(':')[1]}` : ''}`),
          ),
          h('td', {}, h('span', { class: ['state', stateName(inst.state).toLowerCase()] }, stateLabel(inst.state))),
          h('td', {}, (inst.waiting_at ?? []).map((name) => bilingual(name)).join(', ')),
          h('td', { class: 'num' }, Number(inst.open_incidents ?? 0) ? h('span', { class: 'incident-count' }, String(inst.open_incidents)) : ''),
          h('td', { title: when(inst.updated_at || inst.created_at) }, relative(inst.updated_at || inst.created_at)),
        ),
      ),
    ),
  );
}

/**
 * The instance search: business key or id prefix, state, process, only with incidents; pages with
 * "load more". `fixedProcess` pins the process (on a process's page). Returns {element, reload()}.
 */
function instanceSearch(ctx, names, fixedProcess = '') {
  const processIds = [...names.keys()];
  const filter = { query: '', state: '', process_id: fixedProcess, with_incidents: false };
  let shown = [];
  let nextToken = '';
  const results = h('div', { class: 'results', 'aria-live': 'polite' });
  const query = h('input', {
    type: 'search',
    'data-testid': 'instance-search',
    'aria-label': t('searchInstances'),
    placeholder: t('searchPlaceholder'),
  });
  const state = h(
    'select',
    { 'data-testid': 'instance-state', 'aria-label': t('state') },
    h('option', { value: '' }, t('anyState')),
    STATES.map((s) => h('option', { value: s, selected: s === 'ACTIVE' }, stateLabel(s))),
  );
  filter.state = 'ACTIVE';
  const process = fixedProcess
    ? null
    : h(
        'select',
        { 'data-testid': 'instance-process', 'aria-label': t('process') },
        h('option', { value: '' }, t('anyProcess')),
        processIds.map((pid) => h('option', { value: pid }, bilingual(names.get(pid) || pid))),
      );
  const incidents = h('input', { type: 'checkbox', 'data-testid': 'instance-with-incidents' });

  const load = async (more = false) => {
    try {
      const body = await ctx.api.get('/api/instances', {
        query: filter.query,
        state: filter.state,
        process_id: filter.process_id,
        with_incidents: filter.with_incidents ? 'true' : '',
        page_size: 50,
        page_token: more ? nextToken : '',
      });
      const page = body?.instances ?? [];
      shown = more ? [...shown, ...page] : page;
      nextToken = body?.next_page_token ?? '';
      const total = Number(body?.total ?? shown.length);
      replace(
        results,
        shown.length ? instanceTable(shown, names) : h('p', { class: 'muted' }, t('noInstances')),
        shown.length ? h('p', { class: 'muted' }, t('countOf', { shown: shown.length, total })) : null,
        nextToken ? h('button', { type: 'button', class: 'secondary', onclick: () => load(true) }, t('more')) : null,
      );
    } catch (error) {
      replace(results, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
    }
  };
  const apply = (e) => {
    e?.preventDefault();
    filter.query = query.value.trim();
    filter.state = state.value;
    filter.process_id = fixedProcess || process.value;
    filter.with_incidents = incidents.checked;
    load();
  };
  for (const control of [state, process, incidents]) control?.addEventListener('change', apply);
  const element = h(
    'section',
    { class: 'search', 'aria-label': t('searchInstances') },
    h('h2', {}, t('instances')),
    h(
      'form',
      { class: 'filters', role: 'search', onsubmit: apply },
      query,
      state,
      process,
      h('label', { class: 'check' }, incidents, ' ', t('withIncidents')),
      h('button', { type: 'submit' }, t('search')),
    ),
    results,
  );
  return { element, reload: () => load(false) };
}

async function overview(container, ctx) {
  const body = await ctx.api.get('/api/definitions', { latest_only: 'true' });
  const definitions = (body?.definitions ?? []).slice().sort((a, b) => (a.process_id < b.process_id ? -1 : 1));
  const table = h('tbody');
  const stats = new Map();
  const renderRows = () =>
    replace(
      table,
      definitions.map((d) => {
        const s = stats.get(d.process_id);
        const incidents = Number(s?.instances_with_incidents ?? 0);
        return h(
          'tr',
          {
            class: ['process-row', incidents > 0 && 'has-incidents'],
            'data-testid': 'process-row',
            'data-process-id': d.process_id,
            onclick: rowLink(`#/operate/processes/${encodeURIComponent(d.process_id)}`),
          },
          h(
            'td',
            {},
            h('a', { href: `#/operate/processes/${encodeURIComponent(d.process_id)}` }, bilingual(d.name || d.process_id)),
            h('div', { class: 'muted mono' }, d.process_id),
          ),
          h('td', { class: 'num' }, `v${d.version ?? 0}`),
          h('td', { class: 'num' }, s ? String(s.running_instances ?? 0) : '…'),
          h('td', { class: 'num' }, s ? (incidents ? h('span', { class: 'incident-count' }, String(incidents)) : '0') : '…'),
          h('td', { title: when(d.deployed_at) }, relative(d.deployed_at)),
        );
      }),
    );
  const loadStats = () =>
    Promise.all(
      definitions.map((d) =>
        ctx.api
          .get(`/api/processes/${ctx.api.segment(d.process_id)}/statistics`)
          .then((s) => stats.set(d.process_id, s ?? {}))
          .catch(() => stats.set(d.process_id, {})),
      ),
    ).then(renderRows);
  renderRows();
  const search = instanceSearch(ctx, new Map(definitions.map((d) => [d.process_id, d.name || d.process_id])));
  replace(
    container,
    h('h1', {}, t('operateTitle')),
    ctx.can.migrate
      ? h('p', { class: 'actions' }, h('a', { class: 'button secondary', href: '#/operate/migrations', 'data-testid': 'nav-migrations' }, t('migrations')))
      : null,
    h(
      'section',
      { class: 'panel', 'aria-label': t('processes') },
      h('h2', {}, t('processes')),
      definitions.length
        ? h(
            'table',
            { class: 'grid processes', 'data-testid': 'process-list' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                [t('process'), t('version'), t('running'), t('withIncidents'), t('updated')].map((c, i) =>
                  h('th', { scope: 'col', class: i >= 1 && i <= 3 ? 'num' : null }, c),
                ),
              ),
            ),
            table,
          )
        : h('p', { class: 'muted', 'data-testid': 'process-list' }, t('noProcesses')),
    ),
    search.element,
  );
  await Promise.all([loadStats(), search.reload()]);
  ctx.onLive(() => {
    loadStats();
    search.reload();
  });
  return {};
}

async function processPage(container, ctx, processId) {
  const body = await ctx.api.get('/api/definitions', { process_id: processId });
  const versions = (body?.definitions ?? []).slice().sort((a, b) => (b.version ?? 0) - (a.version ?? 0));
  if (!versions.length) {
    replace(container, h('p', { class: 'notice' }, t('notFound')));
    return {};
  }
  let version = 0; // every version
  let viewer = null;
  let drawnDefinition = '';
  let where = {}; // {callers, processes} of the drawn definition's files
  const canvas = h('div', { class: 'diagram', 'data-testid': 'diagram', role: 'figure', 'aria-label': t('diagram') });
  const summary = h('p', { class: 'summary' });
  const select = h(
    'select',
    { 'aria-label': t('version'), 'data-testid': 'process-version' },
    h('option', { value: '0' }, t('allVersions')),
    versions.map((d) => h('option', { value: String(d.version) }, `v${d.version} · ${when(d.deployed_at)}`)),
  );
  const labels = {
    active: (n) => `${n} ${t('running')}`,
    incidents: (n) => `${n} ${t('incidents')}`,
  };
  let lastStats = null; // the counts last read: drawn on the diagram once it is there
  const fetchStats = () => ctx.api.get(`/api/processes/${ctx.api.segment(processId)}/statistics`, { version: version || '' });
  const showStats = (stats) => {
    lastStats = stats;
    replace(
      summary,
      `${t('running')}: `,
      h('strong', {}, String(stats?.running_instances ?? 0)),
      ' · ',
      `${t('withIncidents')}: `,
      h('strong', { class: Number(stats?.instances_with_incidents ?? 0) ? 'incident-count' : null }, String(stats?.instances_with_incidents ?? 0)),
    );
    if (viewer) showStatistics(viewer, stats?.elements ?? [], labels, where);
  };
  const loadStats = async () => showStats(await fetchStats());
  const draw = async () => {
    const definition = version ? versions.find((d) => d.version === version) : versions[0];
    if (definition.definition_id === drawnDefinition && viewer) return;
    viewer?.destroy();
    viewer = null;
    canvas.replaceChildren();
    try {
      const detail = await ctx.api.get(`/api/definitions/${ctx.api.segment(definition.definition_id)}`);
      const xml = detail?.resources?.[0]?.content ?? '';
      const texts = (detail?.resources ?? []).filter((r) => /\.bpmn$/i.test(r.name ?? '')).map((r) => r.content ?? '');
      where = { callers: callersOf(texts), processes: elementProcesses(texts) };
      viewer = await drawDiagram(canvas, xml, language());
      drawnDefinition = definition.definition_id;
    } catch (error) {
      replace(canvas, h('p', { class: 'error', role: 'alert' }, t('diagramFailed', { message: error.message })));
    }
  };
  select.addEventListener('change', async () => {
    version = Number(select.value);
    await draw();
    await loadStats();
  });
  const search = instanceSearch(ctx, new Map([[processId, versions[0].name || processId]]), processId);
  const latest = versions[0];
  replace(
    container,
    h('p', { class: 'crumbs' }, h('a', { href: '#/operate' }, t('backToOperate'))),
    h('h1', {}, bilingual(latest.name || processId), ' ', h('span', { class: 'muted mono' }, processId)),
    ctx.can.migrate && versions.length > 1
      ? h(
          'p',
          { class: 'actions' },
          h('a', { class: 'button secondary', href: `#/operate/migrations/plan/${encodeURIComponent(processId)}`, 'data-testid': 'process-migrate' }, t('migrations')),
        )
      : null,
    h('div', { class: 'diagram-bar' }, select, summary),
    canvas,
    h('p', { class: 'legend muted' }, t('diagramLegend')),
    search.element,
  );
  // the diagram, the counts and the first page of instances are fetched together (not one after the
  // other); the counts go on the diagram when both are there
  await Promise.all([
    draw().then(() => lastStats && viewer && showStatistics(viewer, lastStats.elements ?? [], labels, where)),
    loadStats().catch(() => {}),
    search.reload(),
  ]);
  ctx.onLive(
    () => {
      loadStats().catch(() => {});
      search.reload();
    },
  );
  return { destroy: () => viewer?.destroy() };
}

export const operatePage = {
  async mount(container, ctx, parts) {
    const [kind, id, more] = parts;
    if (kind === 'processes' && id) return processPage(container, ctx, id);
    if (kind === 'instances' && id) return mountInstance(container, ctx, id);
    if (kind === 'migrations' && id === 'plan') return mountMigrations(container, ctx, '', more ?? '');
    if (kind === 'migrations') return mountMigrations(container, ctx, id ?? '');
    return overview(container, ctx);
  },
};
