// Tasks (#/tasks, #/tasks/<user_task_id>): the person's tasks or their groups' tasks, overdue and due
// first; a task's form beside its documentation and the engagement's context; claim, unclaim, complete.
import { ApiError } from '../api.js';
import { h, replace } from '../dom.js';
import { formProblems, formVariables } from '../forms.js';
import { bilingual, language, t } from '../i18n.js';
import { readable, relative, when } from '../format.js';
import { engagementContext, humanKey, parseVariables, sortTasks, urgency } from '../tasklist.js';
import { renderFields } from './taskform.js';

const SCOPE_KEY = 'consultflow.console.taskScope';
const DECISIONS_SHOWN = 12;

function savedScope() {
  try {
    const saved = localStorage.getItem(SCOPE_KEY);
    if (saved === 'mine' || saved === 'groups') return saved;
  } catch {
    // no storage: the default below
  }
  return 'groups'; // every open task the person may take or holds; "mine" narrows to those they hold
}

function dueBadge(task) {
  const level = urgency(task);
  if (level === 'none') return h('span', { class: 'due-badge none' }, t('noDue'));
  const text = level === 'overdue' ? t('overdueSince', { when: relative(task.due_at) }) : t('dueAt', { when: relative(task.due_at) });
  return h('span', { class: ['due-badge', level], title: when(task.due_at) }, text);
}

function holder(task, me) {
  if (!task.assignee) return h('span', { class: 'holder free' }, t('unassigned'));
  if (task.assignee === me.name) return h('span', { class: 'holder mine' }, t('claimedByYou'));
  return h('span', { class: 'holder other' }, t('claimedBy', { name: task.assignee }));
}

/** The documentation: paragraphs, with a leading clause number ("[2.2.1]") set apart. */
function documentation(text) {
  const paragraphs = String(text ?? '')
    .split(/\n\s*\n|\n/)
    .map((p) => p.trim())
    .filter(Boolean);
  if (!paragraphs.length) return h('p', { class: 'muted' }, t('noDocumentation'));
  return paragraphs.map((p) => {
    const clause = /^\[([^\]]+)\]\s*/.exec(p);
    return clause
      ? h('p', {}, h('span', { class: 'clause' }, clause[1]), ' ', p.slice(clause[0].length))
      : h('p', {}, p);
  });
}

function definitionList(entries) {
  return h(
    'dl',
    { class: 'kv' },
    entries.map(([key, value]) => [h('dt', { title: key }, humanKey(key, language())), h('dd', {}, readable(value))]),
  );
}

function contextSection(task) {
  const variables = parseVariables(task.variables_json);
  const ownFields = (task.form_fields ?? []).map((f) => f.id);
  const { client, decisions } = engagementContext(variables, ownFields);
  const parts = [h('h2', {}, t('context'))];
  if (!client.length && !decisions.length) parts.push(h('p', { class: 'muted' }, t('noContext')));
  if (client.length) parts.push(h('h3', {}, t('client')), definitionList(client));
  if (decisions.length) {
    parts.push(h('h3', {}, t('previousDecisions')), definitionList(decisions.slice(0, DECISIONS_SHOWN)));
    if (decisions.length > DECISIONS_SHOWN) {
      parts.push(
        h(
          'details',
          {},
          h('summary', {}, t('showAll', { count: decisions.length })),
          definitionList(decisions.slice(DECISIONS_SHOWN)),
        ),
      );
    }
  }
  return h('section', { class: 'context', 'data-testid': 'task-context', 'aria-label': t('context') }, parts);
}

export const tasksPage = {
  async mount(container, ctx, parts) {
    const { api, me } = ctx;
    let scope = savedScope();
    let includeClosed = false;
    let tasks = [];
    let selectedId = parts[0] ?? '';
    let form = null; // the rendered fields of the selected task
    let selected = null;
    let busy = false;

    const listBox = h('div', { class: 'task-list-box' });
    const detail = h('section', { class: 'task-detail', 'aria-live': 'polite' });
    const scopeButton = (value, label) =>
      h(
        'button',
        {
          type: 'button',
          'data-testid': `scope-${value}`,
          'aria-pressed': String(scope === value),
          class: ['tab', scope === value && 'on'],
          onclick: () => {
            scope = value;
            try {
              localStorage.setItem(SCOPE_KEY, value);
            } catch {
              // not remembered
            }
            renderToolbar();
            loadList();
          },
        },
        label,
      );
    const toolbar = h('div', { class: 'toolbar' });
    const renderToolbar = () =>
      replace(
        toolbar,
        h('div', { role: 'group', class: 'tabs', 'aria-label': t('tasksTitle') }, scopeButton('mine', t('scopeMine')), scopeButton('groups', t('scopeGroups'))),
        h(
          'label',
          { class: 'check' },
          h('input', {
            type: 'checkbox',
            checked: includeClosed,
            onchange: (e) => {
              includeClosed = e.target.checked;
              loadList();
            },
          }),
          ' ',
          t('includeClosed'),
        ),
      );
    renderToolbar();
    replace(
      container,
      h('div', { class: 'tasks-layout' }, h('aside', { class: 'task-side' }, toolbar, listBox), detail),
    );

    const renderList = () => {
      if (!tasks.length) return replace(listBox, h('p', { class: 'muted', 'data-testid': 'task-list' }, t('noTasks')));
      replace(
        listBox,
        h(
          'ul',
          { class: 'task-list', 'data-testid': 'task-list' },
          sortTasks(tasks).map((task) =>
            h(
              'li',
              {
                class: ['task-row', urgency(task), task.user_task_id === selectedId && 'selected', task.state && task.state !== 'OPEN' && 'closed'],
                'data-testid': 'task-row',
                'data-task-id': task.user_task_id,
                'data-element-id': task.element_id,
              },
              h(
                'a',
                { href: `#/tasks/${encodeURIComponent(task.user_task_id)}`, 'aria-current': task.user_task_id === selectedId ? 'true' : null },
                h('span', { class: 'task-name' }, bilingual(task.name || task.element_id)),
                h('span', { class: 'task-meta' }, [task.business_key, bilingual(task.process_id ?? '')].filter(Boolean).join(' · ')),
                h('span', { class: 'task-flags' }, dueBadge(task), ' ', holder(task, me)),
              ),
            ),
          ),
        ),
      );
    };

    let listLoads = 0; // a slower, older answer never overwrites a newer one
    const loadList = async () => {
      const mine = ++listLoads;
      try {
        const body = await api.get('/api/tasks', { scope, include_closed: includeClosed ? 'true' : '' });
        if (mine !== listLoads) return;
        tasks = body?.user_tasks ?? [];
        renderList();
      } catch (error) {
        replace(listBox, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
      }
    };

    const renderDetail = (task, keep = {}) => {
      selected = task;
      const mine = task.assignee === me.name;
      const open = (task.state || 'OPEN') === 'OPEN';
      const heldByOther = Boolean(task.assignee) && !mine;
      const fields = task.form_fields ?? [];
      form = renderFields(fields, keep, !open || heldByOther);
      const formError = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'task-form-error' });
      const actions = h('div', { class: 'actions' });
      if (open && !task.assignee) {
        actions.append(h('button', { type: 'button', 'data-testid': 'task-claim', onclick: () => act('claim') }, t('claim')));
      }
      if (open && mine) {
        actions.append(h('button', { type: 'button', class: 'secondary', 'data-testid': 'task-unclaim', onclick: () => act('unclaim') }, t('unclaim')));
      }
      const formElement = h(
        'form',
        { class: 'task-form', 'data-testid': 'task-form', novalidate: true, 'aria-label': t('formTitle'), onsubmit: (e) => { e.preventDefault(); submit(formError); } },
        fields.length ? form.element : h('p', { class: 'muted' }, t('noFields')),
        formError,
        open
          ? h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'primary', 'data-testid': 'task-complete', disabled: heldByOther }, t('complete')))
          : h('p', { class: 'notice' }, t('taskClosed', { state: t(`state${task.state}`) === `state${task.state}` ? String(task.state).toLowerCase() : t(`state${task.state}`) })),
        heldByOther && open ? h('p', { class: 'notice' }, t('claimFirst', { name: task.assignee })) : null,
      );
      const meta = h(
        'dl',
        { class: 'meta' },
        h('dt', {}, t('process')),
        h('dd', {}, bilingual(task.process_id ?? '')),
        task.business_key ? [h('dt', {}, t('businessKey')), h('dd', {}, task.business_key)] : null,
        h('dt', {}, t('due')),
        h('dd', {}, dueBadge(task), task.due_at ? h('span', { class: 'muted' }, ` (${when(task.due_at)})`) : null),
        h('dt', {}, t('assignee')),
        h('dd', {}, holder(task, me)),
        (task.candidate_groups ?? []).length ? [h('dt', {}, t('candidateGroups')), h('dd', {}, task.candidate_groups.join(', '))] : null,
        h('dt', {}, t('created')),
        h('dd', {}, when(task.created_at)),
      );
      replace(
        detail,
        h(
          'div',
          { class: 'task-main' },
          h('h1', {}, bilingual(task.name || task.element_id)),
          meta,
          ctx.can.operate && task.instance_id
            ? h('p', {}, h('a', { href: `#/operate/instances/${encodeURIComponent(task.instance_id)}` }, t('openInstance')))
            : null,
          actions,
          formElement,
        ),
        h(
          'aside',
          { class: 'task-aside' },
          h('section', { class: 'task-doc', 'data-testid': 'task-doc', 'aria-label': t('documentation') }, h('h2', {}, t('documentation')), documentation(task.documentation)),
          contextSection(task),
        ),
      );
    };

    const loadDetail = async (keep) => {
      if (!selectedId) {
        selected = null;
        form = null;
        replace(detail, h('p', { class: 'muted pick' }, t('pickTask')));
        return;
      }
      try {
        const task = await api.get(`/api/tasks/${api.segment(selectedId)}`);
        renderDetail(task, keep);
      } catch (error) {
        replace(detail, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
      }
    };

    const refreshAll = () => {
      loadList();
      // keep what the person typed; re-read the task only when it changed hands or closed
      if (selected && !busy) {
        const id = selected.user_task_id;
        api
          .get(`/api/tasks/${api.segment(id)}`)
          .then((task) => {
            if (selectedId !== id || busy) return;
            if (task.assignee !== selected.assignee || task.state !== selected.state) renderDetail(task, form?.read() ?? {});
          })
          .catch(() => {});
      }
    };

    async function act(action) {
      if (!selected || busy) return;
      busy = true;
      const keep = form?.read() ?? {};
      try {
        const path = `/api/tasks/${api.segment(selected.user_task_id)}`;
        await api.post(`${path}/${action}`);
        // read the task again: the claim's answer leaves out the data the task sees (its context)
        renderDetail(await api.get(path), keep);
        loadList();
      } catch (error) {
        ctx.notify(error.message, 'error');
      } finally {
        busy = false;
      }
    }

    async function submit(formError) {
      if (!selected || busy) return;
      const fields = selected.form_fields ?? [];
      const values = form.read();
      form.clearErrors();
      formError.textContent = '';
      const problems = formProblems(fields, values).map((p) => ({ field: p.field, text: t(p.key) }));
      if (problems.length) {
        form.showErrors(problems);
        formError.textContent = t('formHasErrors');
        return;
      }
      busy = true;
      const button = detail.querySelector('[data-testid="task-complete"]');
      if (button) button.disabled = true;
      const id = selected.user_task_id;
      try {
        if (!selected.assignee) await api.post(`/api/tasks/${api.segment(id)}/claim`);
        await api.post(`/api/tasks/${api.segment(id)}/complete`, { variables: formVariables(fields, values) });
        ctx.notify(t('completed', { name: bilingual(selected.name || selected.element_id) }));
        tasks = tasks.filter((task) => task.user_task_id !== id);
        busy = false;
        ctx.navigate('#/tasks');
      } catch (error) {
        busy = false;
        if (button) button.disabled = false;
        if (error instanceof ApiError && error.fieldViolations.length) {
          const unplaced = form.showErrors(error.fieldViolations.map((v) => ({ field: v.field, text: v.description })));
          formError.textContent = unplaced.length
            ? unplaced.map((v) => `${v.field}: ${v.text}`).join(' ')
            : t('formHasErrors');
        } else {
          formError.textContent = error.message;
        }
        // the task may have changed (claimed by someone else, closed): show its state, keep the values
        if (error instanceof ApiError && error.status === 409) refreshAll();
      }
    }

    ctx.onLive(refreshAll);
    await Promise.all([loadList(), loadDetail()]);

    return {
      update(newParts) {
        const id = newParts[0] ?? '';
        if (id === selectedId) return;
        selectedId = id;
        renderList();
        loadDetail();
        if (!id) loadList();
      },
    };
  },
};
