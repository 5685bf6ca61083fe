// The console's shell: who is signed in (/api/me), the top bar (whoami, the pages this person may use,
// the language switch) and the hash router that mounts one page at a time.
//
// A page is {mount(container, ctx, params)} returning {update?(params), destroy?()}. The modeler page is
// mountModeler(container, ctx) from ./modeler/index.js. `ctx` carries:
//   me, can                 the /api/me body and its `can` flags (model, deploy, tasks, operate, cancel,
//                           retry, publish, start)
//   api                     {get(path, query), post(path, body), request, segment}: JSON, CSRF, ApiError
//   ApiError                the error type (status, code, message, fieldViolations)
//   t(key, params)          the console's own phrases; bilingual(text) the chosen part of "中文 English"
//   language()              "zh" or "en"; onLanguageChange(fn) hears switches (removed when the page goes)
//   onLive(refresh, match)  refresh on live status events (debounced; removed when the page goes)
//   navigate(hash)          go to a route, e.g. navigate('#/operate/instances/ID')
//   notify(text, kind)      a short message in the status area ("info" | "error")
//   definitionId            for #/modeler/<definition_id>, else ""; also as params.definition_id
//   lang                    the chosen language now ("zh" | "en"), read when needed
import './styles/console.css';
import { ApiError, api, onUnauthenticated, setCsrfToken } from './api.js';
import { h, replace } from './dom.js';
import { bilingual, language, onLanguageChange, setLanguage, t } from './i18n.js';
import { onLive, startLive, stopLive } from './live.js';
import { operatePage } from './pages/operate.js';
import { tasksPage } from './pages/tasks.js';

const root = document.getElementById('app');
let me = null;
let current = null; // {key, instance, container, disposers}
const statusArea = h('div', { class: 'toasts', role: 'status', 'aria-live': 'polite' });

const modelerPage = {
  async mount(container, ctx) {
    const { mountModeler } = await import('./modeler/index.js');
    const mounted = await mountModeler(container, ctx);
    // a function that unmounts it, or {destroy, update(parts)} to follow #/modeler/<id> without a remount
    return typeof mounted === 'function' ? { destroy: mounted } : (mounted ?? null);
  },
};

const PAGES = {
  tasks: { allowed: (can) => can.tasks, page: tasksPage, nav: 'navTasks' },
  operate: { allowed: (can) => can.operate, page: operatePage, nav: 'navOperate' },
  modeler: { allowed: (can) => can.model, page: modelerPage, nav: 'navModeler' },
};

/** "#/operate/instances/abc" → {key: "operate", parts: ["instances", "abc"]}. */
export function parseRoute(hash) {
  const path = String(hash ?? '').replace(/^#\/?/, '');
  const [key = '', ...parts] = path.split('/').filter(Boolean);
  return { key, parts: parts.map((p) => decodeURIComponent(p)) };
}

function navigate(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

function notify(text, kind = 'info') {
  const toast = h('div', { class: ['toast', kind], role: kind === 'error' ? 'alert' : null }, text);
  statusArea.append(toast);
  setTimeout(() => toast.remove(), kind === 'error' ? 8000 : 4000);
}

function languageSwitch() {
  const choice = (lang, label, testid) =>
    h(
      'button',
      {
        type: 'button',
        class: ['lang', language() === lang && 'on'],
        'data-testid': testid,
        lang: lang === 'zh' ? 'zh-Hant' : 'en',
        'aria-pressed': String(language() === lang),
        onclick: () => {
          if (language() !== lang) setLanguage(lang);
        },
      },
      label,
    );
  return h(
    'div',
    { class: 'langs', role: 'group', 'aria-label': t('language') },
    choice('zh', '中文', 'lang-zh'),
    choice('en', 'English', 'lang-en'),
  );
}

function topBar(activeKey) {
  const nav = h('nav', { 'aria-label': t('appName') });
  if (me) {
    for (const [key, entry] of Object.entries(PAGES)) {
      if (!entry.allowed(me.can ?? {})) continue;
      nav.append(
        h(
          'a',
          {
            href: `#/${key}`,
            'data-testid': `nav-${key}`,
            class: key === activeKey ? 'active' : null,
            'aria-current': key === activeKey ? 'page' : null,
          },
          t(entry.nav),
        ),
      );
    }
  }
  return h(
    'header',
    { class: 'topbar' },
    h('a', { class: 'brand', href: '#/' }, t('appName')),
    nav,
    h('div', { class: 'spacer' }),
    h('span', { class: 'live-dot', title: t('live'), 'aria-hidden': 'true' }),
    languageSwitch(),
    me &&
      h(
        'span',
        { class: 'whoami', 'data-testid': 'whoami', title: (me.roles ?? []).join(', ') },
        me.name,
      ),
    me && h('button', { type: 'button', class: 'link', onclick: signOut }, t('signOut')),
  );
}

async function signOut() {
  try {
    await fetch('/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-CSRF-Token': me?.csrf_token ?? '' },
    });
  } finally {
    stopLive();
    location.hash = '';
    location.reload();
  }
}

function signInPage() {
  replace(
    root,
    topBar(''),
    h(
      'main',
      { class: 'signin', 'data-testid': 'signin', id: 'main', tabindex: '-1' },
      h('h1', {}, t('signInTitle')),
      h('p', {}, t('signInLocal'), ' ', h('code', {}, 'consultflow console --as NAME')),
      h('p', {}, h('a', { class: 'button primary', href: '/login', 'data-testid': 'signin-oidc' }, t('signInOrg'))),
    ),
    statusArea,
  );
}

function destroyCurrent() {
  if (!current) return;
  for (const dispose of current.disposers) dispose();
  current.instance?.destroy?.();
  current = null;
}

function pageContext(disposers, definitionId = '') {
  return {
    me,
    can: me.can ?? {},
    api,
    ApiError,
    t,
    bilingual: (text) => bilingual(text),
    language,
    onLanguageChange(fn) {
      const stop = onLanguageChange(fn);
      disposers.push(stop);
      return stop;
    },
    onLive(refresh, matches) {
      const stop = onLive(refresh, matches);
      disposers.push(stop);
      return stop;
    },
    navigate,
    notify,
    definitionId,
    params: { definition_id: definitionId },
    get lang() {
      return language();
    },
  };
}

async function route() {
  if (!me) return;
  const { key, parts } = parseRoute(location.hash);
  const allowed = Object.keys(PAGES).filter((k) => PAGES[k].allowed(me.can ?? {}));
  if (!key) {
    if (allowed.length) location.replace(`#/${allowed[0]}`);
    else renderMessage('', t('nothingAllowed'));
    return;
  }
  const entry = PAGES[key];
  if (!entry) return renderMessage(key, t('notFound'));
  if (!allowed.includes(key)) return renderMessage(key, t('errorForbidden'), 'not-allowed');
  if (current?.key === key && current.instance?.update) {
    root.querySelector('header.topbar')?.replaceWith(topBar(key));
    return current.instance.update(parts);
  }
  if (current?.key === 'modeler' && key === 'modeler' && current.definitionId === (parts[0] ?? '')) return;
  destroyCurrent();
  const container = h('main', { class: ['page', `page-${key}`], id: 'main', tabindex: '-1' });
  replace(root, topBar(key), container, statusArea);
  const disposers = [];
  const definitionId = key === 'modeler' ? (parts[0] ?? '') : '';
  current = { key, container, disposers, instance: null, definitionId };
  const mine = current;
  try {
    const instance = await entry.page.mount(container, pageContext(disposers, definitionId), parts);
    if (current === mine) mine.instance = instance ?? null;
    else instance?.destroy?.();
  } catch (error) {
    replace(container, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
  }
}

function renderMessage(key, text, testid = null) {
  destroyCurrent();
  const notice = h('p', { class: 'notice', 'data-testid': testid }, text);
  replace(root, topBar(key), h('main', { class: 'page', id: 'main', tabindex: '-1' }, notice), statusArea);
}

async function start() {
  document.documentElement.lang = language() === 'zh' ? 'zh-Hant' : 'en';
  // the skip link moves the focus, not the hash (the hash is the route)
  document.querySelector('a.skip')?.addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main')?.focus();
  });
  replace(root, h('p', { class: 'loading' }, t('loading')));
  onLanguageChange(() => {
    if (!me) return signInPage();
    if (!current) return route();
    root.querySelector('header.topbar')?.replaceWith(topBar(current.key));
    if (current.key !== 'modeler') {
      destroyCurrent();
      route();
    }
  });
  try {
    me = await api.get('/api/me');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return signInPage();
    replace(root, h('p', { class: 'error', role: 'alert' }, t('errorLoading', { message: error.message })));
    return;
  }
  setCsrfToken(me.csrf_token);
  onUnauthenticated(() => {
    me = null;
    destroyCurrent();
    stopLive();
    signInPage();
    notify(t('sessionExpired'), 'error');
  });
  startLive((connected) => document.body.classList.toggle('offline', !connected));
  window.addEventListener('hashchange', route);
  await route();
}

start();
