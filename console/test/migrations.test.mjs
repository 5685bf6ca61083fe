// The migration plan as the migrations page draws it, and what the instance page says of a migration.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { enumTail, planMarks } from '../src/pages/migrations.js';
import { isMigrationEvent, migratedFrom } from '../src/pages/instance.js';

const source = new Set(['start', 'review', 'notify', 'end']);
const target = new Set(['start', 'triage', 'check', 'notify', 'end']);

test('same ids map, a wait the target lacks is a problem, elements only in the target are new', () => {
  const marks = planMarks(source, target, [], new Map([['review', 2], ['notify', 1]]));
  assert.deepEqual(Object.fromEntries(marks.source), { start: 'mapped', review: 'problem', notify: 'mapped', end: 'mapped' });
  assert.deepEqual(Object.fromEntries(marks.target), { start: 'mapped', triage: 'new', check: 'new', notify: 'mapped', end: 'mapped' });
});

test('an element nobody waits at and the target lacks is left unmarked', () => {
  const marks = planMarks(source, target, [], new Map());
  assert.equal(marks.source.has('review'), false);
});

test('a mapping marks both its ends as mapped by hand, over the ids', () => {
  const mappings = [{ source_element_id: 'review', target_element_id: 'check', restart: false }];
  const marks = planMarks(source, target, mappings, new Map([['review', 2]]));
  assert.equal(marks.source.get('review'), 'own');
  assert.equal(marks.target.get('check'), 'own');
  assert.equal(marks.target.get('triage'), 'new');
});

test("a check's problems mark their elements on the source", () => {
  const marks = planMarks(source, target, [], new Map(), ['notify', 'elsewhere']);
  assert.equal(marks.source.get('notify'), 'problem');
  assert.equal(marks.source.has('elsewhere'), false);
});

test('enum names lose their prefix', () => {
  assert.equal(enumTail('MIGRATION_STATE_COMPLETED', 'MIGRATION_STATE'), 'COMPLETED');
  assert.equal(enumTail('MOVE_ACTION_CARRIED_OVER', 'MOVE_ACTION'), 'CARRIED_OVER');
  assert.equal(enumTail('', 'MOVE_ACTION'), 'UNSPECIFIED');
});

test('a migrated instance names the version it last came from', () => {
  const history = [
    { type: 'instance.created', detail: 'review:1' },
    { type: 'instance.migrated', detail: 'from review:1 to review:2: v2 renames it' },
    { type: 'instance.migrated', detail: 'from review:2 to review:3: a fix at 10:30' },
  ];
  assert.equal(migratedFrom({ history }), 2);
  assert.equal(migratedFrom({ history: history.slice(0, 2) }), 1);
  assert.equal(migratedFrom({ history: history.slice(0, 1) }), null);
  assert.equal(migratedFrom({}), null);
});

test('migration and modification events are told apart in the timeline', () => {
  assert.ok(isMigrationEvent('instance.migrated'));
  assert.ok(isMigrationEvent('instance.modified'));
  assert.ok(!isMigrationEvent('element.completed'));
});
