// Changes made elsewhere, pushed by the server: Server-Sent Events from /events/backends.
// The browser reconnects by itself after a dropped connection; when the server refuses the stream
// (a session that ended, say) it is reopened with a fresh session.

const MAX_BACKOFF_MS = 10000;

export class LiveUpdates {
  /**
   * @param {import('./api.js').Api} api
   * @param {{onChange: Function, onState: Function, onRefused: Function, onFarm: Function}} handlers
   *   onChange() on every change (and once connected), onState('live'|'reconnecting'),
   *   onRefused(error) when a new session cannot be had, onFarm(snapshot) every second (the farm view)
   */
  constructor(api, {onChange, onState, onRefused, onFarm}) {
    this.api = api;
    this.onChange = onChange;
    this.onFarm = onFarm;
    this.onState = onState;
    this.onRefused = onRefused;
    this.source = null;
    this.backoff = 1000;
    this.retryTimer = null;
  }

  start() {
    this.stop();
    const farm = this.onFarm ? '&farm=1' : '';
    const url = this.api.url(`events/backends?session_id=${encodeURIComponent(this.api.sessionId ?? '')}${farm}`);
    const source = new EventSource(url);
    this.source = source;
    source.addEventListener('ready', () => this.connected());
    source.addEventListener('backend', () => this.onChange());
    source.addEventListener('resync', () => this.onChange());
    source.addEventListener('farm', (event) => this.onFarm?.(JSON.parse(event.data)));
    source.addEventListener('error', () => this.dropped(source));
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.source?.close();
    this.source = null;
  }

  connected() {
    this.backoff = 1000;
    this.onState('live');
    this.onChange();
  }

  dropped(source) {
    if (source !== this.source) return;
    this.onState('reconnecting');
    if (source.readyState !== EventSource.CLOSED) return;  // the browser is already retrying
    this.retryTimer = setTimeout(() => this.reopen(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
  }

  /** The server refused the stream: check the session (making a new one if it ended), then retry. */
  async reopen() {
    try {
      await this.api.call('ListBackendTypes');
    } catch (error) {
      if (error.loginRequired) {
        this.stop();
        this.onRefused(error);
        return;
      }
    }
    this.start();
  }
}
