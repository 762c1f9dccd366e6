// The edit form of one backend, generated from its type's settings in ListBackendTypes:
// text, number, checkbox, dropdown (with value names), and secrets as password fields that keep
// the saved value unless the user types a new one (the API's "\t<secret>" round trip).

import {h, uniqueId} from './dom.js';

export const SECRET = '\t<secret>';

/** What a field reads: a value to send, or SKIP to leave the setting as it is. */
const SKIP = Symbol('skip');

export class BackendForm {
  /**
   * @param {object} type the backend type, as ListBackendTypes describes it
   * @param {object} backend the backend, as ListBackends shows it
   * @param {{onSave: Function, onCancel: Function}} handlers
   */
  constructor(type, backend, {onSave, onCancel}) {
    this.backend = backend;
    this.fields = new Map();
    this.notice = h('p', {class: 'form-notice', role: 'status', hidden: true});
    this.formError = h('p', {class: 'field-error form-error', role: 'alert'});
    this.saveButton = h('button', {type: 'submit', class: 'primary save-button', text: 'Save'});
    this.element = h('form', {class: 'backend-form', novalidate: ''},
      this.notice,
      this.addField('title', titleField(type, backend)),
      backend.id >= 0 ? this.addField('id', idField(backend)) : null,
      (type?.settings ?? []).map((setting) => this.addField(setting.name, settingField(setting, backend))),
      this.formError,
      h('div', {class: 'form-buttons'},
        h('button', {type: 'button', class: 'cancel-button', text: 'Cancel', on: {click: onCancel}}),
        this.saveButton));
    this.element.addEventListener('submit', (event) => {
      event.preventDefault();
      onSave();
    });
    this.element.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') onCancel();
    });
  }

  addField(key, field) {
    this.fields.set(key, field);
    return field.element;
  }

  focusFirst() {
    this.fields.get('title').input.focus();
  }

  /** The EditBackend request, or null after showing what must be fixed first. */
  request() {
    this.clearErrors();
    const body = {backend_id: this.backend.id, title: this.fields.get('title').read(), settings: {}};
    for (const [key, field] of this.fields) {
      if (key === 'title' || key === 'id') continue;
      const value = field.read();
      if (value !== SKIP) body.settings[key] = value;
    }
    const idText = this.fields.get('id')?.read() ?? String(this.backend.id);
    if (idText !== String(this.backend.id)) {
      if (!/^\d+$/.test(idText)) {
        this.showError('The ID must be a whole number, 0 or more.', 'id');
        return null;
      }
      body.new_id = idText;
    }
    return body;
  }

  /** Show a server's error next to the field it names, or under the form. */
  showError(message, key = fieldOfError(message)) {
    const field = key ? this.fields.get(key) : null;
    const target = field ? field.error : this.formError;
    target.textContent = message;
    if (field) field.input.setAttribute('aria-invalid', 'true');
    (field ? field.input : this.saveButton).focus();
  }

  clearErrors() {
    this.formError.textContent = '';
    for (const field of this.fields.values()) {
      field.error.textContent = '';
      field.input.removeAttribute('aria-invalid');
    }
  }

  busy(isBusy) {
    this.saveButton.disabled = isBusy;
    this.saveButton.textContent = isBusy ? 'Saving…' : 'Save';
  }

  /** Say that someone else changed this backend while it was being edited here. */
  changedElsewhere() {
    this.notice.textContent = 'This backend was changed elsewhere while you were editing it. '
      + 'Saving will replace those changes with what is in this form.';
    this.notice.hidden = false;
  }
}

/** Which field an error message is about: 'title', 'id', a setting's name, or '' for none. */
export function fieldOfError(message) {
  const settings = [...message.matchAll(/setting '([^']+)'/gi)];
  if (settings.length) return settings[settings.length - 1][1];  // the name comes last, after the value
  if (/parameter 'new_id'|^Backend ID \d+ is already in use/.test(message)) return 'id';
  if (/parameter 'title'|^Title is too long/.test(message)) return 'title';
  return '';
}

// --- fields: each is {element, input, error, read()} ---

function labelled(label, input, help = '', extra = null) {
  const id = uniqueId('field');
  input.id = id;
  const error = h('p', {class: 'field-error', id: `${id}-error`, role: 'alert'});
  const helpLine = help ? h('p', {class: 'help', id: `${id}-help`, text: help}) : null;
  input.setAttribute('aria-describedby', [helpLine?.id, error.id].filter(Boolean).join(' '));
  const isCheck = input.type === 'checkbox';
  const labelElement = h('label', {for: id, text: label});
  const element = h('div', {class: isCheck ? 'field check-field' : 'field', dataset: {field: label}},
    isCheck ? h('div', {class: 'check-row'}, input, labelElement) : [labelElement, input],
    extra, helpLine, error);
  return {element, input, error};
}

function titleField(type, backend) {
  const input = h('input', {type: 'text', name: 'title', value: backend.title ?? '',
    placeholder: type?.name ?? backend.type, autocomplete: 'off'});
  const field = labelled('Title', input, 'Shown on the card; blank shows the type name.');
  return {...field, read: () => input.value};
}

function idField(backend) {
  const input = h('input', {type: 'text', name: 'id', inputmode: 'numeric', value: String(backend.id),
    autocomplete: 'off'});
  const field = labelled('ID', input, 'Lower IDs are tried first for generations. Change it to reorder.');
  return {...field, read: () => input.value.trim()};
}

function settingField(setting, backend) {
  const value = backend.settings?.[setting.name];
  if (setting.is_secret) return secretField(setting, value);
  switch (setting.type) {
    case 'text': return textField(setting, value);
    case 'integer': return numberField(setting, value, '1');
    case 'decimal': return numberField(setting, value, 'any');
    case 'boolean': return booleanField(setting, value);
    case 'dropdown': return dropdownField(setting, value);
    default: return unsupportedField(setting, value);
  }
}

function textField(setting, value) {
  const input = h('input', {type: 'text', name: setting.name, value: String(value ?? ''),
    placeholder: setting.placeholder || undefined, autocomplete: 'off'});
  return {...labelled(setting.name, input, setting.description), read: () => input.value};
}

function numberField(setting, value, step) {
  const input = h('input', {type: 'number', name: setting.name, step, value: String(value ?? ''),
    inputmode: step === '1' ? 'numeric' : 'decimal'});
  // Sent as text, as SwarmUI's page sends numbers; the server says what it cannot read.
  return {...labelled(setting.name, input, setting.description), read: () => input.value};
}

function booleanField(setting, value) {
  const input = h('input', {type: 'checkbox', name: setting.name, checked: value === true});
  return {...labelled(setting.name, input, setting.description), read: () => input.checked};
}

function dropdownField(setting, value) {
  const values = setting.values ?? [];
  const names = setting.value_names ?? values;
  const current = String(value ?? '');
  const options = values.map((option, index) => h('option', {value: option, text: names[index] ?? option}));
  if (!values.includes(current)) options.unshift(h('option', {value: current, text: `${current} (not in the list)`}));
  const select = h('select', {name: setting.name}, options);
  select.value = current;
  return {...labelled(setting.name, select, setting.description), read: () => select.value};
}

function secretField(setting, value) {
  const saved = value === SECRET;
  const input = h('input', {type: 'password', name: setting.name, autocomplete: 'new-password', value: '',
    placeholder: saved ? 'Saved (leave empty to keep it)' : (setting.placeholder || 'Not set')});
  const clear = h('input', {type: 'checkbox', class: 'secret-clear'});
  const clearRow = saved ? h('label', {class: 'inline-check secret-clear-row'}, clear, 'Remove the saved value') : null;
  const read = () => {
    if (clear.checked) return '';
    if (input.value === '') return saved ? SECRET : '';
    return input.value;
  };
  return {...labelled(setting.name, input, setting.description, clearRow), read};
}

function unsupportedField(setting, value) {
  const input = h('input', {type: 'text', name: setting.name, value: JSON.stringify(value ?? null), readOnly: true});
  const help = `${setting.description}\n(A "${setting.type}" setting cannot be edited on this page; it is kept.)`;
  return {...labelled(setting.name, input, help.trim()), read: () => SKIP};
}
