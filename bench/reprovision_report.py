"""Bulk reprovisioning's report: a row per run, where a service's time goes step by
step, the drift seeded and left over, the notes and the JSON data."""

from __future__ import annotations

from dataclasses import asdict

from bench.report import Dist, Section, Table, num
from bench.reprovision_drift import DRIFT_KINDS, DRIFT_LABEL
from bench.reprovision_outcomes import Outcome, RunFigures
from bench.reprovision_run import BULK, MIN_AVAILABLE_GIB, Measured

HEADERS = [
    "run",
    "in_sync / repaired / failed / not run",
    "wall s (trigger → run ended)",
    "flow run s (Prefect start → end)",
    "per service p50 / p95 / max s",
    "completion p50 / p95 / max s",
    "in flight (avg)",
    "device s / service p50",
    "overhead / service p50 / p95 s",
    "device s total: audited / lab-served",
    "peak CLI sessions",
    "run proc CPU s / RSS MB / threads",
    "load avg",
]


def row(f: RunFigures) -> list[str]:
    done = [o for o in f.outcomes if o.ended is not None]
    per = Dist.of(o.ended - o.started for o in done if o.started is not None and o.ended)
    completion = Dist.of((o.ended or 0) - f.triggered for o in done)
    dev = Dist.of(o.device_s for o in done)
    overhead = Dist.of(
        o.ended - o.started - o.device_s for o in done if o.started is not None and o.ended
    )
    c = f.counts()
    busy = sum(o.ended - o.started for o in done if o.started is not None and o.ended)
    peak = " / ".join(f"{n} {v['peak_open']}" for n, v in sorted(f.lab.items()))
    served = sum(float(v.get("latency_s", 0)) for v in f.lab.values())
    flow_s = (f.prefect_end - f.prefect_start) if f.prefect_start and f.prefect_end else None
    proc = (
        f"{num(f.run_cpu_s, 1)} / {num(f.run_rss_mb, 0)} / {f.run_threads or '—'}"
        if f.run_pid
        else "—"
    )
    return [
        f.label,
        f"{c['in_sync']} / {c['repaired']} / {c['failed']} / {c['not run']}",
        num(f.finished - f.triggered, 1),
        num(flow_s, 1),
        f"{num(per.p50, 2)} / {num(per.p95, 2)} / {num(per.max, 2)}",
        f"{num(completion.p50, 1)} / {num(completion.p95, 1)} / {num(completion.max, 1)}",
        num(busy / (f.finished - f.triggered), 1),
        num(dev.p50, 2),
        f"{num(overhead.p50, 2)} / {num(overhead.p95, 2)}",
        f"{num(sum(o.device_s for o in f.outcomes), 1)} / {num(served, 1)}",
        peak,
        proc,
        f.load,
    ]


def step_seconds(o: Outcome) -> dict[str, float]:
    """Seconds from each step's first progress event to the next (the last step to the
    completed/failed event)."""
    firsts: list[tuple[str, float]] = []
    for status, ts in o.steps:
        if status not in {st for st, _ in firsts}:
            firsts.append((status, ts))
    ends = [ts for _, ts in firsts[1:]] + ([o.ended] if o.ended else [])
    return {st: end - ts for (st, ts), end in zip(firsts, ends, strict=False)}


def steps_table(runs: list[RunFigures]) -> Table:
    names: list[str] = []
    per_run = []
    for f in runs:
        values: dict[str, list[float]] = {}
        for o in f.outcomes:
            for name, sec in step_seconds(o).items():
                values.setdefault(name, []).append(sec)
                if name not in names:
                    names.append(name)
        per_run.append(values)
    t = Table(["step (p50 / p95 s)", *(f.label for f in runs)])
    for name in names:
        cells = []
        for v in per_run:
            d = Dist.of(v.get(name, []))
            cells.append(f"{num(d.p50, 2)} / {num(d.p95, 2)}")
        t.add(name, *cells)
    return t


def report(m: Measured) -> Section:
    """The section of the runs in ``m``."""
    section = Section("Bulk reprovisioning")
    table = Table(HEADERS)
    for f in m.runs:
        table.rows.append(row(f))
    section.tables.append(
        (
            f"`fiberflow up` on embedded defaults (SQLite, local Prefect server, warm worker), "
            f"the lab at the given per-command latency, per-device session limit from the "
            f"lab inventory (4). Bulk = one run of `{BULK}` (NIGHTLY_PARALLELISM services at "
            f"a time, one subflow each, one flow-run process). Per service = its first "
            f"reprovisioning event → its completed/failed event; completion = trigger → that "
            f"event; in flight = Σ per service / wall (the nightly run allows 8); "
            f"overhead = per service − its audited device time. Audited device time "
            f"leaves out SSH login and netmiko's session set-up; lab-served is all the latency "
            f"the lab injected (every delayed line, set-up included).",
            table,
        )
    )
    section.tables.append(
        (
            "Where a service's time goes: from one step's first progress event to the next "
            "(checking = read OLT, BNG, RADIUS; repairing = re-apply + read again, or nothing "
            "when in sync; completed = the row and the completed event):",
            steps_table(m.runs),
        )
    )
    drift = Table(["drift", "services", "seen before the run", "left after each bulk run"])
    bulk_runs = [f for f in m.runs if f.services == len(m.services)]
    for kind in DRIFT_KINDS:
        ids = {s.id for s in m.services if s.drift == kind}
        left = " / ".join(str(len(ids & set(f.bad_after))) for f in bulk_runs)
        drift.add(DRIFT_LABEL[kind], len(ids), len(ids & set(m.drifted_bad)), left or "—")
    section.tables.append(("Drift seeded, and checked against the lab's `dump`:", drift))
    section.notes.append(
        f"seeding {len(m.services):,} services (rows, IPAM, RADIUS, lab `seed`): {m.seed_s:.1f} s"
    )
    for f in bulk_runs:
        lab = ", ".join(f"{n}: {v['logins']} logins, {v['commands']} lines, "
                        f"{v.get('latency_s', 0):.0f} s latency served"
                        for n, v in sorted(f.lab.items()))  # fmt: skip
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(f.stack_cpu_s.items()))
        section.notes.append(f"{f.label}: lab {lab}; CPU s of the stack's parts: {cpu}")
    for e in m.errors:
        section.notes.append(f"ERROR {e}"[:800])
    if m.low_memory:
        section.notes.append(f"stopped early: available memory fell below {MIN_AVAILABLE_GIB} GiB")
    section.data = {
        "services": len(m.services),
        "drift": {k: sum(s.drift == k for s in m.services) for k in DRIFT_KINDS},
        "drifted_ids": [s.id for s in m.services if s.drift],
        "drifted_seen_before": sorted(m.drifted_bad),
        "seed_s": m.seed_s,
        "errors": m.errors,
        "low_memory": m.low_memory,
        "runs": [
            {
                **{k: v for k, v in asdict(f).items() if k != "outcomes"},
                "counts": f.counts(),
                "outcomes": [asdict(o) for o in f.outcomes],
            }
            for f in m.runs
        ],  # fmt: skip
    }
    return section
