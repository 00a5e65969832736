// Renders the progress state into the server-rendered page (no innerHTML of data).

import { duration, humanize, opTitle, statusLabel } from "./progress.js";

const CONNECTION_TEXT = {
  connecting: "Connecting…",
  live: "Live updates on.",
  reconnecting: "Connection lost — reconnecting…",
  polling: "Live updates unavailable — checking every few seconds.",
  stopped: "Updates stopped.",
};

const STOP_TEXT = {
  unauthorized: "Your session has ended. Open your sign-in link again to see live progress.",
  "not-found": "This service is no longer available to you.",
};

const STATE_TEXT = { done: "done", running: "in progress", failed: "failed", rolled_back: "undone" };

export class View {
  constructor(doc, plans) {
    this.doc = doc;
    this.plans = plans;
    this.$ = (id) => doc.getElementById(id);
    this.lastAnnounced = "";
    this.pending = false;
  }

  // Coalesce renders to one per frame: a catch-up burst paints once.
  schedule(state, conn) {
    this.latest = [state, conn];
    if (this.pending) return;
    this.pending = true;
    const paint = () => {
      this.pending = false;
      this.render(...this.latest);
    };
    if (this.doc.visibilityState === "hidden") setTimeout(paint, 0);
    else requestAnimationFrame(paint);
  }

  announce(text) {
    if (!text || text === this.lastAnnounced) return;
    this.lastAnnounced = text;
    this.$("announcer").textContent = text;
  }

  render(state, conn) {
    const title = opTitle(state.operation);
    this.$("op-title").textContent = title;

    const status = this.$("service-status");
    status.textContent = state.statusLabel;
    status.className = `status status-${state.serviceStatus}`;

    this.$("phase").textContent = phaseText(state, conn);

    const pct = Math.round(state.percent);
    const bar = this.$("bar");
    bar.setAttribute("aria-valuenow", String(pct));
    const stepText = state.current && state.total ? `Step ${state.current} of ${state.total}, ` : "";
    bar.setAttribute("aria-valuetext", `${stepText}${pct} %`);
    bar.dataset.final = state.final ?? "";
    this.$("fill").style.width = `${pct}%`;
    this.$("percent").textContent = `${pct} %`;

    this.$("step-status").textContent = state.stepStatus ? humanize(state.stepStatus) : "—";
    this.$("step-message").textContent = state.message ?? "—";
    if (state.updatedAt) {
      const t = this.$("updated");
      const d = new Date(state.updatedAt);
      t.dateTime = d.toISOString();
      t.textContent = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
      t.title = d.toString();
    }

    const connEl = this.$("connection");
    connEl.dataset.mode = conn.mode;
    connEl.textContent = (conn.mode === "stopped" && STOP_TEXT[conn.detail]) || CONNECTION_TEXT[conn.mode] || "";

    this.renderSteps(state);
  }

  renderSteps(state) {
    const list = this.$("steps");
    const plan = this.plans[state.operation] || [];
    const rows = [];
    const total = state.total || plan.length;
    const seen = new Map(state.steps.map((s) => [s.step, s]));
    const numbers = new Set([...plan.map((p) => p.step), ...seen.keys()]);
    // A settled service with no recent events has no steps to show.
    if (state.events === 0 && !state.transitional) numbers.clear();
    for (const n of [...numbers].sort((a, b) => a - b)) {
      if (n > total && !seen.has(n)) continue;
      const planned = plan.find((p) => p.step === n);
      const s = seen.get(n);
      rows.push({
        step: n,
        name: humanize(s?.status ?? planned?.status ?? `step ${n}`),
        message: s?.message ?? planned?.message ?? "",
        state: s ? s.state : state.final === null ? "pending" : "skipped",
        took: s && s.endedAt !== null ? duration(s.endedAt - s.startedAt) : "",
      });
    }
    list.replaceChildren(...rows.map((r) => this.stepItem(r)));
    const empty = this.$("steps-empty");
    empty.hidden = rows.length > 0;
  }

  stepItem(r) {
    const li = this.doc.createElement("li");
    li.dataset.step = String(r.step);
    li.dataset.state = r.state;
    const name = this.doc.createElement("span");
    name.className = "step-name";
    name.textContent = r.name;
    const meta = this.doc.createElement("span");
    meta.className = "step-meta";
    const stateText = STATE_TEXT[r.state] ?? (r.state === "pending" ? "to do" : "not run");
    meta.textContent = r.took ? `${stateText} · ${r.took}` : stateText;
    li.dataset.duration = r.took;
    const msg = this.doc.createElement("span");
    msg.className = "step-message";
    msg.textContent = r.message;
    li.append(name, meta, msg);
    return li;
  }
}

export function phaseText(state, conn) {
  const title = opTitle(state.operation);
  if (state.final === "completed") return `${title} complete`;
  if (state.final === "failed") {
    const s = [...state.steps].reverse().find((x) => x.state === "failed");
    return s && state.total ? `${title} failed at step ${s.step} of ${state.total}` : `${title} failed`;
  }
  if (state.final === null && state.serviceStatus === "awaiting_ont") {
    return "Provisioning starts by itself once your fibre box is connected";
  }
  if (state.current && state.total) return `Step ${state.current} of ${state.total}`;
  if (!conn.connected) return conn.mode === "stopped" ? "Updates stopped" : "Connecting…";
  if (state.transitional) return `Waiting for ${title.toLowerCase()} to start…`;
  return `No operation in progress (${statusLabel(state.serviceStatus, state.error)})`;
}
