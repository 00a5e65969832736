// Lifecycle events of one service: SSE first, polling the history when SSE fails.
//
// - EventSource on the relay, same origin: the session cookie authenticates it and
//   no token ever goes into the URL.
// - Any error closes it and reconnects after an exponential backoff (with jitter).
//   A recreated EventSource cannot send Last-Event-ID (the relay takes it only as a
//   header), so a new connection gets the latest operation again from the relay's
//   catch-up; the caller drops ids it has seen.
// - After FALLBACK_AFTER failures in a row, poll GET .../events?after=<last id>
//   every POLL_MS and keep trying SSE now and then; the first SSE that opens stops
//   the polling. No polling while SSE works.

export const DEFAULTS = {
  backoffMs: 500, // first reconnect delay, doubled per failure
  maxBackoffMs: 30000,
  fallbackAfter: 3, // SSE failures in a row before polling starts
  pollMs: 2000,
  stableMs: 10000, // a connection that lived this long resets the failure count
};

export class LiveEvents {
  // onEvent({id, type, data}); onMode(mode, detail) with mode one of
  // "connecting" | "live" | "reconnecting" | "polling" | "stopped".
  constructor({ sseUrl, eventsUrl, eventTypes, lastId, onEvent, onMode, options }) {
    this.sseUrl = sseUrl;
    this.eventsUrl = eventsUrl;
    this.eventTypes = eventTypes;
    this.lastId = lastId;
    this.onEvent = onEvent;
    this.onMode = onMode;
    this.opt = { ...DEFAULTS, ...(options || {}) };
    this.es = null;
    this.failures = 0;
    this.retryTimer = null;
    this.pollTimer = null;
    this.polling = false;
    this.stopped = false;
    this.mode = null;
  }

  start() {
    this.#setMode("connecting");
    this.#openSse();
  }

  stop(detail) {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.#stopPolling();
    if (this.es) this.es.close();
    this.es = null;
    this.#setMode("stopped", detail);
  }

  #setMode(mode, detail) {
    if (this.mode === mode && !detail) return;
    this.mode = mode;
    this.onMode(mode, detail);
  }

  #deliver(id, type, data) {
    const n = Number(id);
    if (Number.isFinite(n) && (this.lastId === null || n > this.lastId)) this.lastId = n;
    this.onEvent({ id: n, type, data });
  }

  #openSse() {
    if (this.stopped) return;
    const es = new EventSource(this.sseUrl);
    this.es = es;
    let openedAt = null;
    es.onopen = () => {
      openedAt = Date.now();
      this.#stopPolling();
      this.#setMode("live");
    };
    for (const type of this.eventTypes) {
      es.addEventListener(type, (msg) => {
        let data;
        try {
          data = JSON.parse(msg.data);
        } catch {
          return;
        }
        this.#deliver(msg.lastEventId, type, data);
      });
    }
    es.onerror = () => {
      es.close();
      if (this.es !== es || this.stopped) return;
      this.es = null;
      const stable = openedAt !== null && Date.now() - openedAt >= this.opt.stableMs;
      this.failures = stable ? 1 : this.failures + 1;
      if (this.failures >= this.opt.fallbackAfter) this.#startPolling();
      else this.#setMode("reconnecting");
      this.#scheduleSse();
    };
  }

  #scheduleSse() {
    clearTimeout(this.retryTimer);
    const base = Math.min(
      this.opt.backoffMs * 2 ** Math.max(0, this.failures - 1),
      this.opt.maxBackoffMs,
    );
    const delay = Math.round(base * (0.8 + Math.random() * 0.4));
    this.retryTimer = setTimeout(() => this.#openSse(), delay);
  }

  #startPolling() {
    if (this.polling || this.stopped) return;
    this.polling = true;
    this.#setMode("polling");
    this.#poll();
  }

  #stopPolling() {
    this.polling = false;
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
  }

  async #poll() {
    if (!this.polling || this.stopped) return;
    try {
      let more = true;
      while (more && this.polling) {
        const url = new URL(this.eventsUrl, location.href);
        if (this.lastId !== null) url.searchParams.set("after", String(this.lastId));
        const r = await fetch(url, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
          cache: "no-store",
        });
        if (r.status === 401) return this.stop("unauthorized");
        if (r.status === 404) return this.stop("not-found");
        if (!r.ok) break;
        const items = await r.json();
        if (!this.polling) return; // SSE came back meanwhile; it delivers from here
        for (const item of items) this.#deliver(item.id, item.event_type, item.data);
        more = items.length >= 1000;
      }
    } catch {
      // Network error (the server is down): try again at the next tick.
    }
    if (this.polling && !this.stopped) {
      this.pollTimer = setTimeout(() => this.#poll(), this.opt.pollMs);
    }
  }
}
