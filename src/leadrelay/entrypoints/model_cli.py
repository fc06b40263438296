"""`leadrelay model train|evaluate|show|use|score` (the predictive score, p_win) and the
`leadrelay playbook suggest|simulate` commands. Registered on the `leadrelay` command by
`leadrelay.entrypoints.cli`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from leadrelay.domain.clock import UTC, utc_now

model_app = typer.Typer(help="The predictive score (p_win): train on leads with a known outcome, evaluate, "
                             "show, choose the version in use, score every lead.", no_args_is_help=True)

DAY = ["%Y-%m-%d"]


def _since(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar whose total is known once the work starts."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from leadrelay.entrypoints.cli import errors

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True, disable=not errors.is_terminal) as bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def _refusing() -> Iterator[None]:
    """Known problems of models and files become a clear message (exit code 1)."""
    from leadrelay.adapters.models import ModelError
    from leadrelay.entrypoints.cli import Refused
    from leadrelay.services.prediction import CsvError

    try:
        yield
    except (ModelError, CsvError, ValueError) as error:
        raise Refused(str(error)) from None


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    from leadrelay.entrypoints.cli import console

    table = Table("measure", "value", title=title)
    table.add_row("split", str(metrics.get("split", "time")))
    if "train_leads" in metrics:
        table.add_row("trained on (older)", f"{metrics['train_leads']:,} leads")
    table.add_row("measured on", f"{metrics['leads']:,} leads, {metrics['positives']:,} won "
                                 f"(base rate {_pct(metrics['base_rate'])})")
    if "auc_mean" in metrics:
        table.add_row("AUC (mean of folds ± sd)", f"{metrics['auc_mean']:.3f} ± {metrics['auc_std']:.3f}")
    table.add_row("AUC", _num(metrics.get("auc")))
    table.add_row("PR-AUC", _num(metrics.get("pr_auc")))
    table.add_row("lift in the top decile", _num(metrics.get("top_decile_lift")))
    console.print(table)
    calibration = Table("decile of p", "leads", "predicted", "observed", title="Calibration")
    for i, row in enumerate(metrics.get("calibration") or [], start=1):
        calibration.add_row(str(i), f"{row['leads']:,}", _pct(row["predicted"]), _pct(row["observed"]))
    console.print(calibration)


@model_app.command("train")
def train(
    since: Annotated[datetime | None, typer.Option(formats=DAY, help="Only leads handed off on or after this day.")]
    = None,
    activate: Annotated[bool, typer.Option(help="Use the new model at once (rules, pages, scores).")] = True,
) -> None:
    """Train a new model version on leads with a known outcome.

    Won vs lost or disqualified, from what was known of each at its hand-off; validate it out of time (older leads train, the newest
    fifth tests) and store it, versioned, in the database (skops format)."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services.prediction import not_worth_using
    from leadrelay.services.prediction import train as train_model

    application = _app()
    with _refusing(), _progress("Replaying leads up to their hand-off") as progress:
        trained = train_model(application.engine, application.playbook, utc_now(), by="cli", since=_since(since),
                              activate=activate, progress=progress)
    model = trained.model
    console.print(f"Model version {model.version} trained on {model.rows:,} leads "
                  f"({trained.metrics['features']:,} features){' — in use now' if model.active else ''}.")
    why = not_worth_using(trained.metrics)
    if activate and why:
        console.print(f"[yellow]Not put in use: {why}.[/yellow] Gather more closed deals and train again, or use it "
                      f"anyway with `leadrelay model use {model.version}`.")
    _print_metrics(trained.metrics, f"Out-of-time validation (leads handed off from {trained.metrics['validated_from'][:10]})")


@model_app.command("evaluate")
def evaluate(
    csv: Annotated[Path | None, typer.Option(help="Evaluate on this CSV of leads instead of the database.")] = None,
    target: Annotated[str | None, typer.Option(help="With --csv: the outcome column.")] = None,
    positive: Annotated[str | None, typer.Option(help="With --csv: the value of --target that means won.")] = None,
    drop: Annotated[str, typer.Option(help="With --csv: columns to leave out, comma-separated (e.g. ones known "
                                           "only after the outcome).")] = "",
    split: Annotated[str, typer.Option(help="random: stratified 5-fold; time: rows in time order, the first "
                                            "80 % train, the last 20 % test.")] = "random",
    delimiter: Annotated[str | None, typer.Option(help="With --csv: the delimiter (default: detected).")] = None,
) -> None:
    """Measure the predictive score: AUC, PR-AUC, top-decile lift, calibration.

    How well it separates won from lost leads. Without --csv: on this database's leads (out of time).
    With --csv: on any CSV of leads with an outcome column."""
    from leadrelay.entrypoints.cli import Refused, _app
    from leadrelay.services import prediction

    if split not in ("random", "time"):
        raise Refused(f"--split: {split!r} is not random or time")
    if delimiter is not None and len(delimiter.encode("unicode_escape").decode("unicode_escape")) != 1:
        raise Refused(f"--delimiter: give one character, got {delimiter!r}")
    with _refusing():
        if csv is None:
            if target or positive or drop:
                raise Refused("--target, --positive and --drop go with --csv")
            application = _app()
            with _progress("Replaying leads up to their hand-off") as progress:
                found = prediction.samples(application.engine, application.playbook, progress=progress)
            rows, y = [s.features for s in found], [s.label for s in found]
            metrics = prediction.evaluate_rows(rows, y, split)
            _print_metrics(metrics, f"This database: {len(rows):,} leads with a known outcome")
            return
        if not target or positive is None:
            raise Refused("--csv needs --target COLUMN and --positive VALUE")
        columns = [name.strip() for name in drop.split(",") if name.strip()]
        sep = delimiter.encode().decode("unicode_escape") if delimiter else None
        metrics = prediction.evaluate_csv(csv, target, positive, drop=columns, split=split, delimiter=sep)
    _print_metrics(metrics, f"{csv.name}: {target} == {positive!r} (delimiter {metrics['delimiter']!r})")


@model_app.command("show")
def show(version: Annotated[int | None, typer.Option(help="This version (default: every version, and the "
                                                             "one in use in detail).")] = None) -> None:
    """The model versions, and the validation figures and strongest features of one."""
    from leadrelay.entrypoints.cli import Refused, _app, console
    from leadrelay.services import prediction

    application = _app()
    stored = prediction.models(application.engine)
    if not stored:
        raise Refused("no model yet: run `leadrelay model train`")
    table = Table("version", "trained (UTC)", "by", "leads", "AUC", "PR-AUC", "top-decile lift", "in use",
                  title="Models")
    for model in stored:
        table.add_row(str(model.version), f"{model.created_at:%Y-%m-%d %H:%M}", model.created_by, f"{model.rows:,}",
                      _num(model.metrics.get("auc")), _num(model.metrics.get("pr_auc")),
                      _num(model.metrics.get("top_decile_lift")), "yes" if model.active else "")
    console.print(table)
    chosen = next((m for m in stored if (m.version == version if version else m.active)), None)
    if chosen is None:
        raise Refused(f"there is no model version {version}" if version else "no model is in use")
    _print_metrics(chosen.metrics, f"Version {chosen.version}: out-of-time validation")
    with _refusing():
        from leadrelay.adapters.models import ModelRepository, loads
        from leadrelay.domain.prediction import describe
        from leadrelay.services.prediction import reading

        with reading(application.engine) as connection:
            fitted = loads(*ModelRepository(connection).artifact(chosen.id))
    weights = sorted(zip(fitted.vectorizer.feature_names_, fitted.classifier.coef_[0], strict=True),
                     key=lambda pair: -abs(pair[1]))[:15]
    strongest = Table("feature", "weight (log-odds)", title="Strongest features")
    for name, weight in weights:
        strongest.add_row(describe(name), f"{weight:+.3f}")
    console.print(strongest)


@model_app.command("use")
def use(version: Annotated[int, typer.Argument(help="The version to use.")]) -> None:
    """Put an earlier (or later) model version in use."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services import prediction

    with _refusing():
        model = prediction.activate(_app().engine, version, by="cli", now=utc_now())
    console.print(f"Model version {model.version} is in use (a running server picks it up when restarted).")


@model_app.command("score")
def score() -> None:
    """Score every lead now with the model in use and keep each p_win with its top reasons."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services import prediction

    application = _app()
    with _refusing(), _progress("Scoring leads") as progress:
        result = prediction.score_all(application.engine, application.playbook, utc_now(), progress=progress)
    console.print(f"Scored {result.leads:,} leads with model version {result.model_version}.")
    table = Table("p_win", "leads", title="Leads by p_win")
    for band in sorted(result.by_band, key=lambda b: int(b.split("-")[0])):
        table.add_row(band, f"{result.by_band[band]:,}")
    console.print(table)


# --- playbook suggest and simulate -------------------------------------------------------------

def suggest(
    since: Annotated[datetime | None, typer.Option(formats=DAY, help="Only leads handed off on or after this day.")]
    = None,
    min_leads: Annotated[int, typer.Option(min=5, max=1_000_000, help="Propose nothing seen on fewer leads.")] = 30,
    limit: Annotated[int, typer.Option(min=1, max=200, help="At most this many rules.")] = 20,
    capacity: Annotated[bool, typer.Option(help="Also recommend the MQL threshold for sales capacity (needs a "
                                                "model).")] = True,
    deals_per_rep_week: Annotated[float | None, typer.Option(min=0.1, max=10_000, help="New deals a rep can take a "
                                                             "week (default: the playbook's max_new_deals).")] = None,
    weeks: Annotated[int, typer.Option(min=1, max=260, help="The capacity threshold looks at leads created in this "
                                                            "many recent weeks.")] = 12,
    chart: Annotated[Path | None, typer.Option(help="Write the capacity trade-off chart to this PNG file.")] = None,
) -> None:
    """Suggest scoring rules (YAML) and the MQL threshold for sales capacity.

    Rules from closed-loop data: events, pages, content and field values that go with a higher or
    lower win rate, with counts and 95 % intervals, printed as YAML to paste into the playbook. Then
    the MQL threshold that keeps hand-offs within sales capacity while winning most (table, and a
    chart with --chart)."""
    from leadrelay.entrypoints.cli import Refused, _app, errors
    from leadrelay.services.suggestions import as_yaml
    from leadrelay.services.suggestions import suggest as find

    application = _app()
    with _refusing(), _progress("Replaying leads up to their hand-off") as progress:
        found = find(application.engine, application.playbook, since=_since(since), min_leads=min_leads,
                     limit=limit, progress=progress)
    if not found.leads:
        raise Refused("no handed-off lead has a known outcome yet: nothing to learn from")
    print(as_yaml(found), end="")
    if not capacity:
        return
    if application.playbook.win_model is None:
        errors.print("(no MQL threshold for capacity: it weighs leads by p_win; run `leadrelay model train` first)")
        return
    from leadrelay.services.simulation import capacity_threshold

    now = utc_now()
    with _refusing(), _progress("Replaying recent leads") as progress:
        result = capacity_threshold(application.engine, application.playbook, since=now - timedelta(weeks=weeks),
                                    until=now, deals_per_rep_week=deals_per_rep_week, progress=progress)
    _print_capacity(result)
    if chart is not None:
        from leadrelay.services.simulation import capacity_chart

        try:
            chart.write_bytes(capacity_chart(result).png())
        except OSError as error:
            raise Refused(f"--chart {chart}: cannot be written ({error.strerror})") from None
        errors.print(f"wrote the trade-off chart to {chart}")


def _print_capacity(result: Any) -> None:
    from leadrelay.entrypoints.cli import errors

    capacity = "not set (give --deals-per-rep-week)" if result.capacity_per_week is None else \
        f"{result.capacity_per_week:g} new deals a week ({result.reps} reps)"
    table = Table("total ≥", "hand-offs / week", "per rep / week", "expected wins / week", "within capacity",
                  title=f"MQL threshold for capacity: {result.leads:,} leads over {result.weeks:g} weeks; "
                        f"capacity {capacity}")
    for row in result.rows:
        mark = " ←" if result.recommended is row else ""
        table.add_row(f"{row.threshold:g}{mark}", f"{row.per_week:g}", _num(row.per_rep_week),
                      f"{row.expected_wins_per_week:g}",
                      "—" if row.within_capacity is None else ("yes" if row.within_capacity else "no"))
    errors.print(table)
    if result.recommended is not None:
        print(f"# Recommended MQL rule for capacity ({result.recommended.per_week:g} hand-offs and "
              f"{result.recommended.expected_wins_per_week:g} expected wins a week):")
        print(f"mql:\n  rule: total >= {result.recommended.threshold:g}")


def simulate(
    candidate: Annotated[Path, typer.Argument(help="The candidate playbook (YAML).")],
    since: Annotated[datetime | None, typer.Option(formats=DAY, help="Replay leads created on or after this day "
                                                                     "(default: one year ago).")] = None,
    changes: Annotated[int, typer.Option(min=0, max=10_000, help="List at most this many leads that change.")] = 20,
) -> None:
    """Backtest CANDIDATE: replay history under it and under the playbook in force.

    In memory (live data is never touched); compared side by side: MQLs a week, hand-offs per rep a week against capacity, acceptance
    and win rates of the leads each would hand off (from known outcomes), SLA load, and the leads
    that change status."""
    from leadrelay.adapters.playbook_file import load_playbook
    from leadrelay.entrypoints.cli import Refused, _app, console
    from leadrelay.services.simulation import simulate as run

    if not candidate.is_file():
        raise Refused(f"{candidate}: no such file")
    proposed = load_playbook(candidate)  # a wrong playbook is refused with every problem listed
    application = _app()
    proposed = replace(proposed, win_model=application.playbook.win_model)
    now = utc_now()
    start = _since(since) or now - timedelta(days=365)
    if start >= now:
        raise Refused(f"--since {start:%Y-%m-%d}: is not in the past")
    with _progress("Replaying leads under both playbooks") as progress:
        result = run(application.engine, application.playbook, proposed, since=start, until=now, progress=progress,
                     changes_shown=changes)
    console.print(comparison_table(result))
    weeks = Table("week of", "hand-offs now", "hand-offs candidate", title="Hand-offs by week (last 12)")
    for week, before, after in result.weeks[-12:]:
        weeks.add_row(week, f"{before:,}", f"{after:,}")
    console.print(weeks)
    if result.changed:
        moved = Table("lead", "in force", "candidate", title=f"{result.changed:,} leads change status"
                      + (f" (first {len(result.changes)})" if len(result.changes) < result.changed else ""))
        for change in result.changes:
            moved.add_row(change.email, change.current, change.candidate)
        console.print(moved)
    else:
        console.print("No lead changes status.")
    console.print(f"Replayed {result.leads:,} leads and {result.events:,} events from {start:%Y-%m-%d} in "
                  f"{result.seconds:g} s; nothing was written.")


def comparison_table(result: Any) -> Table:
    table = Table("", "in force", "candidate",
                  title=f"Backtest {result.since:%Y-%m-%d} to {result.until:%Y-%m-%d}: {result.leads:,} leads")
    for label, getter in comparison_rows():
        table.add_row(label, getter(result.current), getter(result.candidate))
    return table


def comparison_rows() -> list[tuple[str, Callable[[Any], str]]]:
    def capacity(f: Any) -> str:
        rep = _num(f.per_rep_week)
        return rep if f.capacity_per_rep_week is None else f"{rep} of {f.capacity_per_rep_week:g}"

    return [
        ("hand-offs (MQLs and fast tracks)", lambda f: f"{f.hand_offs:,}"),
        ("MQLs per week", lambda f: f"{f.per_week:g}"),
        ("hand-offs per rep per week (capacity)", capacity),
        ("with a known outcome", lambda f: f"{f.known:,}"),
        ("accepted by sales", lambda f: f"{_pct(f.acceptance_rate)} ({f.accepted:,})"),
        ("won", lambda f: f"{_pct(f.win_rate)} ({f.won:,})"),
        ("SLA clocks started per week", lambda f: f"{f.sla_clocks_per_week:g}"),
        ("disqualified by rules", lambda f: f"{f.disqualified:,}"),
    ]
