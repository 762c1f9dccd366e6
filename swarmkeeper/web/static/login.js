// The login form, for servers with accounts: SwarmUI's Login route, with the password pre-hashed
// in the browser as SwarmUI's own login page does (the server hashes it again).

import {byId} from './dom.js';

/** SwarmUI's client-side pre-hash: SHA-256 of `swarmclientpw:<user>:<password>`, lower-case hex. */
export async function prehash(username, password) {
  const text = `swarmclientpw:${username}:${password}`;
  if (!globalThis.crypto?.subtle) return `__swarmdoprehash:${text}`;  // not a secure context: server hashes
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Set while this browser is logged in through this page (the login cookie itself is HttpOnly). */
export const LOGGED_IN = 'swarmkeeper.loggedIn';

const MESSAGES = {
  invalid_login: 'Wrong username or password.',
  ratelimit: 'Too many attempts. Wait a minute, then try again.',
};

export class LoginView {
  /** @param {import('./api.js').Api} api @param {Function} onLoggedIn */
  constructor(api, onLoggedIn) {
    this.api = api;
    this.onLoggedIn = onLoggedIn;
    this.form = byId('login-form');
    this.error = byId('login-error');
    this.button = byId('login-button');
    this.form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  show(message = '') {
    byId('login-view').hidden = false;
    this.error.textContent = message;
    byId('login-username').focus();
  }

  hide() {
    byId('login-view').hidden = true;
  }

  async submit() {
    const username = byId('login-username').value.trim();
    const password = byId('login-password').value;
    if (!username || !password) {
      this.error.textContent = username ? 'Enter your password.' : 'Enter your username.';
      return;
    }
    this.error.textContent = '';
    this.button.disabled = true;
    try {
      await this.login(username, password);
    } catch (error) {
      this.error.textContent = error.message;
    } finally {
      this.button.disabled = false;
    }
  }

  async login(username, password) {
    const {data} = await this.api.post('Login', {username, password: await prehash(username, password)});
    if (!data.success) {
      throw new Error(MESSAGES[data.error_id] ?? String(data.error ?? 'Login failed; check your username and password.'));
    }
    byId('login-password').value = '';
    localStorage.setItem(LOGGED_IN, 'true');
    this.hide();
    await this.onLoggedIn();
  }
}
