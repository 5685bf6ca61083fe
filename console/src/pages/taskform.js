// A user task's form in the DOM: one input per declared field (data-testid field-<id>), its error slot
// (field-error-<id>), the values read back, and errors placed next to their fields.
import { h } from '../dom.js';
import { inputKind } from '../forms.js';
import { bilingual, t } from '../i18n.js';

/** The input for one field, filled with `value` (or the field's default). */
function input(field, value, disabled) {
  const id = `f-${field.id}`;
  const common = {
    id,
    name: field.id,
    'data-testid': `field-${field.id}`,
    'aria-describedby': `e-${field.id}`,
    'aria-required': field.required ? 'true' : null,
    disabled,
  };
  const initial = value ?? field.default_value ?? '';
  switch (inputKind(field)) {
    case 'checkbox':
      return h('input', {
        ...common,
        type: 'checkbox',
        checked: value === undefined ? String(field.default_value).toLowerCase() === 'true' : Boolean(value),
      });
    case 'select':
      return h(
        'select',
        common,
        h('option', { value: '' }, t('choose')),
        (field.values ?? []).map((v) =>
          h('option', { value: v.id, selected: String(initial) === v.id }, bilingual(v.name || v.id)),
        ),
      );
    case 'textarea':
      return h('textarea', { ...common, rows: 4, value: String(initial) });
    case 'date':
      return h('input', { ...common, type: 'date', value: String(initial) });
    case 'datetime-local':
      return h('input', { ...common, type: 'datetime-local', value: String(initial).slice(0, 16) });
    default: {
      const numeric = field.type === 'long' ? 'numeric' : field.type === 'decimal' ? 'decimal' : null;
      return h('input', { ...common, type: 'text', inputmode: numeric, value: String(initial), autocomplete: 'off' });
    }
  }
}

/**
 * Renders the fields into a fieldset; `values` (field id → value) restores what was typed before a
 * re-render. Returns {element, read(), showErrors(problems), clearErrors()}.
 */
export function renderFields(fields, values = {}, disabled = false) {
  const rows = fields.map((field) => {
    const control = input(field, values[field.id], disabled);
    const label = bilingual(field.label || field.id);
    const kind = inputKind(field);
    const caption = h(
      'label',
      { for: control.id },
      label,
      field.required ? h('span', { class: 'req', title: t('required') }, ' *') : null,
    );
    const error = h('p', { class: 'field-error', id: `e-${field.id}`, 'data-testid': `field-error-${field.id}` });
    return h(
      'div',
      { class: ['field', `field-${kind}`], 'data-field': field.id },
      kind === 'checkbox' ? [control, caption] : [caption, control],
      error,
    );
  });
  const element = h('div', { class: 'fields' }, rows);

  const read = () => {
    const out = {};
    for (const field of fields) {
      const control = element.querySelector(`[name="${CSS.escape(field.id)}"]`);
      if (!control) continue;
      if (control.type === 'checkbox') out[field.id] = control.checked;
      else if (control.type === 'datetime-local' && control.value) out[field.id] = control.value;
      else out[field.id] = control.value;
    }
    return out;
  };

  const clearErrors = () => {
    for (const slot of element.querySelectorAll('.field-error')) slot.textContent = '';
    for (const control of element.querySelectorAll('[aria-invalid]')) control.removeAttribute('aria-invalid');
  };

  /** Puts each {field, text} next to its field; returns those that name no field of this form. */
  const showErrors = (problems) => {
    const unplaced = [];
    let first = null;
    for (const problem of problems) {
      const id = String(problem.field ?? '').replace(/^(variables(_json)?|values)[.[]/, '').replace(/\]$/, '');
      const slot = element.querySelector(`[data-testid="field-error-${CSS.escape(id)}"]`);
      const control = element.querySelector(`[name="${CSS.escape(id)}"]`);
      if (!slot || !control) {
        unplaced.push(problem);
        continue;
      }
      slot.textContent = slot.textContent ? `${slot.textContent} ${problem.text}` : problem.text;
      control.setAttribute('aria-invalid', 'true');
      first ??= control;
    }
    first?.focus();
    return unplaced;
  };

  return { element, read, showErrors, clearErrors };
}
