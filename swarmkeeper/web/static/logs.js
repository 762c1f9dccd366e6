// A backend's recent log lines (ListRecentLogMessages, type `backend-<id>`), read while shown.

import {h} from './dom.js';

const POLL_MS = 1500;
const MAX_LINES = 500;

export class LogPanel {
  constructor(api, backendId) {
    this.api = api;
    this.type = `backend-${backendId}`;
    this.lastSequence = 0;
    this.timer = null;
    this.lines = h('pre', {class: 'log-lines', tabindex: '0', 'aria-label': `Log of backend #${backendId}`});
    this.note = h('p', {class: 'log-note muted', role: 'status', text: 'Reading the log…'});
    this.element = h('section', {class: 'log-panel', hidden: true},
      h('h4', {text: `Log (${this.type})`}), this.lines, this.note);
  }

  get open() {
    return !this.element.hidden;
  }

  show() {
    this.element.hidden = false;
    this.poll();
  }

  hide() {
    this.element.hidden = true;
    clearTimeout(this.timer);
    this.timer = null;
  }

  async poll() {
    clearTimeout(this.timer);
    try {
      const data = await this.api.call('ListRecentLogMessages',
        {types: [this.type], last_sequence_ids: {[this.type]: this.lastSequence}});
      this.append(data.data?.[this.type] ?? []);
    } catch (error) {
      this.note.textContent = `Could not read the log: ${error.message}`;
    }
    if (this.open) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  append(lines) {
    const atBottom = this.lines.scrollTop + this.lines.clientHeight >= this.lines.scrollHeight - 4;
    for (const line of lines) {
      this.lastSequence = Math.max(this.lastSequence, line.sequence_id);
      this.lines.append(h('span', {class: `log-line level-${String(line.level).toLowerCase()}`,
        text: `${line.time} [${line.level}] ${line.message}\n`}));
    }
    while (this.lines.childElementCount > MAX_LINES) this.lines.firstElementChild.remove();
    const count = this.lines.childElementCount;
    this.note.textContent = count ? `${count} recent line${count === 1 ? '' : 's'}.` : 'No log lines yet.';
    if (atBottom) this.lines.scrollTop = this.lines.scrollHeight;
  }
}
