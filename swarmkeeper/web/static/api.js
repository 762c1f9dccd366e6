// The server's public API, called exactly as SwarmUI's web UI calls it: POST /API/<Route> with a
// JSON body carrying session_id; a lost session is replaced and the call retried (up to 3 times).

export class ApiError extends Error {
  /**
   * @param {string} message readable text, shown to the user as it is
   * @param {string} errorId SwarmUI's error_id, '' for a route's own refusal
   * @param {number} status the HTTP status (0 when the server could not be reached)
   */
  constructor(message, errorId = '', status = 200) {
    super(message);
    this.errorId = errorId;
    this.status = status;
  }

  /** True when no session can be had without logging in. */
  get loginRequired() {
    return this.errorId === 'login_required';
  }
}

export class Api {
  constructor(base = document.baseURI) {
    this.base = base;
    this.sessionId = null;
    this.userId = '';
    this.permissions = new Set();
    /** Called with the GetNewSession answer each time a new session is made. */
    this.onSession = () => {};
  }

  url(path) {
    return new URL(path, this.base).href;
  }

  may(flag) {
    return this.permissions.has('*') || this.permissions.has(flag);
  }

  /** POST one JSON body; answers {status, data} or throws ApiError for what is not JSON. */
  async post(route, body) {
    let response;
    try {
      response = await fetch(this.url(`API/${route}`), {
        method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify(body),
        credentials: 'same-origin',
      });
    } catch (error) {
      throw new ApiError(`Cannot reach the server (${error.message}).`, 'network', 0);
    }
    return {status: response.status, data: await readJson(response)};
  }

  async newSession() {
    this.sessionId = null;
    const {status, data} = await this.post('GetNewSession', {});
    if (data.error !== undefined || !data.session_id) {
      throw new ApiError(String(data.error ?? 'No session was given.'), 'login_required', status);
    }
    this.sessionId = data.session_id;
    this.userId = String(data.user_id ?? '');
    this.permissions = new Set(Array.isArray(data.permissions) ? data.permissions : []);
    this.onSession(data);
    return data;
  }

  /** Call a route; answers its JSON, or throws ApiError with the server's own words. */
  async call(route, params = {}) {
    for (let attempt = 0; ; attempt += 1) {
      if (!this.sessionId) await this.newSession();
      const {status, data} = await this.post(route, {...params, session_id: this.sessionId});
      if (data.error_id === 'invalid_session_id' && attempt < 3) {
        this.sessionId = null;
        continue;
      }
      if (data.error !== undefined) throw new ApiError(String(data.error), String(data.error_id ?? ''), status);
      return data;
    }
  }
}

async function readJson(response) {
  let data;
  try {
    data = await response.json();
  } catch {
    throw new ApiError(`The server answered HTTP ${response.status} without a JSON body.`, 'bad_response',
      response.status);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ApiError(`The server answered HTTP ${response.status} with something other than a JSON object.`,
      'bad_response', response.status);
  }
  return data;
}
