// The properties panel's groups for this system's conventions, beside what the Camunda Platform provider edits
// (forms, candidate groups and users, assignee, due date) and the base provider (names, documentation, timers,
// messages, called element): the operation a service task calls (from the catalogue the services publish),
// its parameters, result variable and retry policy, pre/post scripts, the decision a business rule task
// evaluates, message payloads and variables, a message's correlation key, and the regulation's clause ids and
// `[assumption]` lines.
// Everything it edits is listed in editable.json (docs/console.md "What the modeler edits").
import { h } from '@bpmn-io/properties-panel/preact';
import { SelectEntry, TextAreaEntry, TextFieldEntry, isSelectEntryEdited, isTextAreaEntryEdited, isTextFieldEntryEdited } from '@bpmn-io/properties-panel';
import { useService } from 'bpmn-js-properties-panel';
import { assumptionsOf, clausesOf, readClauseIds, withAssumptions, withClauses } from './regulation.js';

const LOW_PRIORITY = 400; // after the base and Camunda providers, so their groups can be trimmed

// Camunda Platform groups whose settings the orchestrator never reads: hidden so nobody edits what does nothing.
const IGNORED_CAMUNDA_GROUPS = new Set([
  'CamundaPlatform__AsynchronousContinuations', 'CamundaPlatform__BusinessKey', 'CamundaPlatform__CandidateStarter',
  'CamundaPlatform__ConnectorInput', 'CamundaPlatform__ConnectorOutput', 'CamundaPlatform__Errors',
  'CamundaPlatform__ExecutionListener', 'CamundaPlatform__ExtensionProperties', 'CamundaPlatform__ExternalTask',
  'CamundaPlatform__FieldInjection', 'CamundaPlatform__Form', 'CamundaPlatform__HistoryCleanup',
  'CamundaPlatform__Implementation', 'CamundaPlatform__InMapping', 'CamundaPlatform__InMappingPropagation',
  'CamundaPlatform__Input', 'CamundaPlatform__JobExecution', 'CamundaPlatform__OutMapping',
  'CamundaPlatform__OutMappingPropagation', 'CamundaPlatform__Output', 'CamundaPlatform__ProcessVariables',
  'CamundaPlatform__StartInitiator', 'CamundaPlatform__TaskListener', 'CamundaPlatform__Tasklist',
]);

// Entries of the Camunda groups we keep whose settings the orchestrator never reads.
const IGNORED_CAMUNDA_ENTRIES = {
  CamundaPlatform__UserAssignment: new Set(['followUpDate', 'priority']),
  CamundaPlatform__CallActivity: new Set(['calledElementBinding', 'calledElementVersion', 'calledElementVersionTag',
    'calledElementTenantId', 'calledElementBusinessKey', 'calledElementDelegateVariableMappingType',
    'calledElementDelegateVariableMapping']),
};

// The catalogue's field types (platform/operation_spec.py FieldType) → the `type` a spiffworkflow:parameter
// carries, in the Python names bpmn/ uses; decimals and dates travel as strings.
const PARAMETER_TYPES = { string: 'str', integer: 'int', decimal: 'str', boolean: 'bool', date: 'str', list: 'list', object: 'dict', any: 'any' };

function is(bo, type) {
  return bo && bo.$instanceOf && bo.$instanceOf(type);
}

function extension(bo, type) {
  return ((bo.extensionElements && bo.extensionElements.get('values')) || []).find((v) => is(v, type));
}

function messageDefinition(bo) {
  return (bo.eventDefinitions || []).find((d) => is(d, 'bpmn:MessageEventDefinition'));
}

/** Commands that put `value` (an element, or null to remove it) as `bo`'s one extension element of `type`. */
function setExtensionCommands(element, bo, type, value, bpmnFactory) {
  const commands = [];
  let extensionElements = bo.extensionElements;
  if (!extensionElements) {
    if (!value) return commands;
    extensionElements = bpmnFactory.create('bpmn:ExtensionElements', { values: [] });
    extensionElements.$parent = bo;
    commands.push({ cmd: 'element.updateModdleProperties', context: { element, moddleElement: bo, properties: { extensionElements } } });
  }
  const values = extensionElements.get('values').slice();
  const index = values.findIndex((v) => is(v, type));
  if (value) {
    value.$parent = extensionElements;
    if (index >= 0) values.splice(index, 1, value);
    else values.push(value);
  } else if (index >= 0) {
    values.splice(index, 1);
  } else {
    return commands;
  }
  commands.push({ cmd: 'element.updateModdleProperties', context: { element, moddleElement: extensionElements, properties: { values } } });
  return commands;
}

/** A text extension element (`<spiffworkflow:preScript>…</…>` and the like) as a text entry. */
function BodyExtensionEntry(props) {
  const { element, owner, type, id, label, area, description, validate } = props;
  const commandStack = useService('commandStack');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  const getValue = () => {
    const found = extension(owner, type);
    return (found && found.get('value')) || '';
  };
  const setValue = (value) => {
    const replacement = value ? bpmnFactory.create(type, { value }) : null;
    const commands = setExtensionCommands(element, owner, type, replacement, bpmnFactory);
    if (commands.length) commandStack.execute('properties-panel.multi-command-executor', commands);
  };
  const entry = area ? TextAreaEntry : TextFieldEntry;
  return entry({ element, id, label, description, getValue, setValue, debounce, validate, monospace: area, autoResize: area });
}

// --------------------------------------------------------------------------------------------- operation

function operatorOf(element) {
  return extension(element.businessObject, 'spiffworkflow:ServiceTaskOperator');
}

function parametersOf(operator) {
  return (operator && operator.parameterList && operator.parameterList.get('parameters')) || [];
}

function catalogueEntry(catalogue, name) {
  return (catalogue.operations || []).find((op) => op.name === name);
}

function OperationEntry(props) {
  const { element } = props;
  const commandStack = useService('commandStack');
  const bpmnFactory = useService('bpmnFactory');
  const catalogue = useService('cfCatalogue');
  const getValue = () => (operatorOf(element) && operatorOf(element).get('id')) || '';
  const getOptions = () => {
    const options = [{ value: '', label: '—' }];
    const current = getValue();
    if (current && !catalogueEntry(catalogue, current)) options.push({ value: current, label: `${current} (not in the catalogue)` });
    for (const op of catalogue.operations || []) options.push({ value: op.name, label: op.summary ? `${op.name} — ${op.summary}` : op.name });
    return options;
  };
  const setValue = (name) => {
    const bo = element.businessObject;
    const operator = operatorOf(element);
    const declared = catalogueEntry(catalogue, name);
    if (!name) {
      const commands = setExtensionCommands(element, bo, 'spiffworkflow:ServiceTaskOperator', null, bpmnFactory);
      if (commands.length) commandStack.execute('properties-panel.multi-command-executor', commands);
      return;
    }
    if (!operator) {
      const created = bpmnFactory.create('spiffworkflow:ServiceTaskOperator', { id: name });
      created.parameterList = newParameters(bpmnFactory, created, declared, []);
      commandStack.execute('properties-panel.multi-command-executor', setExtensionCommands(element, bo, 'spiffworkflow:ServiceTaskOperator', created, bpmnFactory));
      return;
    }
    const properties = { id: name };
    const existing = parametersOf(operator);
    if (declared && !sameInputs(declared, existing)) properties.parameterList = newParameters(bpmnFactory, operator, declared, existing);
    commandStack.execute('element.updateModdleProperties', { element, moddleElement: operator, properties });
  };
  return SelectEntry({ element, id: 'cf-operation', label: 'Operation', getValue, setValue, getOptions });
}

function sameInputs(declared, parameters) {
  const names = (declared.inputs || []).map((i) => i.name);
  return names.length === parameters.length && names.every((n, i) => parameters[i].get('id') === n);
}

/** The declared inputs as parameters, keeping the expression already written for an input of the same id. */
function newParameters(bpmnFactory, operator, declared, existing) {
  const list = bpmnFactory.create('spiffworkflow:Parameters', { parameters: [] });
  list.$parent = operator;
  const inputs = declared ? declared.inputs || [] : [];
  for (const input of inputs) {
    const old = existing.find((p) => p.get('id') === input.name);
    const parameter = bpmnFactory.create('spiffworkflow:Parameter', {
      id: input.name,
      type: old ? old.get('type') : PARAMETER_TYPES[input.type] || input.type || 'str',
      value: old ? old.get('value') : input.name,
    });
    parameter.$parent = list;
    list.get('parameters').push(parameter);
  }
  return list;
}

function ParameterEntry(props) {
  const { element, parameter, input } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');
  const id = `cf-param-${parameter.get('id')}`;
  const kind = input ? `${input.type || parameter.get('type')}${input.required ? ', required' : ''}` : `${parameter.get('type')}; not declared by the operation`;
  const choice = input && input.values && input.values.length ? ` One of: ${input.values.join(', ')}.` : '';
  return TextFieldEntry({
    element,
    id,
    label: `${parameter.get('id')} (${kind})`,
    description: `${(input && input.description) || ''}${choice} A Python expression over the process variables.`.trim(),
    getValue: () => parameter.get('value') || '',
    setValue: (value) => commandStack.execute('element.updateModdleProperties', { element, moddleElement: parameter, properties: { value } }),
    validate: (value) => (input && input.required && !(value || '').trim() ? `${parameter.get('id')} is required` : null),
    debounce,
  });
}

function ResultVariableEntry(props) {
  const { element } = props;
  const commandStack = useService('commandStack');
  const debounce = useService('debounceInput');
  const operator = operatorOf(element);
  return TextFieldEntry({
    element,
    id: 'cf-result-variable',
    label: 'Result variable',
    description: 'Empty: the outputs merge into the process variables one by one.',
    getValue: () => operator.get('resultVariable') || '',
    setValue: (value) => commandStack.execute('element.updateModdleProperties', { element, moddleElement: operator, properties: { resultVariable: value || undefined } }),
    validate: (value) => (value && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(value) ? 'a variable name: letters, digits and _' : null),
    debounce,
  });
}

function OperationInfo(props) {
  const { element } = props;
  const catalogue = useService('cfCatalogue');
  const operator = operatorOf(element);
  const op = operator && catalogueEntry(catalogue, operator.get('id'));
  if (!op) return h('div', { class: 'bio-properties-panel-entry cf-op-info', 'data-entry-id': 'cf-operation-info' }, operator ? 'This operation is not in the catalogue the services publish.' : '');
  const fields = (list) => (list || []).map((f) => h('li', null, h('code', null, f.name), ` ${f.type || ''}${f.required ? ' (required)' : ''}${f.description ? ` — ${f.description}` : ''}`));
  return h('div', { class: 'bio-properties-panel-entry cf-op-info', 'data-entry-id': 'cf-operation-info' },
    h('p', null, op.summary || ''),
    op.description ? h('p', { class: 'cf-op-description' }, op.description) : null,
    op.clauses && op.clauses.length ? h('p', null, `Clauses: ${op.clauses.join(', ')}`) : null,
    h('p', null, 'Outputs:'), h('ul', { class: 'cf-op-outputs' }, fields(op.outputs)),
    h('p', null, 'BPMN errors it may throw:'),
    h('ul', { class: 'cf-op-errors' }, (op.errors || []).map((e) => h('li', null, h('code', null, e.code), e.description ? ` — ${e.description}` : ''))));
}

function operationGroup(element, catalogue) {
  const operator = operatorOf(element);
  const entries = [
    { id: 'cf-operation', component: OperationEntry, isEdited: isSelectEntryEdited },
    { id: 'cf-operation-info', component: OperationInfo },
  ];
  if (operator) {
    const declared = catalogueEntry(catalogue, operator.get('id'));
    for (const parameter of parametersOf(operator)) {
      const input = declared && (declared.inputs || []).find((i) => i.name === parameter.get('id'));
      entries.push({ id: `cf-param-${parameter.get('id')}`, component: (p) => ParameterEntry({ ...p, parameter, input }), isEdited: isTextFieldEntryEdited });
    }
    entries.push({ id: 'cf-result-variable', component: ResultVariableEntry, isEdited: isTextFieldEntryEdited });
  }
  return { id: 'cf-operation', label: 'Operation', entries };
}

// --------------------------------------------------------------------------------------------- retry

function RetryEntry(props) {
  const { element, attribute, id, label, description } = props;
  const commandStack = useService('commandStack');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  const operator = operatorOf(element);
  const getValue = () => (operator.retry && operator.retry.get(attribute)) || '';
  const setValue = (value) => {
    const retry = operator.retry;
    if (!retry) {
      if (!value) return;
      const created = bpmnFactory.create('spiffworkflow:Retry', { [attribute]: value });
      created.$parent = operator;
      commandStack.execute('element.updateModdleProperties', { element, moddleElement: operator, properties: { retry: created } });
      return;
    }
    const other = attribute === 'retries' ? 'backoff_base' : 'retries';
    if (!value && !retry.get(other)) {
      commandStack.execute('element.updateModdleProperties', { element, moddleElement: operator, properties: { retry: undefined } });
      return;
    }
    commandStack.execute('element.updateModdleProperties', { element, moddleElement: retry, properties: { [attribute]: value || undefined } });
  };
  const validate = (value) => (value && !/^\d+$/.test(value) ? 'a whole number, 0 or more' : null);
  return TextFieldEntry({ element, id, label, description, getValue, setValue, validate, debounce });
}

function retryGroup() {
  return {
    id: 'cf-retry',
    label: 'Retry',
    entries: [
      { id: 'cf-retries', component: (p) => RetryEntry({ ...p, attribute: 'retries', id: 'cf-retries', label: 'Retries', description: 'How often a failed job is tried again before it becomes an incident (default 3).' }), isEdited: isTextFieldEntryEdited },
      { id: 'cf-backoff', component: (p) => RetryEntry({ ...p, attribute: 'backoff_base', id: 'cf-backoff', label: 'Back-off base (seconds)', description: 'The wait before the n-th retry grows as base × 2ⁿ (default 1).' }), isEdited: isTextFieldEntryEdited },
    ],
  };
}

// --------------------------------------------------------------------------------------------- scripts, decision, message

function scriptsGroup() {
  return {
    id: 'cf-scripts',
    label: 'Scripts',
    entries: [
      { id: 'cf-prescript', component: (p) => BodyExtensionEntry({ ...p, owner: p.element.businessObject, type: 'spiffworkflow:PreScript', id: 'cf-prescript', label: 'Pre-script', area: true, description: 'Python run when the task becomes ready (restricted: no imports).' }), isEdited: isTextAreaEntryEdited },
      { id: 'cf-postscript', component: (p) => BodyExtensionEntry({ ...p, owner: p.element.businessObject, type: 'spiffworkflow:PostScript', id: 'cf-postscript', label: 'Post-script', area: true, description: 'Python run when the task completes.' }), isEdited: isTextAreaEntryEdited },
    ],
  };
}

function decisionGroup(decisions) {
  const known = decisions.length ? `Decisions deployed with this process: ${decisions.join(', ')}.` : '';
  return {
    id: 'cf-decision',
    label: 'Decision',
    entries: [{
      id: 'cf-decision',
      component: (p) => BodyExtensionEntry({ ...p, owner: p.element.businessObject, type: 'spiffworkflow:CalledDecisionId', id: 'cf-decision', label: 'Called decision id', description: known,
        validate: (v) => (v && decisions.length && !decisions.includes(v) ? `no decision ${v} among ${decisions.join(', ')}` : null) }),
      isEdited: isTextFieldEntryEdited,
    }],
  };
}

function messageGroup(element) {
  const bo = element.businessObject;
  // Spiff reads the payload / variable of an event from its message event definition, of a send or
  // receive task from the task itself.
  const definition = is(bo, 'bpmn:Event') ? messageDefinition(bo) : bo;
  const throwing = is(bo, 'bpmn:ThrowEvent') || is(bo, 'bpmn:SendTask');
  const entries = [];
  if (throwing) {
    entries.push({ id: 'cf-message-payload', component: (p) => BodyExtensionEntry({ ...p, owner: definition, type: 'spiffworkflow:MessagePayload', id: 'cf-message-payload', label: 'Payload', area: true, description: 'A Python expression (usually a dict) sent with the message.' }), isEdited: isTextAreaEntryEdited });
  } else {
    entries.push({ id: 'cf-message-variable', component: (p) => BodyExtensionEntry({ ...p, owner: definition, type: 'spiffworkflow:MessageVariable', id: 'cf-message-variable', label: 'Variable', description: 'The variable that receives the payload; empty: the payload merges into the variables.' }), isEdited: isTextFieldEntryEdited });
  }
  return { id: 'cf-message', label: 'Message payload', entries };
}

// --------------------------------------------------------------------------------------------- correlation

// The orchestrator keys a message by its correlation property (engine.py correlation_key): Spiff collects, per
// message, each `bpmn:correlationProperty`'s `correlationPropertyRetrievalExpression` whose messageRef names it
// and whose first child (`bpmn:formalExpression`, as bpmn-js writes messagePath) has text; the first one found
// is evaluated on the process variables. The panel edits that expression, the one the orchestrator reads.

function messageOf(bo) {
  const holder = is(bo, 'bpmn:Event') ? messageDefinition(bo) : bo;
  return (holder && holder.get('messageRef')) || null;
}

function definitionsOf(bo) {
  let node = bo;
  while (node && !is(node, 'bpmn:Definitions')) node = node.$parent;
  return node || null;
}

function correlationProperties(definitions) {
  return ((definitions && definitions.get('rootElements')) || []).filter((e) => is(e, 'bpmn:CorrelationProperty'));
}

function retrievalsOf(property) {
  return property.get('correlationPropertyRetrievalExpression') || [];
}

function pathText(retrieval) {
  const path = retrieval.get('messagePath');
  return (path && path.get('body')) || '';
}

/** The retrieval expression the orchestrator reads for `message` (the first with an expression), else the
 * first one naming the message without an expression; with the property holding it. */
function retrievalFor(definitions, message) {
  let bare = null;
  for (const property of correlationProperties(definitions)) {
    for (const retrieval of retrievalsOf(property)) {
      if (retrieval.get('messageRef') !== message) continue;
      if (pathText(retrieval)) return { property, retrieval };
      if (!bare) bare = { property, retrieval };
    }
  }
  return bare;
}

/** Commands that give `message` the key expression `key`: the expression it has changed, or a retrieval
 * expression added to the property whose expressions all read `key` (so messages keyed alike share one
 * property, as bpmn/ writes them), or a new correlation property placed after the message. */
function keyCommands(element, definitions, message, key, bpmnFactory) {
  const found = retrievalFor(definitions, message);
  const update = (moddleElement, properties) => ({ cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } });
  const newPath = (parent) => {
    const path = bpmnFactory.create('bpmn:FormalExpression', { body: key });
    path.$parent = parent;
    return path;
  };
  if (found && found.retrieval.get('messagePath')) return [update(found.retrieval.get('messagePath'), { body: key })];
  if (found) return [update(found.retrieval, { messagePath: newPath(found.retrieval) })];
  const retrieval = bpmnFactory.create('bpmn:CorrelationPropertyRetrievalExpression', { messageRef: message });
  retrieval.messagePath = newPath(retrieval);
  const alike = correlationProperties(definitions).find((p) => retrievalsOf(p).length && retrievalsOf(p).every((r) => pathText(r) === key));
  if (alike) {
    retrieval.$parent = alike;
    return [update(alike, { correlationPropertyRetrievalExpression: [...retrievalsOf(alike), retrieval] })];
  }
  const property = bpmnFactory.create('bpmn:CorrelationProperty', /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? { name: key } : {});
  property.$parent = definitions;
  retrieval.$parent = property;
  property.get('correlationPropertyRetrievalExpression').push(retrieval);
  const roots = definitions.get('rootElements').slice();
  roots.splice(roots.indexOf(message) + 1 || roots.length, 0, property);
  return [update(definitions, { rootElements: roots })];
}

/** Commands that take `message`'s key away: its retrieval expression goes, and a property left without any
 * goes too (Spiff refuses an empty one), with the correlation keys' references to it. */
function clearKeyCommands(element, definitions, message) {
  const found = retrievalFor(definitions, message);
  if (!found) return [];
  const update = (moddleElement, properties) => ({ cmd: 'element.updateModdleProperties', context: { element, moddleElement, properties } });
  const { property, retrieval } = found;
  const remaining = retrievalsOf(property).filter((r) => r !== retrieval);
  if (remaining.length) return [update(property, { correlationPropertyRetrievalExpression: remaining })];
  const commands = [update(definitions, { rootElements: definitions.get('rootElements').filter((e) => e !== property) })];
  for (const collaboration of definitions.get('rootElements').filter((e) => is(e, 'bpmn:Collaboration'))) {
    for (const correlationKey of collaboration.get('correlationKeys') || []) {
      const refs = correlationKey.get('correlationPropertyRef') || [];
      if (refs.includes(property)) commands.push(update(correlationKey, { correlationPropertyRef: refs.filter((r) => r !== property) }));
    }
  }
  return commands;
}

function CorrelationKeyEntry(props) {
  const { element } = props;
  const commandStack = useService('commandStack');
  const bpmnFactory = useService('bpmnFactory');
  const debounce = useService('debounceInput');
  const bo = element.businessObject;
  const message = messageOf(bo);
  const definitions = definitionsOf(bo);
  const getValue = () => {
    const found = retrievalFor(definitions, messageOf(bo));
    return found ? pathText(found.retrieval) : '';
  };
  const setValue = (value) => {
    const key = (value || '').trim();
    const current = messageOf(bo);
    const commands = key ? keyCommands(element, definitions, current, key, bpmnFactory) : clearKeyCommands(element, definitions, current);
    if (commands.length) commandStack.execute('properties-panel.multi-command-executor', commands);
  };
  return TextFieldEntry({
    element,
    id: 'cf-correlation-key',
    label: 'Correlation key',
    description: `A Python expression over the process variables that gives message ${message.get('name') || message.get('id')} its correlation key, usually the variable that holds it (e.g. engagement_id). Every event and task of this message shares it; empty: the message correlates on the empty key.`,
    getValue,
    setValue,
    debounce,
  });
}

function NoMessageNote() {
  return h('div', { class: 'bio-properties-panel-entry', 'data-entry-id': 'cf-correlation-none' }, 'Pick or create the message (group Message) first: the key belongs to the message.');
}

function correlationGroup(element) {
  const entries = messageOf(element.businessObject)
    ? [{ id: 'cf-correlation-key', component: CorrelationKeyEntry, isEdited: isTextFieldEntryEdited }]
    : [{ id: 'cf-correlation-none', component: NoMessageNote }];
  return { id: 'cf-correlation', label: 'Correlation', entries };
}

// --------------------------------------------------------------------------------------------- regulation

function documentationOf(bo) {
  return (bo.get('documentation') || [])[0];
}

function useDocumentationSetter(element) {
  const commandStack = useService('commandStack');
  const bpmnFactory = useService('bpmnFactory');
  return (text) => {
    const bo = element.businessObject;
    const doc = documentationOf(bo);
    if (doc) {
      commandStack.execute('element.updateModdleProperties', { element, moddleElement: doc, properties: { text } });
    } else if (text) {
      const created = bpmnFactory.create('bpmn:Documentation', { text });
      created.$parent = bo;
      commandStack.execute('element.updateModdleProperties', { element, moddleElement: bo, properties: { documentation: [...(bo.get('documentation') || []), created] } });
    }
  };
}

function ClausesEntry(props) {
  const { element } = props;
  const debounce = useService('debounceInput');
  const write = useDocumentationSetter(element);
  const text = () => (documentationOf(element.businessObject) || { text: '' }).text || '';
  return TextFieldEntry({
    element,
    id: 'cf-clauses',
    label: 'Clause ids',
    description: 'The regulation clauses this element implements, e.g. 2.2.1, 6.1.1 (the documentation\'s first line carries them as [2.2.1][6.1.1]).',
    getValue: () => clausesOf(text()).join(', '),
    setValue: (value) => {
      const ids = readClauseIds(value);
      if (ids) write(withClauses(text(), ids));
    },
    validate: (value) => (readClauseIds(value) ? null : 'clause ids are numbers with dots, e.g. 2.2.1'),
    debounce,
  });
}

function AssumptionsEntry(props) {
  const { element } = props;
  const debounce = useService('debounceInput');
  const write = useDocumentationSetter(element);
  const text = () => (documentationOf(element.businessObject) || { text: '' }).text || '';
  return TextAreaEntry({
    element,
    id: 'cf-assumptions',
    label: 'Assumptions',
    description: 'One per line: rules the regulation does not state (each becomes an [assumption] line of the documentation).',
    getValue: () => assumptionsOf(text()).join('\n'),
    setValue: (value) => write(withAssumptions(text(), (value || '').split('\n'))),
    debounce,
    autoResize: true,
  });
}

function regulationGroup() {
  return {
    id: 'cf-regulation',
    label: 'Regulation',
    entries: [
      { id: 'cf-clauses', component: ClausesEntry, isEdited: isTextFieldEntryEdited },
      { id: 'cf-assumptions', component: AssumptionsEntry, isEdited: isTextAreaEntryEdited },
    ],
  };
}

// --------------------------------------------------------------------------------------------- provider

export default function ConsultflowPropertiesProvider(propertiesPanel, cfCatalogue, cfDecisions) {
  this.getGroups = (element) => (groups) => {
    const bo = element.businessObject;
    const kept = groups.filter((g) => !IGNORED_CAMUNDA_GROUPS.has(g.id));
    const ours = [];
    if (is(bo, 'bpmn:ServiceTask')) {
      ours.push(operationGroup(element, cfCatalogue));
      if (operatorOf(element)) ours.push(retryGroup());
    }
    if (is(bo, 'bpmn:BusinessRuleTask')) ours.push(decisionGroup(cfDecisions));
    if ((is(bo, 'bpmn:Event') && messageDefinition(bo)) || is(bo, 'bpmn:SendTask') || is(bo, 'bpmn:ReceiveTask')) {
      ours.push(messageGroup(element));
    }
    if ((is(bo, 'bpmn:Event') && messageDefinition(bo)) || is(bo, 'bpmn:SendTask') || is(bo, 'bpmn:ReceiveTask') || (is(bo, 'bpmn:MessageFlow') && bo.get('messageRef'))) {
      ours.push(correlationGroup(element));
    }
    for (const group of kept) {
      const unread = IGNORED_CAMUNDA_ENTRIES[group.id];
      if (unread && group.entries) group.entries = group.entries.filter((e) => !unread.has(e.id));
    }
    if (is(bo, 'bpmn:Activity') || is(bo, 'bpmn:Event')) ours.push(scriptsGroup());
    if (is(bo, 'bpmn:FlowElement') || is(bo, 'bpmn:Participant') || is(bo, 'bpmn:Process') || is(bo, 'bpmn:MessageFlow')) ours.push(regulationGroup());
    const after = kept.findIndex((g) => g.id === 'general');
    kept.splice(after + 1, 0, ...ours);
    return kept;
  };
  propertiesPanel.registerProvider(LOW_PRIORITY, this);
}
ConsultflowPropertiesProvider.$inject = ['propertiesPanel', 'cfCatalogue', 'cfDecisions'];

export const ConsultflowPropertiesProviderModule = {
  __init__: ['consultflowPropertiesProvider'],
  consultflowPropertiesProvider: ['type', ConsultflowPropertiesProvider],
};
