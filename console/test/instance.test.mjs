// Where an instance has been, waits and is stuck, as the operate page marks it on the diagram.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { instanceMarkers } from '../src/pages/instance.js';

test('completed elements from the history, waits from the active elements, open incidents only', () => {
  const instance = {
    history: [
      { type: 'instance.created' },
      { type: 'element.completed', element_id: 'start' },
      { type: 'job.created', element_id: 'record' },
      { type: 'element.completed', element_id: 'understand_needs' },
    ],
    active_elements: [{ element_id: 'record', state: 'ERROR', process_id: 'intake' }],
    incidents: [
      { incident_id: 'a', element_id: 'record', process_id: 'intake' },
      { incident_id: 'b', element_id: 'old', resolved_at: '2026-01-01T00:00:00Z' },
    ],
  };
  assert.deepEqual(instanceMarkers(instance), {
    done: ['start', 'understand_needs'],
    active: [{ element_id: 'record', process_id: 'intake' }],
    incidents: [{ element_id: 'record', process_id: 'intake' }],
  });
});

test('an instance the API sent with its empty lists left out has no markers', () => {
  assert.deepEqual(instanceMarkers({}), { done: [], active: [], incidents: [] });
});
