// @ts-check
// The signaling connection: one WebSocket to /ws speaking class protocol v1, with keepalive,
// automatic reconnect with backoff and resume. Emits "message" for every server message and
// "status" / "fatal" for the connection's life.

/** Close codes (signaling/src/protocol/errors.rs `close_code`). */
export const CLOSE = {
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  MESSAGE_TOO_BIG: 1009,
  JOIN_REFUSED: 4001,
  REMOVED: 4002,
  CLASS_ENDED: 4003,
  SLOW_CONSUMER: 4004,
  JOIN_TIMEOUT: 4005,
  IDLE_TIMEOUT: 4006,
  REPLACED: 4007,
  RATE_LIMITED: 4008,
};

/** Close codes after which reconnecting cannot help. */
const FINAL = new Set([CLOSE.JOIN_REFUSED, CLOSE.REMOVED, CLOSE.CLASS_ENDED, CLOSE.REPLACED]);

const PING_EVERY_MS = 20_000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 5_000;

/**
 * A random id this browser keeps and sends in `join`, so a teacher's removal also refuses this
 * browser on a shared link. Clearing the site's storage makes a new one (docs/security.md).
 * @param {Pick<Storage, 'getItem' | 'setItem'>} [storage]
 * @returns {string | undefined}
 */
export function browserId(storage = window.localStorage) {
  try {
    let id = storage.getItem('aula.browser');
    if (!id || !/^[A-Za-z0-9_-]{1,64}$/.test(id)) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
      storage.setItem('aula.browser', id);
    }
    return id;
  } catch {
    return undefined; // storage disabled: join without one
  }
}

/**
 * The signaling WebSocket's URL on the server this page came from.
 * @param {{protocol: string, host: string}} [loc]
 * @returns {string}
 */
export function wsUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class Signaling extends EventTarget {
  /**
   * @param {{url: string, token: string, name?: string}} opts
   */
  constructor({ url, token, name }) {
    super();
    this.url = url;
    this.token = token;
    this.name = name;
    /** @type {string | null} */
    this.resumeToken = null;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.attempt = 0;
    this.closedForGood = false;
    this.joined = false;
    /** Waiting to be let in (the server answered `waiting`): only ping and leave go out. */
    this.waiting = false;
    /** @type {import('./protocol.js').ErrorMsg | null} the last `error`, to explain a 4001 close */
    this.lastError = null;
    /** @type {import('./protocol.js').Notice | null} `removed` / `class_ended`, to explain 4002 / 4003 */
    this.lastNotice = null;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pingTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retryTimer = undefined;
    this.onOnline = () => this.retryNow();
    window.addEventListener('online', this.onOnline);
  }

  connect() {
    if (this.closedForGood) return;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    this.joined = false;
    this.waiting = false;
    this.emit('status', { state: this.attempt === 0 ? 'connecting' : 'reconnecting', attempt: this.attempt });
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.sendJoin(ws);
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'waiting') {
        // Not in yet, but connected: keep the connection alive while a teacher decides.
        this.waiting = true;
        this.attempt = 0;
        this.startPing();
      } else if (msg.type === 'admitted') {
        this.sendJoin(ws); // let in: the same join again, on this connection
      } else if (msg.type === 'welcome') {
        this.waiting = false;
        this.joined = true;
        this.attempt = 0;
        this.resumeToken = msg.resume_token;
        this.startPing();
        this.emit('status', { state: 'connected', resumed: msg.resumed });
      } else if (msg.type === 'error') {
        this.lastError = msg;
      } else if (msg.type === 'removed' || msg.type === 'class_ended') {
        this.lastNotice = msg;
      }
      this.emit('message', msg);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return; // a socket we already replaced
      this.stopPing();
      this.ws = null;
      this.joined = false;
      this.waiting = false;
      this.onClosed(ev.code, ev.reason);
    };
    // Errors are always followed by close; nothing to do here.
    ws.onerror = () => {};
  }

  /**
   * Sends `join` (with our resume token, if any) on a connection.
   * @param {WebSocket} ws
   */
  sendJoin(ws) {
    /** @type {import('./protocol.js').ClientMessage} */
    const join = { type: 'join', token: this.token };
    if (this.name) join.name = this.name;
    if (this.resumeToken) join.resume = this.resumeToken;
    const browser = browserId();
    if (browser) join.browser = browser;
    ws.send(JSON.stringify(join));
  }

  /**
   * @param {number} code the WebSocket close code
   * @param {string} reason
   */
  onClosed(code, reason) {
    if (this.closedForGood) return;
    if (FINAL.has(code)) {
      this.closedForGood = true;
      this.emit('fatal', { code, reason, error: this.lastError, notice: this.lastNotice });
      return;
    }
    // 1001 going away, 1006 network loss, 4006 idle timeout, and the transient rest: back off and resume.
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt) * (0.8 + Math.random() * 0.4);
    this.attempt += 1;
    this.emit('status', { state: 'waiting', code, attempt: this.attempt, retryInMs: Math.round(delay) });
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  /** Skip the remaining backoff (the network came back, or the user asked). */
  retryNow() {
    if (this.closedForGood || this.ws) return;
    this.connect();
  }

  startPing() {
    this.stopPing();
    this.pingTimer = setInterval(() => this.send({ type: 'ping' }), PING_EVERY_MS);
  }

  stopPing() {
    clearInterval(this.pingTimer);
    this.pingTimer = undefined;
  }

  /**
   * Sends a message when joined; returns false when it was dropped (connection down).
   * @param {import('./protocol.js').ClientMessage} msg
   * @returns {boolean}
   */
  send(msg) {
    const allowed = this.joined || (this.waiting && (msg.type === 'ping' || msg.type === 'leave'));
    if (!this.ws || !allowed || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** Leaves the class for good. */
  leave() {
    this.send({ type: 'leave' });
    this.shutdown();
  }

  shutdown() {
    this.closedForGood = true;
    this.stopPing();
    clearTimeout(this.retryTimer);
    window.removeEventListener('online', this.onOnline);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      try {
        ws.close(1000, 'leaving');
      } catch {
        /* already closed */
      }
    }
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
