// bilingual(): process labels written "中文 English" show in one language.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bilingual, splitBilingual, STRINGS, t } from '../src/i18n.js';

const cases = [
  ['瞭解客戶需求 Understand client needs', '瞭解客戶需求', 'Understand client needs'],
  ['交付渠道測試通過? Channel test passed?', '交付渠道測試通過?', 'Channel test passed?'],
  ['應對策略(預設為規定策略) Strategy (the prescribed one unless changed)', '應對策略(預設為規定策略)', 'Strategy (the prescribed one unless changed)'],
  ['副本分發對象(相關部門和人員) Copies to: departments and people concerned (comma separated)', '副本分發對象(相關部門和人員)', 'Copies to: departments and people concerned (comma separated)'],
  ['客戶在外地 Client is remote', '客戶在外地', 'Client is remote'],
  ['人民幣 CNY', '人民幣', 'CNY'],
  ['是 yes', '是', 'yes'],
  ['發現潛在風險? Potential risk found?', '發現潛在風險?', 'Potential risk found?'],
  ["等待客戶回覆調查 Wait for the client's survey answers", '等待客戶回覆調查', "Wait for the client's survey answers"],
  ['整改項 Items (one per line: what | who | until)', '整改項', 'Items (one per line: what | who | until)'],
];

test('a Chinese-then-English label splits into its two parts', () => {
  for (const [text, zh, en] of cases) {
    assert.deepEqual(splitBilingual(text), { zh, en }, text);
    assert.equal(bilingual(text, 'zh'), zh);
    assert.equal(bilingual(text, 'en'), en);
  }
});

test('a number standing before the Chinese belongs to both languages', () => {
  assert.deepEqual(splitBilingual('4 滿意 Satisfied'), { zh: '4 滿意', en: '4 Satisfied' });
  assert.deepEqual(splitBilingual('2 不滿意 2 Unsatisfied'), { zh: '2 不滿意', en: '2 Unsatisfied' });
  // glued to the Chinese it is part of the Chinese only
  assert.deepEqual(splitBilingual('2024年 報告 Report for 2024'), { zh: '2024年 報告', en: 'Report for 2024' });
});

test('numbers and Latin abbreviations inside either part stay where they are', () => {
  assert.deepEqual(splitBilingual('第2階段 Stage 2'), { zh: '第2階段', en: 'Stage 2' });
  assert.deepEqual(splitBilingual('KPI 指標 KPI indicator'), { zh: 'KPI 指標', en: 'KPI indicator' });
  assert.deepEqual(splitBilingual('使用CRM系統 Use the CRM'), { zh: '使用CRM系統', en: 'Use the CRM' });
});

test('full-width punctuation counts as Chinese', () => {
  assert.deepEqual(splitBilingual('是否通過? Passed?'), { zh: '是否通過?', en: 'Passed?' });
  assert.deepEqual(splitBilingual('風險、問題 Risks, problems'), { zh: '風險、問題', en: 'Risks, problems' });
});

test('text in one language shows as is in both', () => {
  for (const text of ['Understand client needs', '瞭解客戶需求', 'acceptance.reported', '12.5', '', '是?', '使用CRM系統']) {
    assert.equal(bilingual(text, 'zh'), text);
    assert.equal(bilingual(text, 'en'), text);
  }
  assert.equal(bilingual(null, 'en'), '');
  assert.equal(bilingual(undefined, 'zh'), '');
});

test('English written first also splits', () => {
  assert.deepEqual(splitBilingual('Email 電子郵件'), { zh: '電子郵件', en: 'Email' });
});

test('spaces are tidied', () => {
  assert.deepEqual(splitBilingual('  客戶   Client  '), { zh: '客戶', en: 'Client' });
  assert.deepEqual(splitBilingual('客戶\nClient'), { zh: '客戶', en: 'Client' });
});

test('every console phrase has both languages and the same placeholders', () => {
  for (const [key, entry] of Object.entries(STRINGS)) {
    assert.ok(entry.zh && entry.en, key);
    const holes = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    assert.deepEqual(holes(entry.zh), holes(entry.en), key);
  }
  assert.equal(t('dueAt', { when: 'tomorrow' }, 'en'), 'Due tomorrow');
  assert.equal(t('no-such-key'), 'no-such-key');
});
