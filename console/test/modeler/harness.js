// A page holding only the modeler, for tests/console/test_modeler_panel.py: the ctx the console's shell
// would give (a fetch wrapper for /api, the person, the language, navigation, the route's definition id).
import { mountModeler } from '../../src/modeler/index.js';

async function call(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { 'Content-Type': 'application/json', 'X-CSRF-Token': 'test' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw { status: response.status, ...(data.error || {}) };
  return data;
}

const api = { get: (path) => call('GET', path), post: (path, body) => call('POST', path, body) };
let unmount = null;

function route() {
  if (unmount) unmount();
  const query = new URLSearchParams(window.location.search);
  const [, , id] = window.location.hash.replace(/^#\/?/, '#/').split('/');
  const ctx = {
    api,
    me: { name: 'ana', roles: ['analyst'], can: { model: true, deploy: query.get('deploy') !== 'no' } },
    lang: query.get('lang') || 'en',
    navigate: (hash) => { window.location.hash = hash; },
    params: { definition_id: id },
  };
  unmount = mountModeler(document.getElementById('app'), ctx);
}

window.addEventListener('hashchange', route);
route();
