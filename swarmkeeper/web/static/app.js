// The Backends page: SwarmUI's Server → Backends tab, kept current by the server's push stream.
// It uses only the public API routes SwarmUI's own page calls, plus /events/backends.

import {Api} from './api.js';
import {BackendCard} from './cards.js';
import {confirmAction} from './dialog.js';
import {FarmView} from './farm.js';
import {byId, h, say, setAvailable} from './dom.js';
import {LiveUpdates} from './live.js';
import {LOGGED_IN, LoginView} from './login.js';
import {lacking, permissionSummary} from './permissions.js';

const REFRESH_DELAY_MS = 50;  // changes arriving together are read once
const POLL_MS = 3000;  // only while the push stream is down
const CLOCK_MS = 10000;  // keeps "last used" texts fresh
const LOGIN_ENDED = 'Your login has ended. Log in again to continue.';
const LIVE_TEXT = {connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…'};

class BackendsPage {
  constructor() {
    this.api = new Api();
    this.types = new Map();
    this.cards = new Map();
    this.running = null;
    this.rerun = false;
    this.soonTimer = null;
    /** Counts list reads; a card remembers the count when it was made, so a list asked for before
     *  a card was added (and answered after) cannot take that card away. */
    this.reads = 0;
    this.pollTimer = null;
    this.liveState = 'connecting';
    this.farm = new FarmView(byId('farm'));
    this.live = new LiveUpdates(this.api, {
      onFarm: (snapshot) => this.farm.update(snapshot),
      onChange: () => this.refreshSoon(),
      onState: (state) => this.setLiveState(state),
      onRefused: () => this.needLogin(LOGIN_ENDED),
    });
    this.login = new LoginView(this.api, () => this.start());
    this.api.onSession = () => this.showUser();
  }

  // --- start-up ---

  async boot() {
    this.wireToolbar();
    setInterval(() => this.liveState === 'live' && this.refresh(), CLOCK_MS);
    await this.start();
  }

  async start() {
    try {
      await this.api.newSession();
      if (!this.api.may('view_backends_list')) {
        this.block(lacking(this.api, 'view_backends_list'));
        return;
      }
      await this.loadTypes();
    } catch (error) {
      if (error.loginRequired) this.needLogin();
      else this.retryStart(`The page could not start: ${error.message}`);
      return;
    }
    this.pageMessage('');
    byId('blocked-view').hidden = true;
    byId('backends-view').hidden = false;
    await this.refresh();
    this.live.start();
  }

  retryStart(message) {
    this.pageMessage(`${message} Trying again…`);
    setTimeout(() => this.start(), POLL_MS);
  }

  needLogin(message = '') {
    this.live.stop();
    this.setLiveState('connecting');
    clearInterval(this.pollTimer);
    for (const id of [...this.cards.keys()]) this.dropCard(id);
    localStorage.removeItem(LOGGED_IN);
    for (const id of ['backends-view', 'blocked-view', 'server-status', 'user-box']) byId(id).hidden = true;
    this.login.show(message);
  }

  async logout() {
    try {
      await this.api.call('Logout');
    } catch (error) {
      this.pageMessage(`Could not log out: ${error.message}`);
    }
    localStorage.removeItem(LOGGED_IN);
    this.api.sessionId = null;
    await this.start();
  }

  block(reason) {
    byId('backends-view').hidden = true;
    byId('blocked-view').hidden = false;
    byId('blocked-message').textContent = reason;
  }

  showUser() {
    byId('user-box').hidden = !this.api.userId;
    byId('user-name').textContent = this.api.userId;
    byId('logout-button').hidden = localStorage.getItem(LOGGED_IN) !== 'true';
    const note = byId('permission-note');
    note.textContent = permissionSummary(this.api);
    note.hidden = !note.textContent;
  }

  pageMessage(text) {
    say(byId('page-message'), text, 'error');
  }

  // --- backend types and the toolbar ---

  async loadTypes() {
    const data = await this.api.call('ListBackendTypes');
    this.types = new Map(data.list.map((type) => [type.id, type]));
    const denied = lacking(this.api, 'add_remove_backends');
    const ordered = [...data.list.filter((type) => type.is_standard), ...data.list.filter((type) => !type.is_standard)];
    const buttons = ordered.map((type) => {
      const button = h('button', {type: 'button', class: 'add-button', text: type.name, title: type.description,
        dataset: {typeId: type.id, standard: String(type.is_standard), help: type.description},
        on: {click: () => this.addBackend(type)}});
      setAvailable(button, denied);
      return button;
    });
    byId('add-buttons').replaceChildren(...buttons);
    this.showAdvanced(byId('show-advanced').checked);
  }

  typeOf(typeId) {
    return this.types.get(typeId);
  }

  showAdvanced(show) {
    for (const button of byId('add-buttons').querySelectorAll('button[data-standard="false"]')) {
      button.hidden = !show;
    }
  }

  wireToolbar() {
    const advanced = byId('show-advanced');
    advanced.checked = localStorage.getItem('swarmkeeper.showAdvanced') === 'true';
    advanced.addEventListener('change', () => {
      localStorage.setItem('swarmkeeper.showAdvanced', String(advanced.checked));
      this.showAdvanced(advanced.checked);
    });
    byId('show-nonreal').addEventListener('change', () => this.refresh());
    byId('restart-all').addEventListener('click', () => this.restartAll());
    byId('free-vram').addEventListener('click', () => this.freeAll(false));
    byId('free-ram').addEventListener('click', () => this.freeAll(true));
    byId('logout-button').addEventListener('click', () => this.logout());
  }

  refreshToolbar() {
    setAvailable(byId('restart-all'), lacking(this.api, 'restart_backends'));
    setAvailable(byId('free-vram'), lacking(this.api, 'control_mem_clean'));
    setAvailable(byId('free-ram'), lacking(this.api, 'control_mem_clean'));
  }

  // --- reading the list ---

  /** Re-read soon; the changes of a burst cause one read (and a steady flow, one read per delay). */
  refreshSoon() {
    if (this.soonTimer !== null) return;
    this.soonTimer = setTimeout(() => {
      this.soonTimer = null;
      this.refresh();
    }, REFRESH_DELAY_MS);
  }

  /** Re-read the list and the status line; a call made while one runs runs once more after it. */
  async refresh() {
    if (this.running) {
      this.rerun = true;
      return this.running;
    }
    this.running = this.reload().finally(() => {
      this.running = null;
      if (this.rerun) {
        this.rerun = false;
        this.refresh();
      }
    });
    return this.running;
  }

  async reload() {
    try {
      const read = ++this.reads;
      const list = await this.api.call('ListBackends', {nonreal: byId('show-nonreal').checked});
      this.reconcile(Object.values(list), read);
      await this.readStatus();
      this.pageMessage('');
    } catch (error) {
      if (error.loginRequired) this.needLogin(LOGIN_ENDED);
      else this.pageMessage(`Could not read the backends: ${error.message}`);
    }
  }

  /** Bring the cards in line with a list read as number ``read``: a card made since that read
   *  began (an add answered while the list was on its way) is not in it, and stays. */
  reconcile(backends, read) {
    const seen = new Set();
    for (const backend of backends) {
      seen.add(backend.id);
      const card = this.cards.get(backend.id);
      if (card) card.update(backend);
      else this.addCard(backend);
    }
    for (const [id, card] of [...this.cards]) {
      if (!seen.has(id) && card.madeAtRead < read) this.dropCard(id);
    }
    this.orderCards();
    this.refreshToolbar();
    byId('empty-note').hidden = this.cards.size > 0;
    byId('summary').textContent = summarize(backends);
  }

  async readStatus() {
    const line = byId('server-status');
    line.hidden = !this.api.may('fundamental_generate_tab_access');
    if (line.hidden) return;
    const status = (await this.api.call('GetCurrentStatus')).backend_status ?? {};
    line.dataset.class = status.class || 'ok';
    line.dataset.status = status.status ?? '';
    line.textContent = status.message || 'All backends are ready.';
  }

  // --- cards ---

  addCard(backend) {
    this.dropCard(backend.id);  // one card per id: the map and the page never disagree
    const card = new BackendCard(this, backend);
    card.madeAtRead = this.reads;
    this.cards.set(backend.id, card);
    byId('backends').append(card.element);
    return card;
  }

  dropCard(id) {
    const card = this.cards.get(id);
    card?.dispose();
    card?.element.remove();
    this.cards.delete(id);
  }

  /** Keep cards in id order (lower ids are tried first), moving elements only when needed. */
  orderCards() {
    const container = byId('backends');
    const wanted = [...this.cards.keys()].sort((a, b) => a - b).map((id) => this.cards.get(id).element);
    if (wanted.some((element, index) => container.children[index] !== element)) container.append(...wanted);
  }

  /** A card's backend got a new id (EditBackend's new_id). */
  rekeyed(oldId, backend) {
    this.dropCard(oldId);
    // A list read since the edit was applied may have shown the new id already.
    const shown = this.cards.get(backend.id);
    if (shown) shown.update(backend);
    (shown ?? this.addCard(backend)).tell(`Saved; the ID is now ${backend.id}.`);
    this.orderCards();
    this.cards.get(backend.id).buttons.edit.focus();
  }

  /** A card's backend was deleted from this page. */
  removed(id) {
    this.dropCard(id);
    say(byId('all-message'), `Deleted backend #${id}.`);
    byId('empty-note').hidden = this.cards.size > 0;
    byId('backends').focus();
  }

  setLiveState(state) {
    this.liveState = state;
    const indicator = byId('live-indicator');
    indicator.dataset.state = state;
    indicator.textContent = LIVE_TEXT[state] ?? state;
    clearInterval(this.pollTimer);
    if (state !== 'live') this.pollTimer = setInterval(() => this.refresh(), POLL_MS);
  }

  // --- actions on many backends ---

  async addBackend(type) {
    const ok = await confirmAction({title: `Add a "${type.name}" backend?`, message: type.description,
      warning: type.is_standard ? '' : 'This type is marked for advanced users only. Most people want one of '
        + 'the standard types instead.', confirmText: 'Add backend'});
    if (!ok) return;
    const message = byId('add-message');
    say(message, '');
    try {
      const backend = await this.api.call('AddNewBackend', {type_id: type.id});
      const card = this.cards.get(backend.id) ?? this.addCard(backend);
      this.orderCards();
      card.startEdit();
      card.element.scrollIntoView({block: 'nearest'});
    } catch (error) {
      say(message, `Could not add the backend: ${error.message}`, 'error');
    }
    this.refreshSoon();
  }

  async restartAll() {
    const ok = await confirmAction({title: 'Restart all backends?', message: 'Every running or errored backend '
      + 'shuts down (after its running work finishes) and starts again.', confirmText: 'Restart all'});
    if (ok) await this.runForAll('RestartBackends', {}, (data) => `Restarting ${plural(data.count, 'backend')}.`);
  }

  async freeAll(systemRam) {
    const what = systemRam ? 'VRAM and system RAM' : 'VRAM';
    await this.runForAll('FreeBackendMemory', {system_ram: systemRam}, (data) => (data.result
      ? `Freed ${what} on ${plural(data.count, 'backend')}.` : 'No running backend to free memory on.'));
  }

  async runForAll(route, params, describe) {
    const message = byId('all-message');
    say(message, 'Working…');
    try {
      say(message, describe(await this.api.call(route, params)));
    } catch (error) {
      say(message, error.message, 'error');
    }
    this.refreshSoon();
  }
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** "3 backends: 2 running, 1 errored". */
function summarize(backends) {
  const counts = new Map();
  for (const backend of backends) counts.set(backend.status, (counts.get(backend.status) ?? 0) + 1);
  const parts = [...counts].map(([status, count]) => `${count} ${status}`);
  return backends.length ? `${plural(backends.length, 'backend')}: ${parts.join(', ')}` : '';
}

new BackendsPage().boot();
