// The form checks match the orchestrator's validate_form (services/consultflow/orchestrator/forms.py).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fieldProblem, formProblems, formVariables, inputKind, isDate } from '../src/forms.js';

const field = (type, extra = {}) => ({ id: 'x', label: 'X', type, ...extra });

test('a required field left empty is refused; an optional one is fine', () => {
  for (const type of ['string', 'long', 'decimal', 'date', 'enum', 'boolean']) {
    assert.equal(fieldProblem(field(type, { required: true }), ''), 'errRequired', type);
    assert.equal(fieldProblem(field(type, { required: true }), undefined), 'errRequired', type);
    assert.equal(fieldProblem(field(type), ''), null, type);
  }
  // false is a value, not an empty one (a checkbox left clear)
  assert.equal(fieldProblem(field('boolean', { required: true }), false), null);
});

test('whole numbers as Python int() reads them', () => {
  for (const ok of ['0', '42', '-7', '+3', ' 12 ', '1_000']) assert.equal(fieldProblem(field('long'), ok), null, ok);
  for (const bad of ['1.5', 'abc', '1e3', '1__0', '_1', '--1']) assert.equal(fieldProblem(field('long'), bad), 'errWhole', bad);
  assert.equal(fieldProblem(field('long'), true), 'errWhole');
});

test('decimals as Python Decimal() reads them, finite only', () => {
  for (const ok of ['0', '12.5', '-0.25', '.5', '5.', '1e3', '2E-2', ' 3.0 ']) assert.equal(fieldProblem(field('decimal'), ok), null, ok);
  for (const bad of ['abc', '1,5', 'NaN', 'Infinity', '1.2.3', '']) {
    assert.equal(fieldProblem(field('decimal', { required: bad === '' }), bad), bad === '' ? 'errRequired' : 'errDecimal', bad);
  }
});

test('dates: a day or an ISO date-time, real days only', () => {
  for (const ok of ['2026-12-06', '2024-02-29', '2026-12-06T10:30', '2026-12-06T10:30:00Z', '2026-12-06T10:30:00+08:00', '2026-12-06 10:30']) {
    assert.ok(isDate(ok), ok);
  }
  for (const bad of ['2026-13-01', '2025-02-29', '06/12/2026', 'tomorrow', '2026-12-06T25:00']) assert.ok(!isDate(bad), bad);
  assert.equal(fieldProblem(field('date'), 'soon'), 'errDate');
});

test('enums accept only their values', () => {
  const choice = field('enum', { values: [{ id: 'phone', name: '電話 Phone' }, { id: 'visit', name: '面談 Visit' }] });
  assert.equal(fieldProblem(choice, 'phone'), null);
  assert.equal(fieldProblem(choice, 'Phone'), 'errEnum');
});

test('booleans: true/false and yes/no/1/0 as text', () => {
  for (const ok of [true, false, 'true', 'No', '1', '0']) assert.equal(fieldProblem(field('boolean'), ok), null, String(ok));
  assert.equal(fieldProblem(field('boolean'), 'maybe'), 'errBoolean');
});

test('text at most 10000 characters', () => {
  assert.equal(fieldProblem(field('string'), 'a'.repeat(10_000)), null);
  assert.equal(fieldProblem(field('string'), 'a'.repeat(10_001)), 'errTooLong');
});

test('every problem of a form at once, in its order', () => {
  const fields = [field('string', { id: 'a', required: true }), field('long', { id: 'b' }), field('string', { id: 'c' })];
  assert.deepEqual(formProblems(fields, { a: '', b: 'x', c: 'ok' }), [
    { field: 'a', key: 'errRequired' },
    { field: 'b', key: 'errWhole' },
  ]);
  assert.deepEqual(formProblems(fields, { a: 'y', b: '3' }), []);
});

test('the values sent: empty optional fields left out, whole numbers as numbers', () => {
  const fields = [field('string', { id: 'a' }), field('long', { id: 'b' }), field('decimal', { id: 'c' }), field('boolean', { id: 'd' })];
  assert.deepEqual(formVariables(fields, { a: '', b: ' 1_000 ', c: ' 2.50 ', d: false }), { b: 1000, c: '2.50', d: false });
  assert.deepEqual(formVariables(fields, { b: '123456789012345678901' }), { b: '123456789012345678901' });
});

test('inputs: checkbox for booleans, a list for enums, a text area for one-per-line text', () => {
  assert.equal(inputKind(field('boolean')), 'checkbox');
  assert.equal(inputKind(field('enum')), 'select');
  assert.equal(inputKind(field('string', { label: '預期成果 Expected results (one per line)' })), 'textarea');
  assert.equal(inputKind(field('string', { label: '聯繫電話 Phone' })), 'text');
  assert.equal(inputKind(field('date', { label: '整改期限 Deadline' })), 'date');
  assert.equal(inputKind(field('date', { label: '約定交付時間 Agreed delivery time' })), 'datetime-local');
});
