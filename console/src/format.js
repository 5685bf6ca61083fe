// How times, states and values read on screen.
import { bilingual, language, t } from './i18n.js';

/** A timestamp as the reader's local date and time ("" for none). */
export function when(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(language() === 'zh' ? 'zh-Hant-TW' : 'en-GB', {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
  });
}

/** "in 3 days" / "2 hours ago": how far a timestamp is from now. */
export function relative(iso, now = Date.now()) {
  if (!iso) return '';
  const seconds = (Date.parse(iso) - now) / 1000;
  if (Number.isNaN(seconds)) return '';
  const units = [
    ['year', 31_536_000],
    ['month', 2_592_000],
    ['week', 604_800],
    ['day', 86_400],
    ['hour', 3_600],
    ['minute', 60],
  ];
  const format = new Intl.RelativeTimeFormat(language() === 'zh' ? 'zh-Hant' : 'en', { numeric: 'auto' });
  for (const [unit, size] of units) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return format.format(Math.round(seconds), 'second');
}

/** An instance's state from the API ("INSTANCE_STATE_ACTIVE" or "ACTIVE") as its short name. */
export function stateName(state) {
  return String(state ?? '').replace(/^INSTANCE_STATE_/, '') || 'UNKNOWN';
}

/** A state's words in the chosen language. */
export function stateLabel(state) {
  const name = stateName(state);
  const key = `state${name}`;
  const text = t(key);
  return text === key ? name.toLowerCase() : text;
}

/** A variable's value for reading: yes/no, numbers, text; lists and objects in short. */
export function readable(value) {
  if (value === true) return t('yes');
  if (value === false) return t('no');
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(readable).join(', ');
  if (typeof value === 'object') {
    return Object.entries(value)
      .map(([k, v]) => `${k}: ${readable(v)}`)
      .join('; ');
  }
  return typeof value === 'string' ? bilingual(value) : String(value);
}

/** Parses JSON text, null when it is not valid. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
