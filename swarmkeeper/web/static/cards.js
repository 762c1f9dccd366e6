// One backend as a card: status colour and reason, the enable switch, the actions, the settings
// summary, the edit form and the log. A card is updated in place when the list is re-read.

import {confirmAction} from './dialog.js';
import {h, say, setAvailable} from './dom.js';
import {BackendForm, SECRET} from './form.js';
import {LogPanel} from './logs.js';
import {lacking} from './permissions.js';

const RESTARTABLE = new Set(['running', 'errored']);
const MESSAGE_MS = 8000;

export class BackendCard {
  /**
   * @param {object} page what a card needs of the page: api, typeOf(id), refreshSoon(),
   *   rekeyed(oldId, backend), removed(id)
   * @param {object} backend the ListBackends entry
   */
  constructor(page, backend) {
    this.page = page;
    this.api = page.api;
    this.backend = backend;
    this.form = null;
    this.logs = new LogPanel(this.api, backend.id);
    this.build();
    this.update(backend, true);
  }

  get id() {
    return this.backend.id;
  }

  get type() {
    return this.page.typeOf(this.backend.type);
  }

  get editing() {
    return this.form !== null;
  }

  build() {
    const id = this.backend.id;
    this.badge = h('span', {class: 'badge'});
    this.titleText = h('span', {class: 'card-title'});
    this.toggle = h('input', {type: 'checkbox', role: 'switch', class: 'toggle', dataset: {help: 'Enable or disable'},
      on: {change: () => this.toggled()}});
    this.typeLine = h('p', {class: 'type-name muted'});
    this.reason = h('p', {class: 'reason'});
    this.facts = h('dl', {class: 'facts'});
    this.message = h('p', {class: 'action-message', role: 'status', hidden: true});
    this.buttons = this.makeButtons();
    this.buttons.logs.setAttribute('aria-expanded', 'false');
    this.summary = h('dl', {class: 'settings-list'});
    this.details = h('details', {class: 'settings-details'}, h('summary', {text: 'Settings'}), this.summary);
    this.editArea = h('div', {class: 'edit-area', hidden: true});
    this.element = h('article', {class: 'card', id: `backend-${id}`, dataset: {backendId: String(id)},
      'aria-labelledby': `backend-${id}-heading`},
    h('header', {class: 'card-head'},
      this.badge,
      h('h3', {id: `backend-${id}-heading`}, h('span', {class: 'card-id', text: `#${id}`}), ' ', this.titleText),
      h('label', {class: 'switch'}, this.toggle, h('span', {text: 'Enabled'}))),
    this.typeLine, this.reason, this.facts, this.message,
    h('div', {class: 'actions'}, Object.values(this.buttons)),
    this.details, this.editArea, this.logs.element);
  }

  makeButtons() {
    const button = (name, text, help, handler, extra = '') => h('button', {type: 'button',
      class: `small ${name}-button ${extra}`.trim(), text, dataset: {help}, title: help, on: {click: handler}});
    return {
      edit: button('edit', 'Edit', 'Edit the title, ID and settings', () => this.startEdit()),
      restart: button('restart', 'Restart', 'Shut down and start again', () => this.restart(false)),
      force: button('force-restart', 'Force restart', 'Restart in any status, killing its process at once',
        () => this.restart(true)),
      free: button('free', 'Free VRAM', 'Ask the backend to free its VRAM', () => this.freeMemory()),
      logs: button('logs', 'Logs', 'Show or hide this backend\'s recent log lines', () => this.toggleLogs()),
      remove: button('delete', 'Delete', 'Shut down and delete this backend', () => this.remove(), 'danger'),
    };
  }

  /** Show the backend as the server now describes it. */
  update(backend, first = false) {
    const changedElsewhere = !first && backend.modcount > this.backend.modcount;
    this.backend = backend;
    const status = String(backend.status);
    this.element.dataset.status = status;
    this.element.className = `card status-${status}${backend.enabled ? '' : ' is-off'}${this.form ? ' is-editing' : ''}`;
    this.badge.textContent = status;
    this.titleText.textContent = backend.title || this.type?.name || backend.type;
    this.typeLine.textContent = this.typeDescription();
    this.typeLine.hidden = !this.typeLine.textContent;
    this.reason.textContent = status === 'running' ? '' : String(backend.status_reason ?? '');
    this.reason.hidden = !this.reason.textContent;
    if (!this.togglePending) this.toggle.checked = Boolean(backend.enabled);
    this.renderFacts();
    this.renderSummary();
    this.refreshButtons();
    if (changedElsewhere && this.form) this.form.changedElsewhere();
  }

  /** The type's name (when a title hides it) and, for an internal backend, its parent. */
  typeDescription() {
    const name = this.type?.name ?? this.backend.type;
    const parts = this.backend.title && this.backend.title !== name ? [name] : [];
    if (this.backend.parent_id !== undefined) parts.push(`internal, made by #${this.backend.parent_id}`);
    return parts.join(' · ');
  }

  renderFacts() {
    const backend = this.backend;
    const rows = [
      ['Last used', backend.time_since_used],
      ['In use', `${backend.usages ?? 0} of ${backend.max_usages}`],
      ['Init attempts', backend.init_attempts ?? 0],
      ...(backend.devices ?? []).map((device) => ['Device', deviceText(device)]),
    ];
    this.facts.replaceChildren(...rows.flatMap(([name, value]) => [h('dt', {text: name}), h('dd', {text: value})]));
  }

  renderSummary() {
    const settings = this.backend.settings ?? {};
    const described = new Map((this.type?.settings ?? []).map((setting) => [setting.name, setting]));
    const rows = Object.entries(settings).flatMap(([name, value]) => [
      h('dt', {text: name}), h('dd', {text: shownValue(described.get(name), value)})]);
    this.summary.replaceChildren(...rows);
  }

  refreshButtons() {
    const status = this.backend.status;
    const internal = this.backend.id < 0 ? 'Internal backends are managed by their parent.' : '';
    setAvailable(this.toggle, lacking(this.api, 'toggle_backends'));
    setAvailable(this.buttons.edit, lacking(this.api, 'edit_backends') || internal
      || (this.editing ? 'Already editing.' : ''));
    setAvailable(this.buttons.restart, lacking(this.api, 'restart_backends') || (RESTARTABLE.has(status) ? ''
      : `Only a running or errored backend can restart (this one is ${status}); Force restart works in any status.`));
    setAvailable(this.buttons.force, lacking(this.api, 'restart_backends'));
    setAvailable(this.buttons.free, lacking(this.api, 'control_mem_clean')
      || (status === 'running' ? '' : `Only a running backend holds memory to free (this one is ${status}).`));
    setAvailable(this.buttons.logs, lacking(this.api, 'view_logs'));
    setAvailable(this.buttons.remove, lacking(this.api, 'add_remove_backends') || internal);
  }

  /** A message under the card's facts; good news fades after a while, errors stay. */
  tell(text, kind = 'ok') {
    clearTimeout(this.messageTimer);
    say(this.message, text, kind);
    this.message.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    if (text && kind === 'ok') this.messageTimer = setTimeout(() => say(this.message, ''), MESSAGE_MS);
  }

  /** Run one API call for this card; its error is shown on the card. Answers the data or null. */
  async act(route, params) {
    this.tell('');
    try {
      return await this.page.api.call(route, params);
    } catch (error) {
      this.tell(error.message, 'error');
      return null;
    } finally {
      this.page.refreshSoon();
    }
  }

  // --- actions ---

  async toggled() {
    const enabled = this.toggle.checked;
    this.togglePending = true;
    this.toggle.disabled = true;
    const data = await this.act('ToggleBackend', {backend_id: this.id, enabled});
    this.togglePending = false;
    if (data === null) this.toggle.checked = !enabled;
    else this.tell(enabled ? 'Enabled.' : 'Disabled.');
    this.refreshButtons();
    this.toggle.focus();
  }

  async restart(force) {
    const ok = await confirmAction({
      title: force ? `Force restart backend #${this.id}?` : `Restart backend #${this.id}?`,
      message: force ? 'It restarts whatever it is doing: its process is killed at once, and work in progress fails.'
        : 'It shuts down (after its running work finishes) and starts again.',
      confirmText: force ? 'Force restart' : 'Restart', danger: force});
    if (!ok) return;
    const data = await this.act('RestartBackends', {backend: String(this.id), ...(force ? {force: true} : {})});
    if (data) this.tell(data.count ? 'Restarting…' : 'Nothing to restart: it is not running or errored.');
  }

  async freeMemory() {
    const data = await this.act('FreeBackendMemory', {backend: String(this.id), system_ram: false});
    if (!data) return;
    if (!data.result) this.tell('Nothing to free: the backend is not running.');
    else this.tell(data.count ? 'VRAM freed.' : 'The backend could not free its memory.', data.count ? 'ok' : 'error');
  }

  toggleLogs() {
    if (this.logs.open) this.logs.hide();
    else this.logs.show();
    this.buttons.logs.setAttribute('aria-expanded', String(this.logs.open));
  }

  async remove() {
    const ok = await confirmAction({title: `Delete backend #${this.id}?`,
      message: `"${this.titleText.textContent}" is shut down and removed. This cannot be undone.`,
      confirmText: 'Delete', danger: true});
    if (!ok) return;
    const data = await this.act('DeleteBackend', {backend_id: this.id});
    if (data) this.page.removed(this.id);
  }

  // --- editing ---

  startEdit() {
    this.form = new BackendForm(this.type, this.backend, {onSave: () => this.save(), onCancel: () => this.stopEdit()});
    this.editArea.replaceChildren(this.form.element);
    this.editArea.hidden = false;
    this.element.classList.add('is-editing');
    this.refreshButtons();
    this.form.focusFirst();
  }

  stopEdit() {
    this.form = null;
    this.editArea.replaceChildren();
    this.editArea.hidden = true;
    this.element.classList.remove('is-editing');
    this.refreshButtons();
    this.buttons.edit.focus();
  }

  async save() {
    const form = this.form;
    const request = form.request();
    if (!request) return;
    form.busy(true);
    try {
      const backend = await this.api.call('EditBackend', request);
      this.stopEdit();
      if (backend.id !== this.id) this.page.rekeyed(this.id, backend);
      else this.update(backend);
      this.tell('Saved.');
    } catch (error) {
      form.busy(false);
      form.showError(error.message);
    } finally {
      this.page.refreshSoon();
    }
  }

  /** Stop timers before the card goes away. */
  dispose() {
    this.logs.hide();
  }
}

/** A device of the backend's /system_stats: its name and VRAM in use. */
export function deviceText(device) {
  const gib = (bytes) => (bytes / 2 ** 30).toFixed(1);
  return `${device.name} · VRAM ${gib(device.vram_used)} of ${gib(device.vram_total)} GiB`
    + ` (torch ${gib(device.torch_vram_total - device.torch_vram_free)} GiB)`;
}

function shownValue(setting, value) {
  if (setting?.is_secret) return value === SECRET ? '•••••• (saved)' : '(not set)';
  if (setting?.type === 'dropdown') {
    const index = (setting.values ?? []).indexOf(value);
    if (index >= 0 && setting.value_names?.[index]) return setting.value_names[index];
  }
  if (value === '') return '(empty)';
  return typeof value === 'string' ? value : JSON.stringify(value);
}
