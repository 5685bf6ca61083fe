// User task forms without the DOM: the checks the orchestrator applies (services/consultflow/orchestrator/
// forms.py, validate_form), run in the browser first so a person sees every mistake at once. The server
// stays the authority: its field violations are shown the same way.

// Python's int() and Decimal() accept surrounding spaces and "_" between digits; so do these.
const DIGITS = String.raw`\d+(?:_\d+)*`;
const WHOLE = new RegExp(`^[+-]?${DIGITS}$`);
const DECIMAL = new RegExp(`^[+-]?(?:${DIGITS}(?:\\.(?:${DIGITS})?)?|\\.${DIGITS})(?:[eE][+-]?${DIGITS})?$`);
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const MOMENT = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?$/;
const TRUE = new Set(['true', 'yes', '1']);
const FALSE = new Set(['false', 'no', '0']);
export const MAX_TEXT = 10_000;

function realDay(year, month, day) {
  const d = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  return d.getUTCFullYear() === Number(year) && d.getUTCMonth() === Number(month) - 1 && d.getUTCDate() === Number(day);
}

/** Whether `text` is a date (YYYY-MM-DD) or an ISO date-time the orchestrator reads. */
export function isDate(text) {
  const day = DAY.exec(text);
  if (day) return realDay(day[1], day[2], day[3]);
  const moment = MOMENT.exec(text);
  if (!moment) return false;
  const [, y, mo, d, hh, mm, ss = '0'] = moment;
  return realDay(y, mo, d) && Number(hh) < 24 && Number(mm) < 60 && Number(ss) < 60;
}

/** Whether a form value counts as not given (the orchestrator's "None or empty string"). */
export function isEmpty(raw) {
  return raw === undefined || raw === null || raw === '';
}

/**
 * Why one field's value would be refused, as an i18n key ("errRequired", …), or null when it is fine.
 * `field` is a FormField as the API gives it: {id, label, type, required, values: [{id, name}], default_value}.
 */
export function fieldProblem(field, raw) {
  if (isEmpty(raw)) return field.required ? 'errRequired' : null;
  const text = typeof raw === 'string' ? raw.trim() : raw;
  switch (field.type) {
    case 'enum':
      return (field.values ?? []).some((v) => v.id === String(raw)) ? null : 'errEnum';
    case 'boolean':
      if (typeof raw === 'boolean') return null;
      return TRUE.has(String(text).toLowerCase()) || FALSE.has(String(text).toLowerCase()) ? null : 'errBoolean';
    case 'long':
      return typeof raw !== 'boolean' && WHOLE.test(String(text)) ? null : 'errWhole';
    case 'decimal':
      return DECIMAL.test(String(text)) ? null : 'errDecimal';
    case 'date':
      return isDate(String(raw)) ? null : 'errDate';
    default:
      if (typeof raw !== 'string') return 'errText';
      return raw.length > MAX_TEXT ? 'errTooLong' : null;
  }
}

/** Every field's problem: [{field, key}] in the form's order (empty when the form may be sent). */
export function formProblems(fields, values) {
  const problems = [];
  for (const field of fields ?? []) {
    const key = fieldProblem(field, values[field.id]);
    if (key) problems.push({ field: field.id, key });
  }
  return problems;
}

/**
 * The JSON the form sends: empty optional fields are left out (the orchestrator applies their defaults),
 * whole numbers go as numbers when they fit exactly, everything else as entered (trimmed for numbers).
 */
export function formVariables(fields, values) {
  const out = {};
  for (const field of fields ?? []) {
    const raw = values[field.id];
    if (isEmpty(raw)) continue;
    if (field.type === 'long') {
      const text = String(raw).trim().replaceAll('_', '');
      const number = Number(text);
      out[field.id] = Number.isSafeInteger(number) ? number : text;
    } else if (field.type === 'decimal') {
      out[field.id] = String(raw).trim();
    } else {
      out[field.id] = raw;
    }
  }
  return out;
}

/** Which input a field gets: "checkbox", "select", "textarea", "date", "datetime-local" or "text". */
export function inputKind(field) {
  switch (field.type) {
    case 'boolean':
      return 'checkbox';
    case 'enum':
      return 'select';
    case 'date':
      return /T/.test(field.default_value ?? '') || /time|時間/i.test(field.label ?? '') ? 'datetime-local' : 'date';
    case 'string':
    case undefined:
    case '':
      return /per line|one per|每行|一行/i.test(field.label ?? '') ? 'textarea' : 'text';
    default:
      return 'text';
  }
}
