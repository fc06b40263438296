"""Predictive scoring and backtest benchmark on the 1M-lead demo-sized history (about 20M events,
six months): train, score every lead, and replay the history under two playbooks.

    python benchmarks/model_bench.py                                  # 1,000,000 leads on SQLite
    python benchmarks/model_bench.py --leads 100000                   # a shorter run
    python benchmarks/model_bench.py --keep --sqlite-path /tmp/model.db   # keep (and reuse) the data

The data is written by the reports benchmark's generator (`benchmarks/reports_bench.py`: leads,
events, stage history, deals with outcomes, in bulk — not through the scoring path). Then, each
timed once (the machine is shared; run it again rather than trusting one figure):

1. **train** — `leadrelay model train`'s use case: the labels from the deals, every labelled
   lead's events replayed up to its hand-off (shared among the cores), features, the out-of-time
   validation, the final fit and its calibration, the skops file stored. Target: 2 minutes for 1M
   leads.
2. **score** — `leadrelay model score`'s use case: every lead read in batches of 20,000 (batches
   shared among the cores), its features, p_win and top reasons from one sparse matrix a batch,
   written to `lead_scores` with one executemany a chunk. Target: 30 s for 1M leads.
3. **simulate** — `leadrelay playbook simulate`'s use case: every lead of the history replayed in
   memory under the playbook in force and under a candidate (a lower MQL threshold), until its
   hand-off (leads shared among the cores). Target: 2 minutes for one year of the 1M-lead history.

Beside each, the raw speed of the store on the same rows, measured in the same run: reading the
events the step reads (`SELECT` of the same columns, no processing), and for scoring, reading the
leads and an `executemany` insert of as many rows into a scratch table.

The generated outcomes are drawn at random (the generator does not tie them to what leads do), so
the model's AUC here is about 0.5: this benchmark measures speed, not accuracy (the docs give the
accuracy on real data).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reports_bench import NOW, generate

from leadrelay.adapters.database import make_engine, migrate
from leadrelay.adapters.playbook_file import default_playbook_text, parse_playbook
from leadrelay.services import prediction, simulation

TARGETS = {"train": 120.0, "score": 30.0, "simulate": 120.0}


def _progress(label: str):  # type: ignore[no-untyped-def]
    def show(done: int, total: int) -> None:
        print(f"\r  {label}: {done:,} / {total:,}", end="", file=sys.stderr, flush=True)
    return show


def _raw_events(engine: Engine, where: str = "") -> float:
    started = time.perf_counter()
    with engine.connect() as connection:
        for _ in connection.exec_driver_sql(
                f"SELECT lead_id, message_id, type, name, timestamp, properties, traits, touch FROM events {where}"):
            pass
    return time.perf_counter() - started


def _raw_leads_and_insert(engine: Engine, count: int) -> tuple[float, float]:
    started = time.perf_counter()
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT * FROM leads").fetchall()
    read = time.perf_counter() - started
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TEMPORARY TABLE scratch_scores (lead_id INTEGER, model_id INTEGER, "
                                   "p_win FLOAT, reasons TEXT, scored_at TEXT)")
        started = time.perf_counter()
        connection.exec_driver_sql("INSERT INTO scratch_scores VALUES (?, ?, ?, ?, ?)",
                                   [(i, 1, 0.5, '[["a", 0.1]]', "2026-11-20") for i in range(count)])
        wrote = time.perf_counter() - started
    del rows
    return read, wrote


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite-path", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="Keep the database (and reuse it when run again).")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="leadrelay-model-bench-")
    path = args.sqlite_path or Path(folder) / "model.db"
    reuse = args.keep and path.exists()
    engine = make_engine(f"sqlite:///{path}")
    scale = args.leads / 1_000_000
    try:
        if not reuse:
            migrate(engine)
            print(f"generating {args.leads:,} leads into {path}", file=sys.stderr)
            generate(engine, args.leads, args.seed)
        else:
            migrate(engine)
        with engine.connect() as connection:
            events = connection.exec_driver_sql("SELECT count(*) FROM events").scalar()
            connection.exec_driver_sql("DELETE FROM lead_scores")
            connection.exec_driver_sql("DELETE FROM models")
            connection.commit()
        playbook = parse_playbook(default_playbook_text(), "<built-in playbook>")
        figures: dict[str, tuple[float, str, float, str]] = {}

        started = time.perf_counter()
        trained = prediction.train(engine, playbook, NOW, by="bench", progress=_progress("train: leads replayed"))
        took = time.perf_counter() - started
        print(file=sys.stderr)
        raw = _raw_events(engine, "WHERE lead_id IN (SELECT lead_id FROM deals)")
        figures["train"] = (took, f"{trained.model.rows:,} labelled leads, AUC {trained.metrics['auc']}",
                            raw, "SELECT of the handed-off leads' events")

        playbook = prediction.attach(playbook, engine)
        started = time.perf_counter()
        scored = prediction.score_all(engine, playbook, NOW, progress=_progress("score: leads"))
        took = time.perf_counter() - started
        print(file=sys.stderr)
        read, wrote = _raw_leads_and_insert(engine, scored.leads)
        figures["score"] = (took, f"{scored.leads:,} leads scored and stored", read + wrote,
                            f"SELECT * FROM leads {read:.1f} s + executemany insert of as many rows {wrote:.1f} s")

        candidate = parse_playbook(default_playbook_text().replace("rule: fit >= 40 && engagement >= 40",
                                                                   "rule: fit >= 30 && engagement >= 30"), "candidate")
        started = time.perf_counter()
        result = simulation.simulate(engine, playbook, candidate, since=NOW - timedelta(days=365), until=NOW,
                                     progress=_progress("simulate: leads replayed"))
        took = time.perf_counter() - started
        print(file=sys.stderr)
        raw = _raw_events(engine)
        figures["simulate"] = (took, f"{result.leads:,} leads, {result.events:,} events, {result.changed:,} change",
                               raw, "SELECT of every event")

        print(f"\n## SQLite: {args.leads:,} leads, {events:,} events (targets are for 1,000,000 leads)")
        print(f"  {'step':<10} {'ours':>9} {'per 1M leads':>13} {'target':>8}  {'raw store':>9}  what")
        for step, (seconds, what, raw_seconds, raw_what) in figures.items():
            per_million = seconds / scale
            verdict = "met" if per_million <= TARGETS[step] else "MISSED"
            print(f"  {step:<10} {seconds:>8.1f}s {per_million:>12.1f}s {TARGETS[step]:>7.0f}s  {raw_seconds:>8.1f}s  "
                  f"{what}; {verdict}")
            print(f"  {'':<10} raw store: {raw_what}")
        if scale != 1:
            print("  (per 1M leads: scaled linearly from this run)")
    finally:
        engine.dispose()
        if not args.keep:
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
