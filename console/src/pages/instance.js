// One instance (#/operate/instances/<instance_id>): its diagram with the path taken, where it waits and
// its incidents; incidents (retry), user tasks, jobs, variables, timeline, the processes it called and
// the one that called it; cancel and publish a message, each only for the roles that may.
import { h, replace } from '../dom.js';
import { callersOf, drawDiagram, processOfFile, showInstance } from '../diagram.js';
import { bilingual, language, t } from '../i18n.js';
import { parseJson, readable, stateLabel, stateName, when } from '../format.js';
import { humanKey, parseVariables } from '../tasklist.js';
import { instanceTable } from './operate.js';

function section(title, testid, ...children) {
  return h('section', { class: 'panel', 'data-testid': testid, 'aria-label': title }, h('h2', {}, title), children);
}

function table(headers, rows) {
  return h(
    'table',
    { class: 'grid' },
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows),
  );
}

function elementName(instance, elementId, fallback = '') {
  const active = (instance.active_elements ?? []).find((e) => e.element_id === elementId);
  const named = active?.name || (instance.history ?? []).find((e) => e.element_id === elementId && e.element_name)?.element_name;
  return named ? bilingual(named) : fallback || elementId;
}

/** Where the instance has been (element ids), waits and is stuck ({element_id, process_id}), from its
 * history, active elements and open incidents. */
export function instanceMarkers(instance) {
  const done = [];
  for (const event of instance.history ?? []) {
    if (event.type === 'element.completed' && event.element_id) done.push(event.element_id);
  }
  const place = (item) => ({ element_id: item.element_id, process_id: item.process_id ?? '' });
  const active = (instance.active_elements ?? []).filter((e) => e.element_id).map(place);
  const incidents = (instance.incidents ?? []).filter((i) => !i.resolved_at && i.element_id).map(place);
  return { done, active, incidents };
}

/** The diagram files among a definition's resources (the process's own first, then those it calls). */
function diagramFiles(detail) {
  return (detail?.resources ?? []).filter((r) => /\.bpmn$/i.test(r.name ?? '') && r.content);
}

function messageForm(ctx, instance) {
  const name = h('input', { type: 'text', required: true, id: 'msg-name', 'data-testid': 'message-name', autocomplete: 'off' });
  const key = h('input', { type: 'text', id: 'msg-key', 'data-testid': 'message-key', value: instance.business_key ?? '', autocomplete: 'off' });
  const variables = h('textarea', { id: 'msg-vars', rows: 3, 'data-testid': 'message-variables', value: '{}' });
  const error = h('p', { class: 'form-error', role: 'alert' });
  const send = async (e) => {
    e.preventDefault();
    error.textContent = '';
    const parsed = parseJson(variables.value.trim() || '{}');
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      error.textContent = `${t('messageVariables')}: ${t('notJson')}`;
      return;
    }
    try {
      const result = await ctx.api.post('/api/messages', { name: name.value.trim(), correlation_key: key.value.trim(), variables: parsed });
      ctx.notify(t('published', { outcome: String(result?.outcome ?? '').replace(/^MESSAGE_OUTCOME_/, '').toLowerCase() || 'ok' }));
    } catch (failure) {
      const violations = failure.fieldViolations ?? [];
      error.textContent = violations.length ? violations.map((v) => `${v.field}: ${v.description}`).join(' ') : failure.message;
    }
  };
  return h(
    'form',
    { class: 'message-form', 'data-testid': 'message-publish', onsubmit: send },
    h('h2', {}, t('publishMessage')),
    h('label', { for: 'msg-name' }, t('messageName')),
    name,
    h('label', { for: 'msg-key' }, t('correlationKey')),
    key,
    h('label', { for: 'msg-vars' }, t('messageVariables')),
    variables,
    error,
    h('button', { type: 'submit' }, t('publish')),
  );
}

/** The history events a migration or a modification wrote (instance.migrated, instance.modified, …). */
export function isMigrationEvent(type) {
  return /migrat|modif/i.test(String(type ?? ''));
}

/** The version a migrated instance last came from: its latest instance.migrated event's detail names the
 * source definition ("from <process_id>:<version> to …"); null when it was never migrated. */
export function migratedFrom(instance) {
  const events = (instance.history ?? []).filter((e) => e.type === 'instance.migrated');
  if (!events.length) return null;
  const detail = events[events.length - 1].detail ?? '';
  const found = /from \S*?:(\d+)\b/.exec(detail) ?? /:(\d+)\b/.exec(detail);
  return found ? Number(found[1]) : '?';
}

export async function mountInstance(container, ctx, instanceId) {
  let viewer = null;
  let drawnDefinition = '';
  let processName = ''; // the definition's name, once its diagram is loaded
  const canvas = h('div', { class: 'diagram', 'data-testid': 'diagram', role: 'figure', 'aria-label': t('diagram') });
  const body = h('div', { class: 'instance-body' });
  const header = h('div', { class: 'instance-head' });

  let files = []; // the definition's diagram files
  let callers = new Map();
  let shownFile = 0;
  let lastInstance = null;
  let moving = null; // the open move form: {activate: select, form}
  const movePanel = h('div', { class: 'move-holder' });
  const tabs = h('div', { class: 'diagram-tabs', role: 'group', 'aria-label': t('diagram') });

  const showFile = async (index) => {
    shownFile = index;
    viewer?.destroy();
    viewer = null;
    canvas.replaceChildren();
    for (const [i, tab] of [...tabs.children].entries()) {
      tab.setAttribute('aria-pressed', String(i === index));
      tab.classList.toggle('on', i === index);
    }
    try {
      viewer = await drawDiagram(canvas, files[index]?.content ?? '', language());
    } catch (error) {
      replace(canvas, h('p', { class: 'error', role: 'alert' }, t('diagramFailed', { message: error.message })));
      return;
    }
    if (lastInstance) showInstance(viewer, instanceMarkers(lastInstance), callers);
    viewer.on('element.click', (event) => {
      let element = event.element;
      if (element?.type === 'label') element = element.labelTarget;
      if (!moving || !element || !element.parent || /SequenceFlow|Process|Lane|Participant|Collaboration/.test(element.type)) return;
      const option = [...moving.activate.options].find((o) => o.value === element.id);
      if (!option) return;
      moving.activate.value = element.id;
      markMoveTarget();
    });
    fillMoveTargets();
  };

  const markMoveTarget = () => {
    if (!viewer) return;
    const canvas = viewer.get('canvas');
    for (const element of viewer.get('elementRegistry').getAll()) canvas.removeMarker(element.id, 'cf-move-target');
    if (moving?.activate.value && viewer.get('elementRegistry').get(moving.activate.value)) canvas.addMarker(moving.activate.value, 'cf-move-target');
  };

  /** The elements of the diagram in view that can be activated: its flow nodes. */
  const fillMoveTargets = () => {
    if (!moving || !viewer) return;
    const chosen = moving.activate.value;
    const nodes = viewer
      .get('elementRegistry')
      .filter((e) => e.parent && e.type !== 'label' && !/SequenceFlow|MessageFlow|Process|Lane|Participant|Collaboration|Association|TextAnnotation|Data/.test(e.type))
      .map((e) => [e.id, e.businessObject?.name ?? ''])
      .sort(([a], [b]) => (a < b ? -1 : 1));
    replace(
      moving.activate,
      h('option', { value: '' }, t('moveNoActivate')),
      nodes.map(([id, name]) => h('option', { value: id }, name ? `${bilingual(name)} (${id})` : id)),
    );
    moving.activate.value = chosen;
    markMoveTarget();
  };

  const openMove = (instance) => {
    if (moving) return closeMove();
    const activate = h('select', { id: 'move-activate', 'data-testid': 'move-activate', onchange: () => markMoveTarget() });
    const reason = h('textarea', { id: 'move-reason', rows: 2, 'data-testid': 'move-reason' });
    const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'move-error' });
    const waits = (instance.active_elements ?? []).filter((e) => e.element_id);
    const boxes = waits.map((e) =>
      h(
        'label',
        { class: 'check' },
        h('input', { type: 'checkbox', 'data-testid': 'move-cancel', 'data-element-id': e.element_id, 'data-process-id': e.process_id ?? '', value: e.element_id }),
        ' ',
        e.name ? `${bilingual(e.name)} (${e.element_id})` : e.element_id,
      ),
    );
    const submit = async (event) => {
      event.preventDefault();
      error.textContent = '';
      const chosen = boxes.map((b) => b.querySelector('input')).filter((i) => i.checked);
      if (!reason.value.trim()) {
        reason.setAttribute('aria-invalid', 'true');
        error.textContent = t('reasonRequired');
        return;
      }
      reason.removeAttribute('aria-invalid');
      // the elements' process: the one whose diagram is in view when an element is activated (the list
      // offers that diagram's elements), else the one every ticked wait lies in; the instance's own is ""
      const processes = new Set(chosen.map((i) => i.dataset.processId || instance.process_id));
      const inView = shownFile > 0 ? processOfFile(files[shownFile]?.content ?? '') : instance.process_id;
      const processId = activate.value ? inView : processes.size === 1 ? [...processes][0] : instance.process_id;
      try {
        await ctx.api.post(`/api/instances/${ctx.api.segment(instance.instance_id)}/modify`, {
          cancel_element_ids: chosen.map((i) => i.value),
          activate_element_id: activate.value,
          process_id: processId === instance.process_id ? '' : processId,
          reason: reason.value.trim(),
        });
        ctx.notify(t('moved'));
        closeMove();
        await load();
      } catch (failure) {
        const violations = failure.fieldViolations ?? [];
        error.textContent = violations.length ? violations.map((v) => `${v.field}: ${v.description}`).join(' ') : failure.message;
      }
    };
    const form = h(
      'form',
      { class: 'move-form', 'data-testid': 'move-form', onsubmit: submit },
      h('h2', {}, t('moveTitle')),
      h('fieldset', {}, h('legend', {}, t('moveCancel')), boxes.length ? boxes : h('p', { class: 'muted' }, t('none'))),
      h('label', { for: 'move-activate' }, t('moveActivate')),
      activate,
      h('label', { for: 'move-reason' }, t('reason')),
      reason,
      error,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'danger', 'data-testid': 'move-submit' }, t('moveSubmit')), h('button', { type: 'button', class: 'secondary', onclick: () => closeMove() }, t('close'))),
    );
    moving = { activate, form };
    replace(movePanel, h('section', { class: 'panel' }, form));
    fillMoveTargets();
  };

  const closeMove = () => {
    moving = null;
    movePanel.replaceChildren();
    markMoveTarget();
  };

  const draw = async (instance) => {
    lastInstance = instance;
    if (drawnDefinition !== instance.definition_id) {
      drawnDefinition = instance.definition_id;
      let detail;
      try {
        detail = await ctx.api.get(`/api/definitions/${ctx.api.segment(instance.definition_id)}`);
      } catch (error) {
        drawnDefinition = '';
        replace(canvas, h('p', { class: 'error', role: 'alert' }, t('diagramFailed', { message: error.message })));
        return;
      }
      files = diagramFiles(detail);
      callers = callersOf(files.map((f) => f.content));
      processName = detail?.definition?.name ?? '';
      for (const named of header.querySelectorAll('.process-name')) named.textContent = bilingual(processName);
      replace(
        tabs,
        files.length > 1
          ? files.map((file, index) =>
              h(
                'button',
                { type: 'button', class: 'tab', 'data-testid': 'diagram-file', 'data-file': file.name, onclick: () => showFile(index) },
                file.name.replace(/\.bpmn$/i, ''),
              ),
            )
          : null,
      );
      await showFile(0);
      return;
    }
    if (viewer) showInstance(viewer, instanceMarkers(instance), callers);
  };

  const render = (instance, children) => {
    const state = stateName(instance.state);
    const active = state === 'ACTIVE';
    replace(
      header,
      h(
        'p',
        { class: 'crumbs' },
        h('a', { href: '#/operate' }, t('backToOperate')),
        ' › ',
        h('a', { href: `#/operate/processes/${encodeURIComponent(instance.process_id ?? '')}`, class: 'process-name' }, bilingual(processName || instance.process_id || '')),
      ),
      h(
        'h1',
        {},
        instance.business_key || instance.instance_id,
        ' ',
        h('span', { class: ['state', state.toLowerCase()] }, stateLabel(instance.state)),
      ),
      h(
        'dl',
        { class: 'meta' },
        h('dt', {}, t('process')),
        h(
          'dd',
          {},
          h('span', { class: 'process-name' }, bilingual(processName || instance.process_id || '')),
          ` · ${instance.process_id ?? ''} `,
          h('span', { 'data-testid': 'instance-version' }, `v${instance.version ?? ''}`),
          migratedFrom(instance) !== null
            ? [' ', h('span', { class: 'state active', 'data-testid': 'instance-migrated-from' }, t('migratedFrom', { version: migratedFrom(instance) }))]
            : null,
        ),
        h('dt', {}, 'ID'),
        h('dd', { class: 'mono' }, instance.instance_id),
        h('dt', {}, t('started')),
        h('dd', {}, when(instance.created_at)),
        instance.ended_at ? [h('dt', {}, t('ended')), h('dd', {}, when(instance.ended_at))] : null,
        instance.parent_instance_id
          ? [
              h('dt', {}, t('parent')),
              h('dd', {}, h('a', { href: `#/operate/instances/${encodeURIComponent(instance.parent_instance_id)}`, 'data-testid': 'instance-parent' }, instance.parent_instance_id)),
            ]
          : null,
      ),
      active && (ctx.can.cancel || ctx.can.modify)
        ? h(
            'div',
            { class: 'actions' },
            ctx.can.modify ? h('button', { type: 'button', class: 'secondary', 'data-testid': 'instance-move', onclick: () => openMove(instance) }, t('moveInstance')) : null,
            ctx.can.cancel ? h('button', { type: 'button', class: 'danger', 'data-testid': 'instance-cancel', onclick: () => cancel(instance) }, t('cancelInstance')) : null,
          )
        : null,
    );
    const incidents = (instance.incidents ?? []).filter((i) => !i.resolved_at);
    const variables = Object.entries(parseVariables(instance.variables_json)).sort(([a], [b]) => (a < b ? -1 : 1));
    const history = [...(instance.history ?? [])].reverse();
    replace(
      body,
      section(
        t('openIncidents'),
        'incident-list',
        incidents.length
          ? table(
              [t('element'), t('kind'), t('message'), t('time'), ''],
              incidents.map((incident) =>
                h(
                  'tr',
                  { class: 'incident-row', 'data-testid': 'incident-row', 'data-incident-id': incident.incident_id, 'data-element-id': incident.element_id },
                  h('td', {}, elementName(instance, incident.element_id)),
                  h('td', { class: 'mono' }, incident.kind ?? ''),
                  h('td', { class: 'wrap' }, incident.message ?? ''),
                  h('td', {}, when(incident.created_at)),
                  h(
                    'td',
                    {},
                    ctx.can.retry
                      ? h('button', { type: 'button', 'data-testid': 'incident-retry', onclick: (e) => retry(incident, e.currentTarget) }, t('retryIncident'))
                      : null,
                  ),
                ),
              ),
            )
          : h('p', { class: 'muted' }, t('noIncidents')),
      ),
      section(
        t('userTasks'),
        'instance-user-tasks',
        (instance.user_tasks ?? []).length
          ? table(
              [t('name'), t('assignee'), t('due')],
              instance.user_tasks.map((task) =>
                h(
                  'tr',
                  { 'data-task-id': task.user_task_id },
                  h('td', {}, ctx.can.tasks ? h('a', { href: `#/tasks/${encodeURIComponent(task.user_task_id)}` }, bilingual(task.name || task.element_id)) : bilingual(task.name || task.element_id)),
                  h('td', {}, task.assignee || (task.candidate_groups ?? []).join(', ')),
                  h('td', {}, when(task.due_at)),
                ),
              ),
            )
          : h('p', { class: 'muted' }, t('noUserTasks')),
      ),
      section(
        t('jobs'),
        'instance-jobs',
        (instance.jobs ?? []).length
          ? table(
              [t('element'), t('operation'), t('state'), t('attempt'), t('retriesLeft'), t('deadline'), t('message')],
              instance.jobs.map((job) =>
                h(
                  'tr',
                  { 'data-job-key': job.job_key },
                  h('td', {}, elementName(instance, job.element_id)),
                  h('td', { class: 'mono' }, job.operation ?? ''),
                  h('td', {}, job.state ?? ''),
                  h('td', { class: 'num' }, String(job.attempt ?? 0)),
                  h('td', { class: 'num' }, String(job.retries ?? 0)),
                  h('td', {}, when(job.deadline)),
                  h('td', { class: 'wrap' }, job.error_message ?? ''),
                ),
              ),
            )
          : h('p', { class: 'muted' }, t('noJobs')),
      ),
      section(
        t('children'),
        'instance-children',
        children.length ? instanceTable(children) : h('p', { class: 'muted' }, t('noChildren')),
      ),
      section(
        t('variables'),
        'instance-variables',
        variables.length
          ? table(
              [t('name'), t('value')],
              variables.map(([key, value]) =>
                h('tr', {}, h('td', { title: key }, humanKey(key, language()), h('div', { class: 'muted mono' }, key)), h('td', { class: 'wrap' }, readable(value))),
              ),
            )
          : h('p', { class: 'muted' }, t('noVariables')),
      ),
      section(
        t('timeline'),
        'instance-timeline',
        history.length
          ? h(
              'ol',
              { class: 'timeline', reversed: true },
              history.map((event) =>
                h(
                  'li',
                  { 'data-type': event.type, class: isMigrationEvent(event.type) ? 'migration-event' : null },
                  h('time', { datetime: event.time }, when(event.time)),
                  ' ',
                  h('span', { class: 'event-type mono' }, event.type),
                  event.element_id ? [' ', h('strong', {}, event.element_name ? bilingual(event.element_name) : event.element_id)] : null,
                  event.detail ? h('div', { class: 'muted wrap' }, event.detail) : null,
                ),
              ),
            )
          : h('p', { class: 'muted' }, t('noHistory')),
      ),
      active && ctx.can.publish ? h('section', { class: 'panel' }, messageForm(ctx, instance)) : null,
    );
  };

  let loads = 0; // a slower, older answer never overwrites a newer one
  const load = async () => {
    const mine = ++loads;
    const [instance, children] = await Promise.all([
      ctx.api.get(`/api/instances/${ctx.api.segment(instanceId)}`),
      ctx.api.get('/api/instances', { parent_instance_id: instanceId, page_size: 100 }).then((b) => b?.instances ?? []).catch(() => []),
    ]);
    if (mine !== loads) return;
    render(instance, children);
    await draw(instance);
  };

  async function cancel(instance) {
    if (!window.confirm(t('cancelConfirm'))) return;
    try {
      await ctx.api.post(`/api/instances/${ctx.api.segment(instance.instance_id)}/cancel`);
      ctx.notify(t('canceled'));
      await load();
    } catch (error) {
      ctx.notify(error.message, 'error');
    }
  }

  async function retry(incident, button) {
    button.disabled = true;
    try {
      await ctx.api.post(`/api/incidents/${ctx.api.segment(incident.incident_id)}/resolve`, {});
      ctx.notify(t('retried'));
      await load();
    } catch (error) {
      button.disabled = false;
      ctx.notify(error.message, 'error');
    }
  }

  replace(
    container,
    h(
      'div',
      { class: 'instance-page', 'data-testid': 'instance-page', 'data-instance-id': instanceId },
      header,
      tabs,
      canvas,
      h('p', { class: 'legend muted' }, t('instanceLegend')),
      movePanel,
      body,
    ),
  );
  await load();
  ctx.onLive(
    () => load().catch(() => {}),
    (event) => !event.instance_id || event.instance_id === instanceId,
  );
  return { destroy: () => viewer?.destroy() };
}
