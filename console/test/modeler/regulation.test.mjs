// The regulation's marks in documentation text (console/src/modeler/regulation.js), in the form
// services/consultflow/traceability.py reads. Run by tests/console/test_modeler_panel.py.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assumptionsOf, clausesOf, readClauseIds, withAssumptions, withClauses } from '../../src/modeler/regulation.js';

const DOC = '[2.1.1] Market research — monthly.\n[assumption] Monthly: the text says regularly.\n[assumption] Second.';

test('clause ids come from the first line only', () => {
  assert.deepEqual(clausesOf(DOC), ['2.1.1']);
  assert.deepEqual(clausesOf('[2.2.2][6.1.1] Title — text\nsee [5.1]'), ['2.2.2', '6.1.1']);
  assert.deepEqual(clausesOf('No tags here'), []);
  assert.deepEqual(clausesOf(''), []);
});

test('assumptions are the [assumption] lines', () => {
  assert.deepEqual(assumptionsOf(DOC), ['Monthly: the text says regularly.', 'Second.']);
});

test('new clause ids rewrite the tags and nothing else', () => {
  assert.equal(withClauses(DOC, ['2.1.1', '6.1.1']), DOC.replace('[2.1.1]', '[2.1.1][6.1.1]'));
  assert.equal(withClauses(DOC, []), DOC.replace('[2.1.1] ', ''));
  assert.equal(withClauses('Untagged title', ['1.2']), '[1.2] Untagged title');
  assert.equal(withClauses('', ['1.2']), '[1.2]');
});

test('assumptions are replaced in place, added at the end, removed when cleared', () => {
  assert.equal(withAssumptions(DOC, ['Monthly: the text says regularly.', 'Changed.']), DOC.replace('Second.', 'Changed.'));
  assert.equal(withAssumptions(DOC, ['Only one.']), '[2.1.1] Market research — monthly.\n[assumption] Only one.');
  assert.equal(withAssumptions('Title', ['New.']), 'Title\n[assumption] New.');
  assert.equal(withAssumptions(DOC, ['']), '[2.1.1] Market research — monthly.');
});

test('typed clause ids are read or refused', () => {
  assert.deepEqual(readClauseIds('2.2.1, 6.1.1'), ['2.2.1', '6.1.1']);
  assert.deepEqual(readClauseIds('[2.2.1][6.1.1]'), ['2.2.1', '6.1.1']);
  assert.deepEqual(readClauseIds(''), []);
  assert.equal(readClauseIds('2.2.a'), null);
});
