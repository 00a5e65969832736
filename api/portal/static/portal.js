// The progress page: wires the server-rendered page to the live event feed.

import { LiveEvents } from "./live.js";
import { apply, configure, createState, eventTypes } from "./progress.js";
import { View } from "./view.js";

function readJson(doc, id) {
  try {
    return JSON.parse(doc.getElementById(id)?.textContent || "{}");
  } catch {
    return {};
  }
}

function readPlans(doc) {
  return readJson(doc, "plans");
}

// The facts above the card (the IP address, the plan, the ONT) change with an operation: re-read
// them from the REST API (same cookie) when one ends.
async function refreshFacts(url) {
  try {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!r.ok) return;
    const service = await r.json();
    const ip = document.getElementById("ip-address");
    if (ip) ip.textContent = service.ip_address || "not assigned";
    const plan = document.getElementById("service-plan");
    if (plan && service.plan) plan.textContent = `Fibre ${service.plan}`;
    const serial = document.getElementById("ont-serial");
    if (serial && service.ont_serial) serial.textContent = service.ont_serial;
  } catch {
    // Offline for a moment: the facts stay as they were.
  }
}

function main() {
  const root = document.getElementById("main");
  const d = root?.dataset;
  if (!d || !d.serviceId) return;
  // The server's operations and labels first: the state and the event types read them.
  configure(readJson(document, "operations"));

  const state = createState({
    status: d.status,
    operation: d.operation,
    error: d.error,
    updated: d.updated,
  });
  const conn = { mode: "connecting", detail: null, connected: false };
  const view = new View(document, readPlans(document));

  const live = new LiveEvents({
    sseUrl: d.sseUrl,
    eventsUrl: d.eventsUrl,
    eventTypes: eventTypes(),
    lastId: null,
    onEvent(event) {
      const before = state.final;
      const said = apply(state, event);
      if (state.final !== null && state.final !== before) refreshFacts(d.serviceUrl);
      if (said) view.announce(said);
      view.schedule(state, conn);
    },
    onMode(mode, detail) {
      conn.mode = mode;
      conn.detail = detail ?? null;
      if (mode === "live") conn.connected = true;
      if (mode === "polling") {
        conn.connected = true; // the history endpoint answers for the page
        view.announce("Live updates unavailable — checking every few seconds.");
      }
      view.schedule(state, conn);
    },
  });
  // For tests and debugging in the console; nothing reads it.
  window.fiberflowPortal = { state, conn, live };
  live.start();
}

main();
