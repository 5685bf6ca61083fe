// The modeler page (#/modeler, #/modeler/<definition_id>): the deployed processes, and one definition's
// files (the process, the processes it calls, its decision tables) in bpmn-js / dmn-js with a properties panel
// that speaks this system's conventions (provider.js); validate (bpmnlint + the orchestrator's deploy checks),
// deploy with a note, compare two versions, export and import files so bpmn/ stays the source of truth.
import BpmnModeler from 'bpmn-js/lib/Modeler';
import DmnModeler from 'dmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
  CamundaPlatformPropertiesProviderModule,
} from 'bpmn-js-properties-panel';
import camundaModdle from 'camunda-bpmn-moddle/resources/camunda.json';
import spiffModdle from './spiffworkflow.json';
import { ConsultflowPropertiesProviderModule } from './provider.js';
import { BpmnModdle } from 'bpmn-moddle';
import { lintDefinitions } from './lint.js';
import { showComparison } from './compare.js';
import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn-embedded.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import 'dmn-js/dist/assets/dmn-js-shared.css';
import 'dmn-js/dist/assets/dmn-js-drd.css';
import 'dmn-js/dist/assets/dmn-js-decision-table.css';
import 'dmn-js/dist/assets/dmn-js-decision-table-controls.css';
import 'dmn-js/dist/assets/dmn-js-literal-expression.css';
import 'dmn-js/dist/assets/dmn-font/css/dmn-embedded.css';
import './modeler.css';

const TEXT = {
  en: {
    title: 'Modeler', process: 'Process', version: 'Version', name: 'Name', deployed: 'Deployed', by: 'By', note: 'Note',
    validate: 'Validate', deploy: 'Deploy', export: 'Export', import: 'Import a file…', notePlaceholder: 'Why this change (e.g. 5.1.1: survey date is required)',
    differs: 'The deployed version differs from the repository (bpmn/): export it and commit the file, or deploy the repository\'s file.',
    noProblems: 'No problems: a deploy would be accepted.', problems: 'Problems', compare: 'Compare versions', close: 'Close',
    deployed_ok: 'Deployed', unchanged: 'Unchanged (no new version)', loading: 'Loading…', back: 'All processes',
    refused: 'Not deployed: fix the problems first.', changes: 'Changes', none: 'No differences.', imported: 'Imported',
    startup: 'start-up deploy of bpmn/',
    alsoCallers: (ids) => `A deploy also makes new versions of: ${ids} (they call what changes; running instances keep theirs)`,
    madeCallers: (made) => `Also new versions of: ${made} (they call what changed)`,
  },
  zh: {
    title: '流程建模', process: '流程', version: '版本', name: '名稱', deployed: '部署時間', by: '部署人', note: '說明',
    validate: '檢查', deploy: '部署', export: '匯出', import: '匯入檔案…', notePlaceholder: '修改原因（例如 5.1.1：調查日期必填）',
    differs: '已部署的版本與代碼庫（bpmn/）不同：請匯出並提交該檔案，或部署代碼庫中的檔案。',
    noProblems: '沒有問題：可以部署。', problems: '問題', compare: '比較版本', close: '關閉',
    deployed_ok: '已部署', unchanged: '未變更（沒有新版本）', loading: '載入中…', back: '全部流程',
    refused: '未部署：請先修正問題。', changes: '變更', none: '沒有差異。', imported: '已匯入',
    startup: 'bpmn/ 啟動時部署',
    alsoCallers: (ids) => `部署也會為以下流程建立新版本：${ids}（它們調用了被修改的流程；執行中的案例保持原版本）`,
    madeCallers: (made) => `也建立了新版本：${made}（它們調用了被修改的流程）`,
  },
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'testid') node.dataset.testid = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** "中文 English" → the part in the chosen language (the diagrams carry both in one name). */
export function localName(name, lang) {
  const text = name || '';
  const split = /^([^A-Za-z]*[\u3000-\u9fff\uff00-\uffef][^A-Za-z]*?)\s+([A-Za-z].*)$/.exec(text);
  if (!split) return text;
  return lang === 'zh' ? split[1].trim() : split[2].trim();
}

/** The person's `can.deploy` (the shell gives ctx.can, or ctx.me.can). */
function canDeploy(ctx) {
  const can = ctx.can || (ctx.me && ctx.me.can) || {};
  return can.deploy;
}

function errorText(error) {
  if (!error) return '';
  const fields = (error.field_violations || error.fieldViolations || []).map((v) => `${v.field}: ${v.description}`).join('; ');
  return `${error.code || error.status || 'error'}: ${error.message || ''}${fields ? ` (${fields})` : ''}`;
}

/** Mounts the page into `container`; returns a function that unmounts it. */
export function mountModeler(container, ctx) {
  const lang = typeof ctx.language === 'function' ? ctx.language() : ctx.lang;
  const t = { ...(TEXT[lang] || TEXT.en), lang: lang === 'zh' ? 'zh' : 'en' };
  if (typeof ctx.bilingual === 'function') t.name = (text) => ctx.bilingual(text); // the shell's split
  else t.name = (text) => localName(text, t.lang);
  const root = el('div', { class: 'cf-modeler', testid: 'modeler' });
  container.replaceChildren(root);
  const id = (ctx.params && ctx.params.definition_id) || ctx.definitionId;
  const page = id ? new DefinitionPage(root, ctx, t, decodeURIComponent(id)) : null;
  if (page) page.open().catch((e) => page.fail(e));
  else listDefinitions(root, ctx, t).catch((e) => root.append(el('p', { class: 'cf-error' }, errorText(e))));
  return () => {
    if (page) page.destroy();
    root.remove();
  };
}

async function listDefinitions(root, ctx, t) {
  root.append(el('h2', {}, t.title), el('p', { class: 'cf-muted' }, t.loading));
  const answer = await ctx.api.get('/api/definitions?latest_only=true');
  const rows = (answer.definitions || []).map((d) =>
    el('tr', {
      class: 'cf-definition-row', testid: 'definition-row', 'data-definition-id': d.definition_id,
      onclick: () => ctx.navigate(`#/modeler/${encodeURIComponent(d.definition_id)}`),
    },
    el('td', {}, el('a', { href: `#/modeler/${encodeURIComponent(d.definition_id)}` }, t.name(d.name) || d.process_id)),
    el('td', {}, el('code', {}, d.process_id)),
    el('td', {}, String(d.version)),
    el('td', {}, d.resource_name || ''),
    el('td', {}, (d.deployed_at || '').replace('T', ' ').slice(0, 16)),
    el('td', {}, d.deployed_by || t.startup),
    el('td', {}, d.note || ''),
    el('td', {}, d.differs_from_repository ? el('span', { class: 'cf-badge', title: t.differs }, '≠ bpmn/') : '')));
  root.lastChild.remove();
  root.append(el('table', { class: 'cf-table cf-definitions' },
    el('thead', {}, el('tr', {}, [t.name, t.process, t.version, 'file', t.deployed, t.by, t.note, ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, rows)));
}

/** What the last deploy said, shown again on the version it opens (the page is drawn anew there). */
let lastDeploy = null;

class DefinitionPage {
  constructor(root, ctx, t, definitionId) {
    Object.assign(this, { root, ctx, t, definitionId });
    this.contents = new Map(); // resource name → current XML (edited or as deployed)
    this.active = null; // the resource name in the editor
    this.editor = null; // {kind: 'bpmn'|'dmn', modeler}
    this.problems = [];
    this.edited = new Set(); // resource names changed in the editor or imported
    this.leaving = (event) => {
      if (!this.edited.size) return;
      event.preventDefault();
      event.returnValue = '';
    };
    window.addEventListener('beforeunload', this.leaving);
  }

  fail(error) {
    this.root.append(el('p', { class: 'cf-error', testid: 'modeler-error' }, errorText(error) || String(error)));
  }

  async open() {
    const t = this.t;
    const [answer, catalogue] = await Promise.all([
      this.ctx.api.get(`/api/definitions/${encodeURIComponent(this.definitionId)}`),
      this.ctx.api.get('/api/operations').catch(() => ({ operations: [] })),
    ]);
    this.definition = answer.definition;
    this.resources = answer.resources || [];
    this.original = new Map(this.resources.map((r) => [r.name, r.content]));
    for (const r of this.resources) this.contents.set(r.name, r.content);
    this.catalogue = Array.isArray(catalogue) ? { operations: catalogue } : catalogue;
    this.decisions = this.resources.filter((r) => r.name.endsWith('.dmn')).flatMap((r) => decisionIds(r.content));
    const d = this.definition;

    this.status = el('div', { class: 'cf-status', testid: 'modeler-status', role: 'status' });
    this.problemList = el('ul', { class: 'cf-problems', testid: 'problem-list' });
    this.note = el('input', { type: 'text', class: 'cf-note', testid: 'deploy-note', placeholder: t.notePlaceholder });
    this.fileInput = el('input', { type: 'file', accept: '.bpmn,.dmn,.xml', testid: 'modeler-import-file', class: 'cf-hidden', onchange: (e) => this.importFile(e.target.files[0]) });
    const exportButton = () => el('button', { type: 'button', testid: 'modeler-export', onclick: () => this.exportActive() }, t.export);
    const header = el('div', { class: 'cf-modeler-header' },
      el('a', { href: '#/modeler', class: 'cf-back' }, `← ${t.back}`),
      el('h2', {}, `${t.name(d.name) || d.process_id} · ${t.version} ${d.version}`),
      el('span', { class: 'cf-muted' }, [d.deployed_by || t.startup, d.note].filter(Boolean).join(' · ')));
    const banner = d.differs_from_repository
      ? el('div', { class: 'cf-banner', testid: 'repository-differs' }, el('span', {}, t.differs), exportButton())
      : null;
    this.tabs = el('div', { class: 'cf-tabs', role: 'tablist' });
    const toolbar = el('div', { class: 'cf-toolbar' },
      el('button', { type: 'button', testid: 'modeler-validate', onclick: () => this.validate() }, t.validate),
      this.note,
      el('button', { type: 'button', testid: 'modeler-deploy', class: 'cf-primary', disabled: canDeploy(this.ctx) === false, onclick: () => this.deploy() }, t.deploy),
      banner ? null : exportButton(),
      el('button', { type: 'button', testid: 'modeler-import', onclick: () => this.fileInput.click() }, t.import),
      this.fileInput,
      this.compareControls());
    this.canvas = el('div', { class: 'cf-canvas', testid: 'modeler-canvas' });
    this.panel = el('div', { class: 'cf-panel', testid: 'modeler-panel' });
    this.comparePane = el('div', { class: 'cf-compare cf-hidden', testid: 'compare' });
    this.workspace = el('div', { class: 'cf-workspace' }, this.canvas, this.panel);
    this.callersLine = el('div', { class: 'cf-muted', testid: 'deploy-callers' });
    this.root.append(...[header, banner, toolbar, this.tabs, this.status, this.callersLine, this.problemList, this.workspace, this.comparePane].filter(Boolean));
    for (const r of this.resources) {
      this.tabs.append(el('button', { type: 'button', role: 'tab', class: 'cf-tab', 'data-resource': r.name, testid: 'resource-tab', onclick: () => this.show(r.name) }, r.name));
    }
    window.cfModeler = this; // the page's state, for a person debugging in the browser's console
    if (lastDeploy && lastDeploy.definitionId === this.definitionId) {
      this.say(lastDeploy.status, 'cf-good');
      this.callersLine.textContent = lastDeploy.callers;
    }
    lastDeploy = null;
    await this.show(this.resources[0].name);
  }

  compareControls() {
    const t = this.t;
    const older = el('select', { testid: 'compare-older-version' });
    const newer = el('select', { testid: 'compare-newer-version' });
    this.ctx.api.get(`/api/definitions?process_id=${encodeURIComponent(this.definition.process_id)}`).then((answer) => {
      const versions = (answer.definitions || []).filter((d) => d.process_id === this.definition.process_id).sort((a, b) => a.version - b.version);
      for (const [select, pick] of [[older, versions.length - 2], [newer, versions.length - 1]]) {
        versions.forEach((v, i) => select.append(el('option', { value: v.definition_id, selected: i === pick }, `${t.version} ${v.version}`)));
      }
    }).catch(() => {});
    return el('span', { class: 'cf-compare-controls' }, older, '→', newer,
      el('button', { type: 'button', testid: 'modeler-compare', onclick: () => this.compare(older.value, newer.value) }, t.compare));
  }

  async compare(olderId, newerId) {
    const t = this.t;
    if (!olderId || !newerId) return;
    const [a, b] = await Promise.all([olderId, newerId].map((i) => this.ctx.api.get(`/api/definitions/${encodeURIComponent(i)}`)));
    this.workspace.classList.add('cf-hidden');
    this.comparePane.classList.remove('cf-hidden');
    const drawings = el('div', { class: 'cf-compare-drawings' });
    const list = el('ul', { class: 'cf-changes', testid: 'diff-list' });
    this.comparePane.replaceChildren(
      el('div', { class: 'cf-toolbar' }, el('strong', {}, t.changes),
        el('button', { type: 'button', testid: 'compare-close', onclick: () => this.closeCompare() }, t.close)),
      list, drawings);
    const { rows, viewers } = await showComparison(drawings, a.resources[0].content, b.resources[0].content,
      [`${t.version} ${a.definition.version}`, `${t.version} ${b.definition.version}`]);
    this.compareViewers = viewers;
    if (!rows.length) list.append(el('li', {}, t.none));
    for (const row of rows) {
      list.append(el('li', { class: `cf-change cf-change-${row.kind}`, testid: 'diff-row', 'data-element-id': row.id, 'data-kind': row.kind },
        `${row.kind}: ${row.type} `, el('code', {}, row.id), row.attrs.length ? ` — ${row.attrs.join('; ')}` : ''));
    }
  }

  closeCompare() {
    for (const v of this.compareViewers || []) v.destroy();
    this.compareViewers = null;
    this.comparePane.classList.add('cf-hidden');
    this.comparePane.replaceChildren();
    this.workspace.classList.remove('cf-hidden');
  }

  /** Keeps the editor's XML of the active resource. */
  async saveActive() {
    if (!this.editor) return;
    if (!this.edited.has(this.active)) return; // unedited: keep the deployed text as it is
    const { xml } = await this.editor.modeler.saveXML({ format: true });
    this.contents.set(this.active, xml);
  }

  /** Marks the open file edited (its tab shows •; leaving the page asks first). */
  markEdited() {
    if (this.edited.has(this.active)) return;
    this.edited.add(this.active);
    for (const tab of this.tabs.children) tab.classList.toggle('cf-edited', this.edited.has(tab.dataset.resource));
  }

  async show(name) {
    await this.saveActive();
    if (this.editor) this.editor.modeler.destroy();
    this.canvas.replaceChildren();
    this.panel.replaceChildren();
    this.active = name;
    for (const tab of this.tabs.children) tab.classList.toggle('cf-active', tab.dataset.resource === name);
    const xml = this.contents.get(name);
    if (name.endsWith('.dmn')) {
      const modeler = new DmnModeler({ container: this.canvas, common: { keyboard: { bindTo: this.canvas } } });
      this.editor = { kind: 'dmn', modeler };
      modeler.on('views.changed', () => {
        const viewer = modeler.getActiveViewer();
        if (viewer && !viewer.cfWatched) {
          viewer.cfWatched = true;
          viewer.on('elements.changed', () => this.markEdited());
        }
      });
      const { warnings } = await modeler.importXML(xml);
      const table = modeler.getViews().find((v) => v.type === 'decisionTable');
      if (table) await modeler.open(table);
      this.say(warnings.length ? warnings.map((w) => w.message).join('; ') : '');
      this.panel.classList.add('cf-hidden');
      return;
    }
    this.panel.classList.remove('cf-hidden');
    const modeler = new BpmnModeler({
      container: this.canvas,
      propertiesPanel: { parent: this.panel },
      additionalModules: [
        BpmnPropertiesPanelModule,
        BpmnPropertiesProviderModule,
        CamundaPlatformPropertiesProviderModule,
        ConsultflowPropertiesProviderModule,
        { cfCatalogue: ['value', this.catalogue], cfDecisions: ['value', this.decisions] },
      ],
      moddleExtensions: { camunda: camundaModdle, spiffworkflow: spiffModdle },
    });
    this.editor = { kind: 'bpmn', modeler };
    modeler.on('commandStack.changed', () => this.markEdited());
    const { warnings } = await modeler.importXML(xml);
    modeler.get('canvas').zoom('fit-viewport');
    this.say(warnings.length ? warnings.map((w) => w.message).join('; ') : '');
    this.drawProblems();
  }

  say(text, kind = '') {
    this.status.textContent = text;
    this.status.className = `cf-status ${kind}`;
  }

  /** Every resource's XML with the edited ones in place. */
  async currentResources() {
    await this.saveActive();
    return this.resources.map((r) => ({ name: r.name, content: this.contents.get(r.name) }));
  }

  async validate() {
    const resources = await this.currentResources();
    const problems = [];
    this.callersLine.textContent = '';
    for (const resource of resources.filter((r) => r.name.endsWith('.bpmn'))) {
      let definitions;
      if (this.editor && this.editor.kind === 'bpmn' && resource.name === this.active) {
        definitions = this.editor.modeler.getDefinitions();
      } else {
        try {
          ({ rootElement: definitions } = await lintModdle().fromXML(resource.content));
        } catch (error) {
          problems.push({ resource_name: resource.name, element_id: '', rule: 'parse', message: String(error.message || error), category: 'error' });
          continue;
        }
      }
      for (const p of await lintDefinitions(definitions)) problems.push({ ...p, resource_name: resource.name });
    }
    try {
      const answer = await this.ctx.api.post('/api/deployments/validate', { resources });
      for (const p of answer.problems || []) problems.push({ ...p, category: 'error' });
      const callers = answer.callers || [];
      if (callers.length) this.callersLine.textContent = this.t.alsoCallers(callers.join(', '));
    } catch (error) {
      problems.push({ resource_name: '', element_id: '', rule: 'api', message: errorText(error), category: 'error' });
    }
    this.problems = problems;
    this.listProblems();
    this.drawProblems();
    const blocking = problems.filter((p) => p.category !== 'warn');
    this.say(problems.length ? `${this.t.problems}: ${problems.length}` : this.t.noProblems, blocking.length ? 'cf-bad' : 'cf-good');
    return blocking;
  }

  listProblems() {
    this.problemList.replaceChildren(...this.problems.map((p) =>
      el('li', {
        class: `cf-problem cf-problem-${p.category || 'error'}`, testid: 'problem-row', 'data-element-id': p.element_id || '',
        'data-resource': p.resource_name || '', 'data-rule': p.rule || '', onclick: () => this.selectProblem(p),
      }, el('code', {}, p.resource_name || ''), ' ', p.element_id ? el('code', {}, p.element_id) : '', ` ${p.message} `, el('span', { class: 'cf-muted' }, p.rule || ''))));
  }

  async selectProblem(problem) {
    if (problem.resource_name && problem.resource_name !== this.active && this.contents.has(problem.resource_name)) await this.show(problem.resource_name);
    if (!this.editor || this.editor.kind !== 'bpmn' || !problem.element_id) return;
    const registry = this.editor.modeler.get('elementRegistry');
    const element = registry.get(problem.element_id);
    if (!element) return;
    this.editor.modeler.get('selection').select(element);
    this.editor.modeler.get('canvas').scrollToElement(element);
  }

  /** Markers and an overlay on each element at fault in the open diagram. */
  drawProblems() {
    if (!this.editor || this.editor.kind !== 'bpmn') return;
    const modeler = this.editor.modeler;
    const registry = modeler.get('elementRegistry');
    const canvas = modeler.get('canvas');
    const overlays = modeler.get('overlays');
    overlays.remove({ type: 'cf-problem' });
    for (const element of registry.getAll()) canvas.removeMarker(element, 'cf-problem');
    const counts = new Map();
    for (const p of this.problems) {
      if (p.resource_name && p.resource_name !== this.active) continue;
      if (!p.element_id || !registry.get(p.element_id)) continue;
      counts.set(p.element_id, [...(counts.get(p.element_id) || []), p.message]);
    }
    for (const [elementId, messages] of counts) {
      canvas.addMarker(elementId, 'cf-problem');
      overlays.add(elementId, 'cf-problem', {
        position: { top: -12, right: 12 },
        html: el('div', { class: 'cf-problem-badge', title: messages.join('\n'), 'data-element-id': elementId }, String(messages.length)),
      });
    }
  }

  async deploy() {
    const t = this.t;
    const blocking = await this.validate();
    if (blocking.length) {
      this.say(t.refused, 'cf-bad');
      return;
    }
    try {
      const answer = await this.ctx.api.post('/api/deployments', { resources: await this.currentResources(), note: this.note.value.trim() });
      const mine = (answer.definitions || []).find((d) => d.process_id === this.definition.process_id);
      const made = (answer.definitions || []).map((d) => `${d.process_id} v${d.version}`).join(', ');
      this.say(`${t.deployed_ok}: ${made || t.unchanged}`, 'cf-good');
      const callers = (answer.definitions || []).filter((d) => (answer.callers || []).includes(d.process_id));
      this.callersLine.textContent = callers.length ? t.madeCallers(callers.map((d) => `${d.process_id} v${d.version}`).join(', ')) : '';
      if (mine) lastDeploy = { definitionId: mine.definition_id, status: this.status.textContent, callers: this.callersLine.textContent };
      if (mine) this.ctx.navigate(`#/modeler/${encodeURIComponent(mine.definition_id)}`);
    } catch (error) {
      const problems = (error.field_violations || error.fieldViolations || []).map((v) => ({ resource_name: '', element_id: '', rule: v.field, message: v.description, category: 'error' }));
      this.problems = problems;
      this.listProblems();
      this.say(errorText(error), 'cf-bad');
    }
  }

  async exportActive() {
    await this.saveActive();
    const blob = new Blob([this.contents.get(this.active)], { type: 'application/xml' });
    const link = el('a', { href: URL.createObjectURL(blob), download: this.active });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }

  /** A file from disk replaces the resource of the same name, else the open one. */
  async importFile(file) {
    if (!file) return;
    const text = await file.text();
    const target = this.contents.has(file.name) ? file.name : this.active;
    await this.saveActive();
    this.contents.set(target, text);
    this.edited.add(target);
    const previous = this.editor;
    this.editor = null; // the file replaces what the editor holds: do not save the editor over it
    if (previous) previous.modeler.destroy();
    await this.show(target);
    this.fileInput.value = '';
    this.say(`${this.t.imported}: ${file.name} → ${target}`);
  }

  destroy() {
    window.removeEventListener('beforeunload', this.leaving);
    if (this.editor) this.editor.modeler.destroy();
    this.closeCompare();
    if (window.cfModeler === this) delete window.cfModeler;
  }
}

let moddle = null;
/** A moddle with our extensions, to lint the files not open in the editor. */
function lintModdle() {
  moddle ??= new BpmnModdle({ camunda: camundaModdle, spiffworkflow: spiffModdle });
  return moddle;
}

function decisionIds(xml) {
  const doc = new DOMParser().parseFromString(xml, 'application/xml');
  return [...doc.getElementsByTagNameNS('*', 'decision')].map((d) => d.getAttribute('id')).filter(Boolean);
}
