// The task list's order and urgency, without the DOM.

/** "overdue", "due" (has a due date, not yet passed) or "none". */
export function urgency(task, now = Date.now()) {
  if (!task.due_at) return 'none';
  return Date.parse(task.due_at) < now ? 'overdue' : 'due';
}

/** Overdue first (most overdue on top), then by due date, then tasks without one, oldest first. */
export function sortTasks(tasks, now = Date.now()) {
  const rank = { overdue: 0, due: 1, none: 2 };
  return [...tasks].sort((a, b) => {
    const byRank = rank[urgency(a, now)] - rank[urgency(b, now)];
    if (byRank) return byRank;
    const dueA = a.due_at ? Date.parse(a.due_at) : 0;
    const dueB = b.due_at ? Date.parse(b.due_at) : 0;
    if (dueA !== dueB) return dueA - dueB;
    const createdA = a.created_at ? Date.parse(a.created_at) : 0;
    const createdB = b.created_at ? Date.parse(b.created_at) : 0;
    return createdA - createdB || String(a.user_task_id).localeCompare(String(b.user_task_id));
  });
}

// Variables about the client and the engagement, shown first and apart from the decisions.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const CLIENT_KEY = /^(client|contact|inquiry|company|customer|engagement_id$|industry|channel$|question$)/;

/** Parses a variables_json string into an object ({} for anything that is not a JSON object). */
export function parseVariables(json) {
  if (!json) return {};
  try {
    const value = JSON.parse(json);
    return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
  } catch {
    return {};
  }
}

/**
 * The engagement's context for a task: {client: [[key, value]], decisions: [[key, value]]}, each sorted
 * by key. Internal variables (leading "_"), references between records (UUIDs, which say nothing to a
 * reader) and the task's own form fields (shown in its form) are left out.
 */
export function engagementContext(variables, ownFields = []) {
  const own = new Set(ownFields);
  const client = [];
  const decisions = [];
  for (const [key, value] of Object.entries(variables ?? {})) {
    if (key.startsWith('_') || own.has(key) || value === null || value === '') continue;
    if (typeof value === 'string' && UUID.test(value)) continue;
    (CLIENT_KEY.test(key) ? client : decisions).push([key, value]);
  }
  const byKey = (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return { client: client.sort(byKey), decisions: decisions.sort(byKey) };
}

// Names of the variables every engagement carries (the inquiry's), in both languages; others read as
// their words ("take_on" → "Take on").
const KEY_NAMES = {
  channel: { zh: '來源渠道', en: 'Channel' },
  client_name: { zh: '客戶名稱', en: 'Client' },
  client_industry: { zh: '所屬行業', en: 'Industry' },
  contact_name: { zh: '聯繫人', en: 'Contact' },
  contact_email: { zh: '電子郵件', en: 'E-mail' },
  contact_phone: { zh: '聯繫電話', en: 'Phone' },
  engagement_id: { zh: '項目編號', en: 'Engagement' },
  question: { zh: '諮詢問題', en: 'Question' },
};

/** "client_name" → "Client name": a variable's name for people, in `lang` where it is known. */
export function humanKey(key, lang = 'en') {
  const known = KEY_NAMES[key];
  if (known) return known[lang === 'zh' ? 'zh' : 'en'];
  const words = String(key).replace(/[_.-]+/g, ' ').trim();
  return words ? words[0].toUpperCase() + words.slice(1) : String(key);
}
