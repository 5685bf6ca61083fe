// The console's two languages. Where each language's text lives:
// - the console's own words (buttons, headings, messages): STRINGS below, one entry per phrase with its
//   繁體中文 and English text side by side;
// - process content (task names, form labels, enum value names, element names, lanes): the diagrams in
//   bpmn/*.bpmn carry both languages in one name, "中文 English" (e.g. "瞭解客戶需求 Understand client
//   needs"); bilingual() shows the part for the chosen language.

const STORAGE_KEY = 'consultflow.console.lang';

export const STRINGS = {
  appName: { zh: '諮詢流程控制台', en: 'Consultflow console' },
  navTasks: { zh: '任務', en: 'Tasks' },
  navOperate: { zh: '運維', en: 'Operate' },
  navModeler: { zh: '建模', en: 'Modeler' },
  signedInAs: { zh: '已登入:{name}', en: 'Signed in as {name}' },
  signOut: { zh: '登出', en: 'Sign out' },
  language: { zh: '語言', en: 'Language' },
  signInTitle: { zh: '請登入', en: 'Please sign in' },
  signInLocal: {
    zh: '本機使用:請索取登入連結(由此命令產生):',
    en: 'On this machine, ask for a sign-in link:',
  },
  signInOrg: { zh: '以所屬機構帳號登入', en: 'Sign in with your organisation' },
  loading: { zh: '載入中…', en: 'Loading…' },
  nothingAllowed: {
    zh: '你的角色沒有可用的頁面。',
    en: 'Your roles give you no page of this console.',
  },
  notFound: { zh: '找不到此頁面。', en: 'There is no such page.' },
  retry: { zh: '重試', en: 'Try again' },
  errorLoading: { zh: '載入失敗:{message}', en: 'Could not load: {message}' },
  errorForbidden: { zh: '你沒有權限執行此操作。', en: 'You may not do this.' },
  errorOffline: { zh: '服務暫時無法使用,請稍後再試。', en: 'The service is unavailable; try again shortly.' },
  sessionExpired: { zh: '登入已過期,請重新登入。', en: 'Your session has ended; please sign in again.' },
  live: { zh: '即時更新', en: 'Live' },
  liveLost: { zh: '即時更新已中斷,正在重新連線', en: 'Live updates lost; reconnecting' },
  yes: { zh: '是', en: 'Yes' },
  no: { zh: '否', en: 'No' },
  none: { zh: '無', en: 'None' },
  close: { zh: '關閉', en: 'Close' },
  // tasks
  tasksTitle: { zh: '我的任務', en: 'My tasks' },
  scopeMine: { zh: '我的任務', en: 'My tasks' },
  scopeGroups: { zh: '我所屬群組的任務', en: "My groups' tasks" },
  includeClosed: { zh: '包括已完成', en: 'Include closed' },
  noTasks: { zh: '目前沒有任務。', en: 'No tasks right now.' },
  pickTask: { zh: '選擇左側的任務以查看及處理。', en: 'Pick a task on the left to see and work on it.' },
  due: { zh: '到期', en: 'Due' },
  dueAt: { zh: '{when}到期', en: 'Due {when}' },
  overdue: { zh: '已逾期', en: 'Overdue' },
  overdueSince: { zh: '已逾期(應於 {when} 完成)', en: 'Overdue (was due {when})' },
  noDue: { zh: '無到期日', en: 'No due date' },
  assignee: { zh: '負責人', en: 'Assignee' },
  unassigned: { zh: '未認領', en: 'Unclaimed' },
  claimedByYou: { zh: '由你處理', en: 'Yours' },
  claimedBy: { zh: '{name} 處理中', en: 'Claimed by {name}' },
  candidateGroups: { zh: '候選群組', en: 'Candidate groups' },
  businessKey: { zh: '業務編號', en: 'Business key' },
  process: { zh: '流程', en: 'Process' },
  created: { zh: '建立', en: 'Created' },
  claim: { zh: '認領', en: 'Claim' },
  unclaim: { zh: '退回', en: 'Unclaim' },
  complete: { zh: '完成任務', en: 'Complete task' },
  completing: { zh: '提交中…', en: 'Submitting…' },
  completed: { zh: '任務「{name}」已完成。', en: 'Task "{name}" completed.' },
  taskClosed: { zh: '此任務已{state}。', en: 'This task is {state}.' },
  claimFirst: {
    zh: '此任務由 {name} 處理中,你無法提交。',
    en: '{name} holds this task; you cannot submit it.',
  },
  formTitle: { zh: '表單', en: 'Form' },
  noFields: { zh: '此任務沒有表單欄位,完成即可。', en: 'This task has no form fields; complete it when done.' },
  required: { zh: '必填', en: 'required' },
  choose: { zh: '— 請選擇 —', en: '— choose —' },
  formHasErrors: { zh: '請更正標示的欄位。', en: 'Please correct the marked fields.' },
  errRequired: { zh: '此欄為必填。', en: 'This field is required.' },
  errWhole: { zh: '請輸入整數。', en: 'Enter a whole number.' },
  errDecimal: { zh: '請輸入數字(例如 12.5)。', en: 'Enter a number (e.g. 12.5).' },
  errDate: { zh: '請輸入日期 YYYY-MM-DD 或日期時間。', en: 'Enter a date (YYYY-MM-DD) or a date-time.' },
  errEnum: { zh: '請從清單中選擇。', en: 'Choose one of the listed values.' },
  errBoolean: { zh: '請選擇是或否。', en: 'Choose yes or no.' },
  errText: { zh: '請輸入文字。', en: 'Enter text.' },
  errTooLong: { zh: '不可超過 10000 個字元。', en: 'At most 10000 characters.' },
  documentation: { zh: '說明與規範', en: 'Guidance and regulation' },
  noDocumentation: { zh: '此任務沒有說明。', en: 'This task has no documentation.' },
  context: { zh: '項目背景', en: 'Engagement context' },
  client: { zh: '客戶', en: 'Client' },
  previousDecisions: { zh: '先前的決定', en: 'Previous decisions' },
  noContext: { zh: '尚無資料。', en: 'No data yet.' },
  showAll: { zh: '顯示全部({count})', en: 'Show all ({count})' },
  openInstance: { zh: '查看流程實例', en: 'Open the instance' },
  // operate
  operateTitle: { zh: '流程運維', en: 'Operate' },
  processes: { zh: '流程', en: 'Processes' },
  version: { zh: '版本', en: 'Version' },
  allVersions: { zh: '所有版本', en: 'All versions' },
  running: { zh: '執行中', en: 'Running' },
  incidents: { zh: '事故', en: 'Incidents' },
  withIncidents: { zh: '有事故的實例', en: 'Instances with incidents' },
  instances: { zh: '流程實例', en: 'Instances' },
  searchInstances: { zh: '搜尋實例', en: 'Search instances' },
  searchPlaceholder: { zh: '業務編號或實例 ID 的開頭', en: 'Start of a business key or instance id' },
  search: { zh: '搜尋', en: 'Search' },
  state: { zh: '狀態', en: 'State' },
  anyState: { zh: '任何狀態', en: 'Any state' },
  anyProcess: { zh: '任何流程', en: 'Any process' },
  stateACTIVE: { zh: '執行中', en: 'Active' },
  stateCOMPLETED: { zh: '已完成', en: 'Completed' },
  stateCANCELED: { zh: '已取消', en: 'Canceled' },
  stateOPEN: { zh: '待處理', en: 'open' },
  stateUNKNOWN: { zh: '未知', en: 'Unknown' },
  waitingAt: { zh: '等待於', en: 'Waiting at' },
  updated: { zh: '更新', en: 'Updated' },
  noInstances: { zh: '沒有符合的實例。', en: 'No matching instances.' },
  countOf: { zh: '共 {total} 個,顯示 {shown} 個', en: '{shown} of {total}' },
  more: { zh: '載入更多', en: 'Load more' },
  diagram: { zh: '流程圖', en: 'Diagram' },
  diagramLegend: {
    zh: '藍色數字:執行中的實例;紅色數字:未解決的事故。',
    en: 'Blue: instances at the element; red: open incidents.',
  },
  instanceLegend: {
    zh: '綠色:已走過;藍色:等待中;紅色:事故。',
    en: 'Green: the path taken; blue: where it waits; red: incidents.',
  },
  diagramFailed: { zh: '無法顯示流程圖:{message}', en: 'Cannot draw the diagram: {message}' },
  instance: { zh: '流程實例', en: 'Instance' },
  started: { zh: '開始', en: 'Started' },
  ended: { zh: '結束', en: 'Ended' },
  parent: { zh: '上層實例', en: 'Called by' },
  children: { zh: '呼叫的流程', en: 'Called processes' },
  noChildren: { zh: '沒有呼叫其他流程。', en: 'It called no other process.' },
  cancelInstance: { zh: '取消實例', en: 'Cancel instance' },
  cancelConfirm: {
    zh: '確定要取消此流程實例?此操作無法復原。',
    en: 'Cancel this instance? This cannot be undone.',
  },
  canceled: { zh: '實例已取消。', en: 'The instance was canceled.' },
  openIncidents: { zh: '未解決的事故', en: 'Open incidents' },
  noIncidents: { zh: '沒有事故。', en: 'No incidents.' },
  retryIncident: { zh: '重試', en: 'Retry' },
  retried: { zh: '已重試事故。', en: 'The incident was retried.' },
  element: { zh: '元素', en: 'Element' },
  kind: { zh: '類型', en: 'Kind' },
  message: { zh: '訊息', en: 'Message' },
  time: { zh: '時間', en: 'Time' },
  userTasks: { zh: '人工任務', en: 'User tasks' },
  noUserTasks: { zh: '沒有待處理的人工任務。', en: 'No open user tasks.' },
  jobs: { zh: '作業', en: 'Jobs' },
  noJobs: { zh: '沒有待處理的作業。', en: 'No open jobs.' },
  operation: { zh: '操作', en: 'Operation' },
  attempt: { zh: '嘗試', en: 'Attempt' },
  retriesLeft: { zh: '剩餘重試', en: 'Retries left' },
  deadline: { zh: '期限', en: 'Deadline' },
  variables: { zh: '變數', en: 'Variables' },
  noVariables: { zh: '沒有變數。', en: 'No variables.' },
  name: { zh: '名稱', en: 'Name' },
  value: { zh: '值', en: 'Value' },
  timeline: { zh: '歷程', en: 'Timeline' },
  noHistory: { zh: '沒有歷程。', en: 'No history.' },
  publishMessage: { zh: '發送訊息', en: 'Publish a message' },
  messageName: { zh: '訊息名稱', en: 'Message name' },
  correlationKey: { zh: '關聯鍵', en: 'Correlation key' },
  messageVariables: { zh: '變數(JSON 物件)', en: 'Variables (a JSON object)' },
  publish: { zh: '發送', en: 'Publish' },
  published: { zh: '訊息已發送:{outcome}', en: 'Message published: {outcome}' },
  notJson: { zh: '不是 JSON 物件。', en: 'Not a JSON object.' },
  backToOperate: { zh: '返回流程列表', en: 'Back to processes' },
  noProcesses: { zh: '尚未部署任何流程。', en: 'No process is deployed.' },
  // migrations (ops)
  migrations: { zh: '實例遷移', en: 'Migrations' },
  migrationsTitle: { zh: '實例遷移:將執行中的實例移至其他版本', en: 'Migrations: move running instances to another version' },
  sourceVersion: { zh: '來源版本', en: 'Source version' },
  targetVersion: { zh: '目標版本', en: 'Target version' },
  chooseProcess: { zh: '— 選擇流程 —', en: '— choose a process —' },
  versionRunning: { zh: 'v{version}({count} 個執行中)', en: 'v{version} ({count} running)' },
  migrationLegend: {
    zh: '綠色:依 ID 對應;紫色:手動對應;紅色:有實例等待但目標版本沒有的元素(問題);橘色:僅目標版本有的新元素。點選左圖元素,再點選右圖元素即可建立對應。',
    en: 'Green: mapped by id; purple: mapped by you; red: instances wait there and the target lacks it (a problem); orange: new in the target. Pick an element on the left, then one on the right, to map them.',
  },
  mappings: { zh: '手動對應', en: 'Mappings' },
  noMappings: { zh: '沒有手動對應;相同 ID 的元素會自動對應。', en: 'No mappings; elements with the same id map to themselves.' },
  pickedSource: { zh: '已選來源元素 {element};請在右圖點選目標元素。', en: 'Source {element} picked; now pick its target on the right.' },
  pickSourceFirst: { zh: '請先在左圖點選來源元素。', en: 'Pick a source element on the left first.' },
  restart: { zh: '重新開始', en: 'Restart' },
  remove: { zh: '移除', en: 'Remove' },
  selection: { zh: '選取條件(選填)', en: 'Selection (optional)' },
  anyElement: { zh: '任何元素', en: 'Any element' },
  waitingAtElement: { zh: '等待於元素(ID)', en: 'Waiting at element (id)' },
  checkPlan: { zh: '檢查', en: 'Check' },
  checking: { zh: '檢查中…', en: 'Checking…' },
  planProblems: { zh: '遷移計畫的問題', en: 'Problems of the plan' },
  checkResult: { zh: '檢查結果:選取 {selected} 個實例,{applicable} 個可遷移。', en: 'Checked: {applicable} of the {selected} selected can move.' },
  applicable: { zh: '可遷移', en: 'Can move' },
  problems: { zh: '問題', en: 'Problems' },
  moves: { zh: '移動', en: 'Moves' },
  moveCARRIED_OVER: { zh: '沿用', en: 'carried over' },
  moveRESTARTED: { zh: '重新開始', en: 'restarted' },
  moveCANCELED: { zh: '取消', en: 'canceled' },
  moveACTIVATED: { zh: '啟動', en: 'activated' },
  migrate: { zh: '遷移', en: 'Migrate' },
  reason: { zh: '原因(必填)', en: 'Reason (required)' },
  reasonRequired: { zh: '請填寫原因。', en: 'Give a reason.' },
  skipRefused: { zh: '略過計畫無法套用的實例', en: 'Skip instances the plan cannot apply to' },
  migrationStarted: { zh: '遷移已開始。', en: 'The migration started.' },
  batch: { zh: '遷移批次', en: 'Migration batch' },
  batchState: { zh: '共 {total} 個:已遷移 {migrated},略過 {skipped},失敗 {failed}', en: '{total} in all: {migrated} migrated, {skipped} skipped, {failed} failed' },
  batchRUNNING: { zh: '進行中', en: 'Running' },
  batchCOMPLETED: { zh: '已完成', en: 'Completed' },
  itemPENDING: { zh: '等待中', en: 'Pending' },
  itemMIGRATED: { zh: '已遷移', en: 'Migrated' },
  itemSKIPPED: { zh: '已略過', en: 'Skipped' },
  itemFAILED: { zh: '失敗', en: 'Failed' },
  pastBatches: { zh: '過往的遷移', en: 'Past migrations' },
  noBatches: { zh: '尚無遷移。', en: 'No migrations yet.' },
  createdBy: { zh: '執行者', en: 'By' },
  plan: { zh: '計畫', en: 'Plan' },
  processNotInVersion: { zh: '此版本沒有流程 {process}。', en: 'This version holds no process {process}.' },
  sameVersion: { zh: '來源與目標版本相同。', en: 'The source and target versions are the same.' },
  // moving one instance (ModifyInstance)
  moveInstance: { zh: '移動', en: 'Move' },
  moveTitle: { zh: '移動此實例', en: 'Move this instance' },
  moveCancel: { zh: '要取消的等待元素', en: 'Waiting elements to cancel' },
  moveActivate: { zh: '要啟動的元素(在流程圖上點選)', en: 'Element to activate (pick it on the diagram)' },
  moveNoActivate: { zh: '— 不啟動 —', en: '— none —' },
  moveSubmit: { zh: '移動實例', en: 'Move the instance' },
  moved: { zh: '實例已移動。', en: 'The instance was moved.' },
  migratedFrom: { zh: '自 v{version} 遷移', en: 'migrated from v{version}' },
};

let current = initialLanguage();
const listeners = new Set();

function initialLanguage() {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (saved === 'zh' || saved === 'en') return saved;
  } catch {
    // storage may be disabled: fall back to the browser's language
  }
  const preferred = globalThis.navigator?.language ?? 'en';
  return preferred.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

/** The chosen language: "zh" (繁體中文) or "en". */
export function language() {
  return current;
}

/** Chooses the language, remembers it in localStorage and tells the listeners. */
export function setLanguage(lang) {
  if (lang !== 'zh' && lang !== 'en') throw new Error(`unknown language ${lang}`);
  current = lang;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembered; still switched
  }
  if (globalThis.document) document.documentElement.lang = lang === 'zh' ? 'zh-Hant' : 'en';
  for (const listener of listeners) listener(lang);
}

/** Calls `fn(lang)` whenever the language changes; returns a function that stops it. */
export function onLanguageChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** The console's phrase `key` in the chosen language, with {placeholders} filled from `params`. */
export function t(key, params = {}, lang = current) {
  const entry = STRINGS[key];
  if (!entry) return key;
  return entry[lang].replace(/\{(\w+)\}/g, (whole, name) => (name in params ? String(params[name]) : whole));
}

// Han characters, CJK punctuation (、。「」) and full-width forms (,?:()) count as Chinese text.
const CJK = /[\p{Script=Han}\u3000-\u303f\uff00-\uffef]/u;
const CJK_ALL = /[\p{Script=Han}\u3000-\u303f\uff00-\uffef]/gu;
const LATIN = /[A-Za-z]/;

/**
 * Splits a process label written "中文 English" into its two parts: {zh, en}.
 *
 * The Chinese part runs to the end of the word holding its last Chinese character (so "通過?" and
 * "(預設為規定策略)" stay with it); the English part is what follows. A leading number shared by both
 * ("4 滿意 Satisfied") is kept in both. English written first ("Email 電子郵件") works too. Text in only
 * one language, or one the rule cannot split, is returned whole in both.
 */
export function splitBilingual(text) {
  const whole = String(text ?? '').trim().replace(/\s+/g, ' ');
  const same = { zh: whole, en: whole };
  if (!CJK.test(whole) || !LATIN.test(whole)) return same;
  const positions = [...whole.matchAll(CJK_ALL)].map((m) => m.index);
  const first = positions[0];
  const last = positions[positions.length - 1];
  const after = whole.slice(last + 1);
  const gap = after.indexOf(' ');
  if (gap >= 0 && LATIN.test(after.slice(gap))) {
    const zh = whole.slice(0, last + 1 + gap).trim();
    let en = after.slice(gap + 1).trim();
    // a number standing on its own before the Chinese ("4 滿意 Satisfied") belongs to both
    const head = whole.slice(0, first);
    const prefix = head.trim();
    if (prefix && head.endsWith(' ') && !LATIN.test(prefix) && !en.split(' ').includes(prefix)) {
      en = `${prefix} ${en}`;
    }
    return { zh, en };
  }
  // English first, Chinese after: split at the last space before the first Chinese character
  const before = whole.slice(0, first);
  const space = before.lastIndexOf(' ');
  if (space > 0 && LATIN.test(before) && !LATIN.test(whole.slice(first))) {
    return { zh: whole.slice(space + 1).trim(), en: before.slice(0, space).trim() };
  }
  return same;
}

/** The part of a "中文 English" label for `lang` (the chosen language by default). */
export function bilingual(text, lang = current) {
  return splitBilingual(text)[lang === 'zh' ? 'zh' : 'en'];
}
