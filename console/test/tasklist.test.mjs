// The task list's order and the engagement context drawn from a task's variables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engagementContext, humanKey, parseVariables, sortTasks, urgency } from '../src/tasklist.js';

const NOW = Date.parse('2026-12-06T12:00:00Z');

test('overdue first (most overdue on top), then due soonest, then no due date, oldest first', () => {
  const tasks = [
    { user_task_id: 'none-new', created_at: '2026-12-05T00:00:00Z' },
    { user_task_id: 'due-later', due_at: '2026-12-20T00:00:00Z' },
    { user_task_id: 'overdue-1d', due_at: '2026-12-05T12:00:00Z' },
    { user_task_id: 'none-old', created_at: '2026-12-01T00:00:00Z' },
    { user_task_id: 'due-soon', due_at: '2026-12-07T00:00:00Z' },
    { user_task_id: 'overdue-3d', due_at: '2026-12-03T12:00:00Z' },
  ];
  assert.deepEqual(
    sortTasks(tasks, NOW).map((task) => task.user_task_id),
    ['overdue-3d', 'overdue-1d', 'due-soon', 'due-later', 'none-old', 'none-new'],
  );
  assert.equal(urgency(tasks[2], NOW), 'overdue');
  assert.equal(urgency(tasks[1], NOW), 'due');
  assert.equal(urgency(tasks[0], NOW), 'none');
});

test('the context puts the client apart from earlier decisions and leaves out internals and own fields', () => {
  const variables = {
    client_name: '佛山陶瓷 Foshan Ceramics',
    contact_email: 'a@example.com',
    engagement_id: 'E-1',
    take_on: true,
    communication_mode: 'phone',
    _internal: 1,
    needs: 'the form field itself',
    inquiry_id: 'c679ecbf-1ff4-43ca-9b22-7a7fc5b8b6c3',
    empty: '',
  };
  assert.deepEqual(engagementContext(variables, ['needs']), {
    client: [
      ['client_name', '佛山陶瓷 Foshan Ceramics'],
      ['contact_email', 'a@example.com'],
      ['engagement_id', 'E-1'],
    ],
    decisions: [
      ['communication_mode', 'phone'],
      ['take_on', true],
    ],
  });
});

test('variables_json that is not an object reads as no variables', () => {
  assert.deepEqual(parseVariables(''), {});
  assert.deepEqual(parseVariables('[1]'), {});
  assert.deepEqual(parseVariables('{bad'), {});
  assert.deepEqual(parseVariables('{"a": 1}'), { a: 1 });
});

test('variable names read as words', () => {
  assert.equal(humanKey('client_name'), 'Client');
  assert.equal(humanKey('client_name', 'zh'), '客戶名稱');
  assert.equal(humanKey('take_on', 'zh'), 'Take on');
  assert.equal(humanKey('proposal.verdict'), 'Proposal verdict');
});
