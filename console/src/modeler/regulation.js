// The regulation's marks in an element's documentation, in the form services/consultflow/traceability.py
// reads: the first non-empty line begins with clause tags `[2.2.2][6.1.1] Title — text`, and each line
// `[assumption] …` states a rule the regulation does not. Each edit rewrites only its own part and keeps every
// other line as written.

const TAGS = /^((?:\[\d+(?:\.\d+)*\])+)\s*/;
const ASSUMPTION = '[assumption]';

function firstLineIndex(lines) {
  return lines.findIndex((line) => line.trim() && !line.trim().startsWith(ASSUMPTION));
}

/** The clause ids the documentation's first line is tagged with. */
export function clausesOf(text) {
  const lines = (text || '').split('\n');
  const index = firstLineIndex(lines);
  if (index < 0) return [];
  const match = TAGS.exec(lines[index].trim());
  return match ? [...match[1].matchAll(/\[(\d+(?:\.\d+)*)\]/g)].map((m) => m[1]) : [];
}

/** The `[assumption]` lines' texts, in order. */
export function assumptionsOf(text) {
  return (text || '')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith(ASSUMPTION))
    .map((line) => line.slice(ASSUMPTION.length).trim());
}

/** The documentation with its first line tagged with `clauses` instead. */
export function withClauses(text, clauses) {
  const lines = (text || '').split('\n');
  const tags = clauses.map((c) => `[${c}]`).join('');
  let index = firstLineIndex(lines);
  if (index < 0) {
    if (!tags) return text || '';
    if (!text) return tags;
    lines.unshift('');
    index = 0;
  }
  const untagged = lines[index].trim().replace(TAGS, '');
  lines[index] = tags && untagged ? `${tags} ${untagged}` : tags || untagged;
  return lines.join('\n');
}

/** The documentation with its `[assumption]` lines replaced by `assumptions`, in place; extra ones appended. */
export function withAssumptions(text, assumptions) {
  const lines = text ? text.split('\n') : [];
  const wanted = assumptions.map((a) => a.trim()).filter(Boolean);
  const out = [];
  let next = 0;
  for (const line of lines) {
    if (line.trim().startsWith(ASSUMPTION)) {
      if (next < wanted.length) out.push(`${ASSUMPTION} ${wanted[next++]}`);
    } else {
      out.push(line);
    }
  }
  while (next < wanted.length) out.push(`${ASSUMPTION} ${wanted[next++]}`);
  return out.join('\n');
}

/** Clause ids from what an analyst typed ("2.2.2, 6.1.1" or "[2.2.2][6.1.1]"); null when one is not a clause id. */
export function readClauseIds(typed) {
  const parts = (typed || '').split(/[\s,;[\]]+/).filter(Boolean);
  return parts.every((p) => /^\d+(?:\.\d+)*$/.test(p)) ? parts : null;
}
