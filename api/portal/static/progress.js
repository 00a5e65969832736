// The progress of a service's latest operation, built from lifecycle events.
// Pure state: no DOM, no network. apply() is idempotent per event id (de-dupe).

export const OPERATIONS = {
  provisioning: { title: "Provisioning", running: "Provisioning…", done: "Active" },
  suspension: { title: "Suspension", running: "Suspending…", done: "Suspended" },
  resumption: { title: "Resumption", running: "Resuming…", done: "Active" },
  termination: { title: "Termination", running: "Terminating…", done: "Terminated" },
  reprovisioning: { title: "Reprovisioning", running: "Reprovisioning…", done: "Active" },
  // Ends where it started (active or suspended): no fixed "done" label.
  ont_replacement: { title: "ONT replacement", running: "Replacing your fibre box…", done: null },
};

export const STATUS_LABELS = {
  pending: "Pending",
  awaiting_ont: "Waiting for your fibre box to be connected",
  provisioning: "Provisioning…",
  active: "Active",
  suspending: "Suspending…",
  suspended: "Suspended",
  resuming: "Resuming…",
  terminating: "Terminating…",
  terminated: "Terminated",
  reprovisioning: "Reprovisioning…",
  replacing_ont: "Replacing your fibre box…",
  failed: "Failed",
};

const TRANSITIONAL = new Set([
  "pending", "awaiting_ont", "provisioning", "suspending", "resuming", "terminating",
  "reprovisioning", "replacing_ont",
]);

// The tables above are a fallback: the page embeds the server's catalogue (every
// operation with its title, labels and end statuses, every status label, the
// transitional statuses), and configure() makes it the one the page reads, so an
// operation the server knows streams and renders without an edit here.
export function configure(data) {
  for (const [op, o] of Object.entries(data?.operations ?? {})) {
    OPERATIONS[op] = {
      title: o.title,
      running: o.running,
      done: o.done,
      endsIn: o.ends_in ?? null,
      startsFrom: o.starts_from ?? [],
      restoresOnFailure: Boolean(o.restores_on_failure),
    };
  }
  Object.assign(STATUS_LABELS, data?.statuses ?? {});
  for (const status of data?.transitional ?? []) TRANSITIONAL.add(status);
}

// Where a run that ends (well, or badly for an operation that restores the service on
// failure) leaves the service: its declared end status, else the settled status the
// service had before the run.
function endStatus(state, op, ok) {
  if (ok && op.endsIn) return op.endsIn;
  if (ok && !op.startsFrom && op.done) return op.done.toLowerCase(); // fallback tables
  if (state.settled) return state.settled;
  return op.startsFrom?.length === 1 ? op.startsFrom[0] : null;
}

// Zero-touch activation: provisioning's step 1 while the order waits for its ONT. The
// run that follows when the ONT appears starts afresh (its own step 1).
const WAITING = "waiting";

// Progress statuses that report on a step without moving the run forward.
const NOTICES = new Set(["retrying", "failed", "rolled_back", "crashed"]);

export const KINDS = ["progress", "completed", "failed"];

export function eventTypes() {
  const types = [];
  for (const op of Object.keys(OPERATIONS)) {
    for (const kind of KINDS) types.push(`service.${op}.${kind}`);
  }
  return types;
}

export function parseType(type) {
  const parts = String(type).split(".");
  if (parts.length !== 3 || parts[0] !== "service") return null;
  if (!(parts[1] in OPERATIONS) || !KINDS.includes(parts[2])) return null;
  return { operation: parts[1], kind: parts[2] };
}

export function opTitle(op) {
  return OPERATIONS[op]?.title ?? op;
}

export function createState(service) {
  const status = service.status;
  return {
    lastId: null,
    operation: service.operation || "provisioning",
    runId: null,
    total: null,
    current: null, // number of the step running now
    steps: [], // {step, status, message, startedAt, endedAt, state: running|done|failed}
    percent: ["active", "suspended", "terminated"].includes(status) ? 100 : 0,
    stepStatus: null,
    message: null,
    updatedAt: service.updated ? Date.parse(service.updated) : null,
    final: null, // null | "completed" | "failed"
    error: service.error || null,
    serviceStatus: status,
    // The last status the service rested in (not mid-operation, not failed).
    settled: TRANSITIONAL.has(status) || status === "failed" ? null : status,
    statusLabel: statusLabel(status, service.error),
    transitional: TRANSITIONAL.has(status),
    events: 0,
  };
}

export function statusLabel(status, error) {
  const label = STATUS_LABELS[status] ?? status;
  return status === "failed" && error ? `${label}: ${error}` : label;
}

function percentOf(step, total, status) {
  if (!total) return 0;
  if (status === "completed" && step >= total) return 100;
  return Math.max(0, Math.min(100, Math.round(((step - 1) / total) * 100)));
}

function reset(state, operation, runId) {
  state.operation = operation;
  state.runId = runId ?? null;
  state.total = null;
  state.current = null;
  state.steps = [];
  state.percent = 0;
  state.stepStatus = null;
  state.message = null;
  state.final = null;
  state.error = null;
}

function entry(state, step) {
  return state.steps.find((s) => s.step === step);
}

function closeRunning(state, at, outcome) {
  for (const s of state.steps) {
    if (s.state === "running") {
      s.state = outcome;
      s.endedAt = at;
    }
  }
}

// Apply one event ({id, type, data}). Returns a sentence for the live region when
// the step or the outcome changed, "" otherwise, and null for a duplicate or an
// event that is not a lifecycle event.
export function apply(state, event) {
  const id = Number(event.id);
  if (!Number.isFinite(id)) return null;
  if (state.lastId !== null && id <= state.lastId) return null; // seen (catch-up replay)
  const parsed = parseType(event.type);
  if (!parsed) return null;
  state.lastId = id;
  state.events += 1;
  const data = event.data || {};
  const runId = data.flow_run_id ?? null;
  const { operation, kind } = parsed;
  const newRun =
    operation !== state.operation ||
    (runId && state.runId && runId !== state.runId) ||
    (state.final !== null && kind === "progress" && !NOTICES.has(data.status)) ||
    (state.stepStatus === WAITING && kind === "progress" && data.status !== WAITING);
  if (newRun || state.events === 1) reset(state, operation, runId);
  if (runId && !state.runId) state.runId = runId;
  const op = OPERATIONS[operation];

  if (kind === "progress") {
    const at = Date.parse(data.timestamp) || Date.now();
    state.updatedAt = at;
    state.total = data.total_steps;
    state.stepStatus = data.status;
    state.message = data.message;
    if (state.final === null) {
      const waiting = data.status === WAITING;
      state.serviceStatus = waiting ? "awaiting_ont" : "running";
      state.statusLabel = waiting ? STATUS_LABELS.awaiting_ont : op.running;
      state.transitional = true;
    }
    if (NOTICES.has(data.status)) {
      const s = entry(state, data.step);
      if (s && (data.status === "failed" || data.status === "crashed")) {
        s.state = "failed";
        s.endedAt = at;
      } else if (s && data.status === "rolled_back" && s.state !== "running") {
        s.state = "rolled_back";
      }
      return `${humanize(data.status)}: ${data.message}`;
    }
    if (state.current === null || data.step > state.current) {
      closeRunning(state, at, "done");
      state.steps.push({
        step: data.step, status: data.status, message: data.message,
        startedAt: at, endedAt: null, state: "running",
      });
      state.current = data.step;
      state.percent = Math.max(state.percent, percentOf(data.step, data.total_steps, data.status));
      return `Step ${data.step} of ${data.total_steps}: ${data.message}`;
    }
    const s = entry(state, data.step);
    if (s && s.state === "running") s.message = data.message;
    state.percent = Math.max(state.percent, percentOf(state.current, data.total_steps, ""));
    return "";
  }

  if (kind === "completed") {
    const at = Date.parse(data.completed_at) || Date.now();
    closeRunning(state, at, "done");
    state.updatedAt = at;
    state.final = "completed";
    state.percent = 100;
    state.stepStatus = "completed";
    state.message = `${op.title} finished`;
    const status = endStatus(state, op, true) ?? "active";
    state.serviceStatus = status;
    state.settled = status;
    state.statusLabel = STATUS_LABELS[status] ?? op.done ?? status;
    state.transitional = false;
    return `${op.title} finished. The service is ${state.statusLabel.toLowerCase()}.`;
  }

  // failed
  const at = Date.parse(data.failed_at) || Date.now();
  closeRunning(state, at, "failed");
  const s = entry(state, data.step);
  if (s) s.state = "failed";
  state.updatedAt = at;
  state.final = "failed";
  state.error = data.error;
  state.stepStatus = "failed";
  state.message = data.error;
  state.transitional = false;
  // A plan change that fails puts the old plan back: the service is still in service.
  const back = op.restoresOnFailure ? endStatus(state, op, false) : null;
  if (back) {
    state.serviceStatus = back;
    state.statusLabel = STATUS_LABELS[back] ?? back;
    return `${op.title} failed at step ${data.step}: ${data.error}. ` +
      `Nothing changed: the service is ${state.statusLabel.toLowerCase()}.`;
  }
  state.serviceStatus = "failed";
  state.statusLabel = statusLabel("failed", data.error);
  return `${op.title} failed at step ${data.step}: ${data.error}`;
}

export function humanize(status) {
  const text = String(status ?? "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function duration(ms) {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return "";
  if (ms < 100) return "under 0.1 s";
  if (ms < 1000) return `${(ms / 1000).toFixed(1)} s`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${seconds % 60} s`;
}
