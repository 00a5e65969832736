// The operator's bulk run page: counts, progress bar, failed and skipped services and
// the four-eyes buttons, following the bulk's event stream (SSE, session cookie).
//
// A connection without Last-Event-ID replays every event of the bulk, so the page is
// built from events alone; a reconnect replays again and ids already applied are
// dropped. There is no history endpoint to poll for a bulk: on errors the page keeps
// reconnecting SSE with backoff.

import { LiveEvents } from "./live.js";

const STATES = ["pending", "running", "completed", "failed", "skipped"];
const FINISHED = ["completed", "failed", "skipped"];
const ENDED = new Set(["completed", "cancelled", "rejected", "failed"]);
const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live updates on.",
  reconnecting: "Connection lost — reconnecting…",
  stopped: "Updates stopped.",
};

export function createBulkState({ status, counts, decided }) {
  return {
    status,
    counts: { ...counts },
    failed: new Map(), // service_id -> reason
    skipped: new Map(),
    lastId: null,
    decided,
  };
}

// Apply one event; false when it was applied before (a replay after a reconnect).
export function applyBulk(state, { id, type, data }) {
  if (state.lastId !== null && Number.isFinite(id) && id <= state.lastId) return false;
  if (Number.isFinite(id)) state.lastId = id;
  if (typeof data.status === "string") state.status = data.status;
  if (data.counts && typeof data.counts === "object") state.counts = { ...data.counts };
  if (type === "bulk.progress" && Array.isArray(data.items)) {
    for (const item of data.items) {
      state.failed.delete(item.service_id);
      state.skipped.delete(item.service_id);
      if (item.state === "failed") state.failed.set(item.service_id, item.reason ?? "");
      else if (item.state === "skipped") state.skipped.set(item.service_id, item.reason ?? "");
    }
  }
  return true;
}

export function totals(state) {
  const total = STATES.reduce((n, s) => n + (Number(state.counts[s]) || 0), 0);
  const done = FINISHED.reduce((n, s) => n + (Number(state.counts[s]) || 0), 0);
  let percent = total ? Math.round((done * 100) / total) : 0;
  if (!total && ENDED.has(state.status)) percent = 100;
  return { total, done, percent };
}

function readLabels(doc) {
  try {
    return JSON.parse(doc.getElementById("bulk-labels")?.textContent || "{}");
  } catch {
    return {};
  }
}

class BulkView {
  constructor(doc, root, labels) {
    this.doc = doc;
    this.root = root;
    this.labels = labels;
    this.$ = (id) => doc.getElementById(id);
  }

  render(state, conn) {
    const status = this.$("bulk-status");
    status.textContent = this.labels.statuses?.[state.status] ?? state.status;
    status.className = `status status-${state.status}`;
    this.root.dataset.status = state.status;

    const { total, done, percent } = totals(state);
    const bar = this.$("bar");
    bar.setAttribute("aria-valuenow", String(percent));
    bar.setAttribute("aria-valuetext", `${done} of ${total} services finished, ${percent} %`);
    bar.dataset.final = ENDED.has(state.status) ? state.status : "";
    this.$("fill").style.width = `${percent}%`;
    this.$("percent").textContent = `${percent} %`;
    this.$("done").textContent = String(done);
    this.$("total").textContent = String(total);
    for (const s of STATES) this.$(`count-${s}`).textContent = String(state.counts[s] ?? 0);

    this.renderItems("bulk-failed", state.failed);
    this.renderItems("bulk-skipped", state.skipped);

    const decision = this.$("decision");
    if (decision) decision.hidden = !(state.status === "awaiting_approval" && !state.decided);

    const connEl = this.$("connection");
    connEl.dataset.mode = conn.mode;
    connEl.textContent = CONNECTION_TEXT[conn.mode] ?? "";
  }

  renderItems(id, items) {
    const base = this.root.dataset.servicesUrl;
    const rows = [...items].map(([serviceId, reason]) => {
      const li = this.doc.createElement("li");
      li.dataset.serviceId = serviceId;
      const link = this.doc.createElement("a");
      link.href = `${base}/${encodeURIComponent(serviceId)}`;
      link.textContent = serviceId;
      const why = this.doc.createElement("span");
      why.className = "item-reason";
      why.textContent = reason || "no reason given";
      li.append(link, why);
      return li;
    });
    this.$(id).replaceChildren(...rows);
    this.$(`${id}-empty`).hidden = rows.length > 0;
  }

  announce(text) {
    this.$("announcer").textContent = text;
  }
}

// POST approve / reject with the session cookie and the page's CSRF token.
async function decide(root, action) {
  const r = await fetch(`${root.dataset.bulkUrl}/${action}`, {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { Accept: "application/json", "X-CSRF-Token": root.dataset.csrf },
  });
  let body = null;
  try {
    body = await r.json();
  } catch {
    // An error page or nothing: the status code says enough.
  }
  return { ok: r.ok, status: r.status, body };
}

function main() {
  const root = document.getElementById("main");
  const d = root?.dataset;
  if (!d || !d.bulkId) return;
  const labels = readLabels(document);
  const counts = {};
  for (const s of STATES) counts[s] = Number(document.getElementById(`count-${s}`)?.textContent) || 0;
  const state = createBulkState({ status: d.status, counts, decided: d.decided === "true" });
  const conn = { mode: "connecting" };
  const view = new BulkView(document, root, labels);
  const paint = () => view.render(state, conn);

  const message = document.getElementById("decision-message");
  for (const action of ["approve", "reject"]) {
    const button = document.getElementById(action);
    if (!button) continue;
    button.addEventListener("click", async () => {
      const buttons = [document.getElementById("approve"), document.getElementById("reject")];
      for (const b of buttons) b.disabled = true;
      let result;
      try {
        result = await decide(root, action);
      } catch {
        result = { ok: false, status: 0, body: null };
      }
      if (result.ok) {
        state.decided = true;
        if (typeof result.body?.status === "string") state.status = result.body.status;
        message.textContent =
          action === "approve" ? "Approved: the bulk run starts." : "Rejected: no service is changed.";
      } else {
        const detail = result.body?.detail;
        const why = typeof detail === "string" ? detail : `error ${result.status}`;
        message.textContent = `Not ${action === "approve" ? "approved" : "rejected"}: ${why}`;
        for (const b of buttons) b.disabled = false;
      }
      view.announce(message.textContent);
      paint();
    });
  }

  const live = new LiveEvents({
    sseUrl: d.sseUrl,
    eventsUrl: null,
    eventTypes: ["bulk.progress", "bulk.completed"],
    lastId: null,
    // No history endpoint to poll: keep reconnecting the stream instead.
    options: { fallbackAfter: Number.POSITIVE_INFINITY },
    onEvent(event) {
      if (applyBulk(state, event)) paint();
    },
    onMode(mode) {
      conn.mode = mode;
      paint();
    },
  });
  // For tests and debugging in the console; nothing reads it.
  window.fiberflowBulk = { state, conn, live };
  paint();
  live.start();
}

main();
