"""The `leadrelay` command."""

from __future__ import annotations

import sys
from datetime import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from leadrelay.adapters.files import FileRefused, read_events, read_leads
from leadrelay.adapters.playbook_file import PlaybookError, default_playbook_text, load_playbook
from leadrelay.bootstrap import App, active_playbook, bootstrap
from leadrelay.config import PLAYBOOK_FILE, get_settings
from leadrelay.domain.clock import UTC, utc_now
from leadrelay.domain.errors import DomainError
from leadrelay.domain.playbook import Playbook
from leadrelay.services import leads as lead_service
from leadrelay.services.importing import ImportSummary, import_rows

app = typer.Typer(
    help="LeadRelay: the marketing-to-sales lead hand-off, run by one agreed playbook.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
playbook_app = typer.Typer(help="Check and read the playbook (the sales–marketing agreement).", no_args_is_help=True)
import_app = typer.Typer(help="Import leads (CSV) and events (JSON Lines) through the scoring path.", no_args_is_help=True)
lead_app = typer.Typer(help="Look at and act on one lead.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys: 'write' keys send tracking calls, 'admin' keys use the whole API.",
                         no_args_is_help=True)
app.add_typer(playbook_app, name="playbook")
app.add_typer(import_app, name="import")
app.add_typer(lead_app, name="lead")
app.add_typer(apikey_app, name="apikey")
rep_app = typer.Typer(help="Sales reps: who gets new leads now, and who is away.", no_args_is_help=True)
app.add_typer(rep_app, name="rep")
user_app = typer.Typer(help="People who log in to the web app, and their roles: admin, marketing, sales_manager, "
                            "sales_rep.", no_args_is_help=True)
app.add_typer(user_app, name="user")

console = Console()
errors = Console(stderr=True, soft_wrap=True)  # one problem, one line, however long


class Refused(Exception):
    """Stop the command with a message for the user (exit code 1)."""


def main() -> None:
    """Entry point: known problems become a clear message and exit code 1, never a traceback."""
    try:
        app()
    except PlaybookError as error:
        errors.print(f"[red]The playbook has {len(error.problems)} problem(s):[/red]")
        for problem in error.problems:
            errors.print(str(problem), markup=False, highlight=False)
        sys.exit(1)
    except (DomainError, Refused, FileRefused) as error:
        errors.print(f"[red]error:[/red] {error}", highlight=False)
        sys.exit(1)
    except SQLAlchemyError as error:
        url = get_settings().database_url
        errors.print(f"[red]error:[/red] the database at {_safe_url(url)} cannot be used: {error.__class__.__name__}:"
                     f" {str(error.orig if hasattr(error, 'orig') else error).splitlines()[0]}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        errors.print("interrupted: every batch committed before this point is kept")
        sys.exit(130)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _app() -> App:
    return bootstrap()


@contextmanager
def progress_bar(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=errors, transient=False, disable=not errors.is_terminal) as bar:
        task = bar.add_task(label, total=total)
        yield lambda amount: bar.advance(task, amount)


# --- setup ------------------------------------------------------------------------------


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to write playbook.yaml.")] = Path("."),
    force: Annotated[bool, typer.Option(help="Overwrite an existing playbook.yaml.")] = False,
) -> None:
    """Write a commented example playbook and create the database."""
    target = directory / PLAYBOOK_FILE
    if target.exists() and not force:
        raise Refused(f"{target} already exists (use --force to overwrite it)")
    directory.mkdir(parents=True, exist_ok=True)
    target.write_text(default_playbook_text(), encoding="utf-8")
    settings = get_settings()
    bootstrap(settings, playbook=load_playbook(target))
    console.print(f"Wrote [bold]{target}[/bold] — read it with marketing and sales, then change it together.")
    console.print(f"Database ready at {_safe_url(settings.database_url)}")
    console.print("Next: [bold]leadrelay import leads FILE.csv[/bold], or [bold]leadrelay demo[/bold] for sample data.")


@app.command("migrate")
def migrate_database() -> None:
    """Bring the database to the newest schema of this version, then stop.

    Every command does this when it starts (on PostgreSQL one process at a time); run it alone
    when upgrading, before restarting the servers and workers."""
    from leadrelay.adapters.health import readiness

    application = _app()
    state = readiness(application.engine)
    if not state.ready:
        raise Refused(state.reason)
    console.print(f"Database at {_safe_url(application.settings.database_url)} is at revision "
                  f"{', '.join(state.database)} (the newest).")


# --- playbook ---------------------------------------------------------------------------


@playbook_app.command("validate")
def playbook_validate(file: Annotated[Path, typer.Argument(help="The playbook YAML file.")]) -> None:
    """Check a playbook; every problem is listed as FILE:LINE:COL: message (exit code 1)."""
    playbook = load_playbook(file)
    console.print(f"[green]ok[/green] {file}: {_describe(playbook)}")


@playbook_app.command("show")
def playbook_show() -> None:
    """Show the playbook in force: its stages, scoring rules and qualification rules."""
    playbook, path = active_playbook(get_settings())
    console.print(f"[bold]{playbook.name}[/bold] version {playbook.version} ({path or 'built-in'})")
    stages = Table("stage", "team", "moves to", "needs a reason", title="Funnel")
    for stage in playbook.stages.values():
        stages.add_row(stage.name + f" ({stage.id})", stage.team, ", ".join(stage.moves) or "—", stage.reasons or "")
    console.print(stages)
    rules = Table("score", "rule", "when", "points", title="Scoring")
    for rule in playbook.scoring.fit_rules:
        rules.add_row("fit", rule.name, rule.when.source, f"{rule.points:g}")
    for rule in playbook.scoring.engagement_rules:
        when = " / ".join(sorted(rule.events)) + (f" if {rule.when.source}" if rule.when else "")
        rules.add_row("engagement", rule.name, when, f"{rule.points:g}")
    console.print(rules)
    console.print(f"MQL when: [bold]{playbook.mql_rule.source}[/bold]")
    for fast in playbook.fast_track:
        console.print(f"Fast track to {fast.to}: {fast.when.source}")
    for rule in playbook.disqualify:
        console.print(f"Disqualify ({rule.reason}): {rule.when.source}")


def _describe(playbook: Playbook) -> str:
    scoring = playbook.scoring
    return (
        f"{playbook.name!r} version {playbook.version}: {len(playbook.stages)} stages, {len(playbook.fields)} fields, "
        f"{len(scoring.fit_rules)} fit and {len(scoring.engagement_rules)} engagement rules, "
        f"{len(playbook.fast_track)} fast-track and {len(playbook.disqualify)} disqualify rules"
    )


# --- import -----------------------------------------------------------------------------


def _open(file: Path) -> IO[bytes]:
    try:
        return file.open("rb")
    except OSError as error:
        raise Refused(f"cannot open {file}: {error.strerror}") from None


class _Tracked:
    """A binary file that reports how far it has been read (for the progress bar)."""

    def __init__(self, stream: IO[bytes], advance: Callable[[int], None]) -> None:
        self.stream, self.advance = stream, advance

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.advance(len(line))
            yield line

    def read(self, size: int = -1) -> bytes:
        data = self.stream.read(size)
        self.advance(len(data))
        return data

    def readline(self, size: int = -1) -> bytes:
        data = self.stream.readline(size)
        self.advance(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _run_import(file: Path, reader: Callable[[IO[bytes]], Any], label: str, max_errors: int) -> None:
    application = _app()
    with _open(file) as raw, progress_bar(label, file.stat().st_size) as advance:
        summary = import_rows(application.uow, application.playbook, reader(_Tracked(raw, advance)), utc_now())
    _print_summary(file, summary, max_errors)
    if summary.rejected and not summary.accepted:
        sys.exit(1)


def _print_summary(file: Path, summary: ImportSummary, max_errors: int) -> None:
    result = summary.result
    table = Table(show_header=False, title=f"Import of {file.name}")
    table.add_row("rows read", f"{summary.rows:,}")
    table.add_row("accepted", f"{summary.accepted:,}")
    table.add_row("  stored", f"{result.stored:,}")
    table.add_row("  already known (ignored)", f"{result.duplicates:,}")
    table.add_row("rejected", f"{len(summary.rejected):,}")
    table.add_row("leads created", f"{result.leads_created:,}")
    table.add_row("leads updated", f"{result.leads_updated:,}")
    if result.anonymous:
        table.add_row("anonymous events (waiting for an identify)", f"{result.anonymous:,}")
    for stage, count in sorted(result.moves.items()):
        table.add_row(f"leads that entered {stage}", f"{count:,}")
    console.print(table)
    for line, reason in summary.rejected[:max_errors]:
        errors.print(f"{file}:{line}: {reason}", markup=False, highlight=False)
    if len(summary.rejected) > max_errors:
        errors.print(f"... and {len(summary.rejected) - max_errors:,} more rejected rows (see --max-errors)")


MaxErrors = Annotated[int, typer.Option(help="How many rejected rows to list.", min=0)]


@import_app.command("leads")
def import_leads(
    file: Annotated[Path, typer.Argument(help="A CSV file with a header row and an email column.")],
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="COLUMN=FIELD: the field a column fills ('COLUMN=-' leaves it out). Repeatable."),
    ] = None,
    max_errors: MaxErrors = 50,
) -> None:
    """Import leads from CSV: each row creates or updates the lead with that email."""
    mapping: dict[str, str] = {}
    for item in map_ or []:
        column, sep, field_name = item.partition("=")
        if not sep or not column.strip() or not field_name.strip():
            raise Refused(f"--map {item!r}: expected COLUMN=FIELD")
        mapping[column.strip()] = field_name.strip()
    playbook = _app().playbook
    _run_import(file, lambda stream: read_leads(stream, playbook, utc_now(), mapping), "Importing leads", max_errors)


@import_app.command("events")
def import_events(
    file: Annotated[Path, typer.Argument(help="A JSON Lines file: one Segment message (identify, track, page, ...) a line.")],
    max_errors: MaxErrors = 50,
) -> None:
    """Import events from JSON Lines (Segment format); a resent message (same messageId) changes nothing."""
    playbook = _app().playbook
    _run_import(file, lambda stream: read_events(stream, playbook, utc_now()), "Importing events", max_errors)


# --- leads ------------------------------------------------------------------------------


@app.command()
def rescore() -> None:
    """Recompute every lead's scores under the playbook in force (after changing it)."""
    application = _app()
    with application.uow() as uow:
        total = uow.leads.count()
    with progress_bar("Rescoring leads", total) as advance:
        done = lead_service.rescore_all(application.uow, application.playbook, utc_now(), progress=advance)
    console.print(f"Rescored {done:,} leads with playbook version {application.playbook.version}.")


@lead_app.command("show")
def lead_show(email: Annotated[str, typer.Argument(help="The lead's email.")]) -> None:
    """A lead's fields, scores with their breakdown, and stage history."""
    application = _app()
    view = lead_service.view_lead(application.uow(), application.playbook, email, utc_now())
    lead = view.lead
    console.print(f"[bold]{lead.email}[/bold] — stage [bold]{lead.stage}[/bold] (highest reached: {lead.highest_stage})")
    fields = Table("field", "value", title="Fields")
    for name, value in sorted(lead.fields.items()):
        fields.add_row(name, str(value))
    console.print(fields)
    scores = Table("score", "rule", "points", title=f"Scores: fit {lead.fit:g} + engagement {view.engagement:.1f} "
                                                     f"= {lead.fit + view.engagement:.1f}")
    for rule, points in lead.fit_breakdown.items():
        scores.add_row("fit", rule, f"{points:g}")
    for rule, points in view.engagement_breakdown.items():
        scores.add_row("engagement", rule, f"{points:.1f}")
    console.print(scores)
    history = Table("at (UTC)", "from", "to", "by", "reason", title="Stage history")
    for change in view.history:
        history.add_row(f"{change['at']:%Y-%m-%d %H:%M}", change["from_stage"] or "—", change["to_stage"], change["by"], change["reason"] or "")
    console.print(history)


@lead_app.command("move")
def lead_move(
    email: Annotated[str, typer.Argument(help="The lead's email.")],
    stage: Annotated[str, typer.Argument(help="The stage to move it to.")],
    reason: Annotated[str | None, typer.Option(help="Needed for hand-back and disqualify (one of the playbook's reasons).")] = None,
    by: Annotated[str, typer.Option(help="Who moves it (recorded in the history).")] = "cli",
) -> None:
    """Move a lead to another stage, as the playbook allows."""
    application = _app()
    change = lead_service.move_lead(application.uow(), application.playbook, email, stage, by=by, reason=reason, now=utc_now())
    console.print(f"{email}: {change.from_stage} → {change.to_stage}")


@lead_app.command("merge")
def lead_merge(
    duplicate: Annotated[str, typer.Argument(help="Email of the lead to fold in.")],
    into: Annotated[str, typer.Argument(help="Email of the lead that stays.")],
) -> None:
    """Merge two leads of the same person: events, identities and scores follow."""
    application = _app()
    lead = lead_service.merge_leads(application.uow(), application.playbook, duplicate, into, utc_now())
    console.print(f"Merged {duplicate} into {lead.email} (fit {lead.fit:g}, stage {lead.stage}).")


# --- server and API keys --------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on (LEADRELAY_HOST; default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (LEADRELAY_PORT; default 8000).", min=1, max=65535)] = None,
) -> None:
    """Run the server: tracking API (/v1), REST API (/api/v1), API docs (/docs)."""
    _serve(_app(), host, port)


def _serve(application: App, host: str | None, port: int | None) -> None:
    import uvicorn

    from leadrelay.entrypoints.api import create_app

    settings = application.settings
    host, port = host or settings.host, port or settings.port
    settings.host, settings.port = host, port  # where it listens: webhooks may not point back at it
    with application.read_uow() as uow:
        keys = [key for key in uow.api_keys.all() if key.revoked_at is None]
    console.print(f"LeadRelay on [bold]http://{host}:{port}[/bold] — API docs at http://{host}:{port}/docs")
    if not keys:
        console.print("No API key yet: create one with [bold]leadrelay apikey create --scope write --name website[/bold]")
    uvicorn.run(create_app(application), host=host, port=port, log_level="info", access_log=False)


@app.command()
def worker() -> None:
    """Deliver the outbox (webhooks, emails) in this process, until stopped (Ctrl-C or SIGTERM).

    The server runs a worker inside by default; run this when the server is started with
    LEADRELAY_WORKER_IN_SERVER=false, or to add delivery processes (each item goes to one)."""
    import signal
    import threading

    from leadrelay.entrypoints.playbook_follow import PlaybookFollower
    from leadrelay.entrypoints.worker import Worker

    application = _app()
    running = Worker(application)
    follower = PlaybookFollower(application)  # a playbook applied in a server reaches this worker too
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())
    running.start()
    follower.start()
    console.print("Worker running: delivering webhooks and emails (Ctrl-C to stop).")
    stop.wait()
    follower.stop()
    running.stop()
    console.print("Worker stopped.")


@rep_app.command("list")
def rep_list() -> None:
    """The playbook's reps: their teams, open deals, and whether they get new leads now."""
    from leadrelay.services.deals import reps

    application = _app()
    table = Table("rep", "name", "teams", "open deals", "gets new leads", "away until (UTC)", "note", title="Reps")
    for rep in reps(application.read_uow(), application.playbook, utc_now()):
        table.add_row(rep.email, rep.name, ", ".join(rep.teams), str(rep.open_deals),
                      "yes" if rep.available else "[red]no[/red]" + (" (inactive)" if rep.inactive else ""),
                      f"{rep.away_until:%Y-%m-%d %H:%M}" if rep.away_until else "", rep.note or "")
    console.print(table)


@rep_app.command("away")
def rep_away(
    email: Annotated[str, typer.Argument(help="The rep's email (as in the playbook's routing teams).")],
    until: Annotated[datetime | None, typer.Option(help="Back at this moment (ISO 8601; UTC unless a zone is given).",
                                                   formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S%z",
                                                            "%Y-%m-%dT%H:%M%z"])] = None,
    inactive: Annotated[bool, typer.Option(help="No new leads at all, until `rep back`.")] = False,
    note: Annotated[str | None, typer.Option(help="Why (shown in `rep list`).")] = None,
) -> None:
    """Mark a rep out of office (until a moment) or inactive: routing skips them meanwhile."""
    from leadrelay.services.deals import set_away

    if until is None and not inactive:
        raise Refused("say how long: --until 2026-12-01 (back then), or --inactive (until `leadrelay rep back`)")
    moment = None if until is None else (until if until.tzinfo else until.replace(tzinfo=UTC)).astimezone(UTC)
    application = _app()
    set_away(application.uow(), application.playbook, email, until=moment, inactive=inactive, note=note, now=utc_now())
    console.print(f"{email.strip().lower()} gets no new leads " + ("until set back" if inactive else f"until {moment:%Y-%m-%d %H:%M} UTC"))


@rep_app.command("back")
def rep_back(email: Annotated[str, typer.Argument(help="The rep's email.")]) -> None:
    """The rep takes new leads again (their turn in the rotation was kept)."""
    from leadrelay.services.deals import set_away

    application = _app()
    set_away(application.uow(), application.playbook, email, until=None, inactive=False, note=None, now=utc_now())
    console.print(f"{email.strip().lower()} gets new leads again")


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key (e.g. website, crm-sync).")],
    scope: Annotated[str, typer.Option(help="write: tracking calls only; admin: everything.")] = "write",
    user: Annotated[str | None, typer.Option(help="Bind the key to this user (email): it calls the REST API as them, "
                                             "with their role and teams (a user key).")] = None,
) -> None:
    """Create an API key. The key is printed once: it is not stored, only its hash."""
    from leadrelay.services.api_keys import create_key

    key, record = create_key(_app().uow(), name=name, scope=scope, user=user, now=utc_now())
    bound = f", acting as {record.user.email}" if record.user else ""
    console.print(f"Created {record.scope} key {record.id} ({record.name}{bound}). Keep it now, it is not shown again:")
    print(key)


@apikey_app.command("list")
def apikey_list() -> None:
    """List API keys (their first characters, never the keys)."""
    from leadrelay.services.api_keys import list_keys

    table = Table("id", "name", "scope", "user", "starts with", "created (UTC)", "revoked (UTC)", title="API keys")
    for key in list_keys(_app().read_uow()):
        table.add_row(str(key.id), key.name, key.scope, key.user.email if key.user else "", key.prefix + "…",
                      f"{key.created_at:%Y-%m-%d %H:%M}",
                      f"{key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "")
    console.print(table)


@apikey_app.command("revoke")
def apikey_revoke(key: Annotated[str, typer.Argument(help="The key's id or its first characters (see `apikey list`).")]) -> None:
    """Revoke an API key: it stops working at once."""
    from leadrelay.services.api_keys import revoke_key

    record = revoke_key(_app().uow(), key, utc_now())
    console.print(f"Revoked key {record.id} ({record.name}).")


# --- users ---------------------------------------------------------------------------------


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Argument(help="The email they log in with.")],
    role: Annotated[str, typer.Option(help="admin, marketing, sales_manager or sales_rep.")],
    name: Annotated[str, typer.Option(help="Their name as pages show it.")] = "",
    team: Annotated[str, typer.Option(help="A team of the playbook (a manager's team; reps are in the playbook's teams).")] = "",
    password: Annotated[str, typer.Option(help="Leave out to be asked (not echoed) or to get a generated one.",
                                          show_default=False)] = "",
) -> None:
    """Create a user who logs in to the web app."""
    from leadrelay.services.users import create_user

    generated = not password and not sys.stdin.isatty()
    if generated:
        import secrets

        password = secrets.token_urlsafe(12)
    elif not password:
        password = typer.prompt("Password (10 characters or more)", hide_input=True, confirmation_prompt=True)
    application = _app()
    user = create_user(application.uow(), application.playbook, email=email, role=role, password=password, name=name,
                       team=team, now=utc_now())
    console.print(f"Created {user.role.label} {user.email}" + (f" in team {user.team}" if user.team else "") + ".")
    if generated:
        console.print("Password (shown once):")
        print(password)


@user_app.command("list")
def user_list() -> None:
    """List the users, their roles and teams."""
    from leadrelay.services.users import users

    table = Table("email", "name", "role", "team", "active", title="Users")
    table.columns[0].overflow = "fold"  # an email is shown whole, however narrow the terminal
    for user in users(_app().read_uow()):
        table.add_row(user.email, user.name, user.role.label, user.team or "", "yes" if user.active else "no")
    console.print(table)


@user_app.command("set")
def user_set(
    email: Annotated[str, typer.Argument(help="The user's email.")],
    role: Annotated[str | None, typer.Option(help="A new role.")] = None,
    team: Annotated[str | None, typer.Option(help="A new team ('' for none).")] = None,
    active: Annotated[bool | None, typer.Option("--enable/--disable", help="Let them log in, or not (ends their sessions).",
                                                show_default=False)] = None,
    password: Annotated[bool, typer.Option("--password", help="Set a new password (asked, not echoed).")] = False,
) -> None:
    """Change a user's role, team, access or password."""
    from leadrelay.services.users import update_user

    new_password = typer.prompt("New password", hide_input=True, confirmation_prompt=True) if password else None
    application = _app()
    user = update_user(application.uow(), application.playbook, email, utc_now(), role=role, team=team,
                       password=new_password, disabled=None if active is None else not active)
    console.print(f"{user.email}: {user.role.label}" + (f", team {user.team}" if user.team else "")
                  + ("" if user.active else ", disabled") + ".")


@app.command()
def demo(
    leads: Annotated[int, typer.Option(help="How many leads to generate.", min=1000, max=1_000_000)] = 5000,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same data.")] = 7,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server afterwards.")] = True,
) -> None:
    """Generate a realistic funnel: accounts, contacts, months of events, reps and sales outcomes."""
    from leadrelay.services.demo import generate

    application = _app()
    with progress_bar("Generating demo leads", leads) as advance:
        summary = generate(application.uow, application.playbook, leads=leads, seed=seed, now=utc_now(), progress=advance)
    table = Table("stage", "leads now", "reached at least", title="Demo funnel")
    for stage in application.playbook.stages.values():
        table.add_row(stage.name, f"{summary.current.get(stage.id, 0):,}", f"{summary.reached.get(stage.id, 0):,}" if stage.rank is not None else "")
    console.print(table)
    console.print(f"{summary.leads:,} leads, {summary.events:,} events, {summary.accounts:,} accounts in {summary.seconds:.1f} s "
                  f"({summary.events / max(summary.seconds, 1e-9):,.0f} events/s).")
    console.print("Look at a lead: [bold]leadrelay lead show EMAIL[/bold] — e.g. " + ", ".join(summary.examples[:3]))
    from leadrelay.services.users import demo_users

    logins = Table("role", "email", "password", title="Demo logins for the web app (new passwords each run)")
    for column in logins.columns[1:]:
        column.overflow = "fold"
    for user, password in demo_users(application.uow(), application.playbook, utc_now()):
        logins.add_row(user.role.label, user.email, password)
    console.print(logins)
    if serve:
        from leadrelay.services.api_keys import create_key

        write_key, _ = create_key(application.uow(), name="demo website", scope="write", now=utc_now())
        admin_key, _ = create_key(application.uow(), name="demo admin", scope="admin", now=utc_now())
        console.print(f"Demo API keys — write (tracking): [bold]{write_key}[/bold]  admin (REST): [bold]{admin_key}[/bold]")
        _serve(application, None, None)


# --- nurture: sequences and the suppression list -------------------------------------------

sequence_app = typer.Typer(help="Nurture sequences: what each did, and putting a lead in one.", no_args_is_help=True)
app.add_typer(sequence_app, name="sequence")
suppression_app = typer.Typer(help="Addresses no nurture email goes to (unsubscribed, bounced, complained).",
                              no_args_is_help=True)
app.add_typer(suppression_app, name="suppression")
_STAT_COLUMNS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained", "mqls")


@sequence_app.command("list")
def sequence_list() -> None:
    """Every sequence: its trigger, runs, and what its emails did (with the MQLs it produced)."""
    from leadrelay.services.nurture import analytics

    application = _app()
    found = analytics(application.read_uow(), application.playbook)
    table = Table("", *(stats.id for stats in found), title="Nurture sequences")
    table.add_row("name", *(stats.name for stats in found))
    table.add_row("trigger", *(stats.trigger or "(not in the playbook)" for stats in found))
    for status in ("active", "completed", "exited"):
        table.add_row(f"runs {status}", *(f"{stats.runs.get(status, 0):,}" for stats in found))
    for name in _STAT_COLUMNS:
        table.add_row(name, *(f"{stats.totals[name]:,}" for stats in found))
    console.print(table)


@sequence_app.command("show")
def sequence_show(sequence: Annotated[str, typer.Argument(help="The sequence's id (see `sequence list`).")]) -> None:
    """A sequence's steps, and what each email step did."""
    from leadrelay.services.nurture import analytics

    application = _app()
    [stats] = analytics(application.read_uow(), application.playbook, sequence)
    found = application.playbook.sequences.get(sequence)
    console.print(f"[bold]{stats.name}[/bold] ({stats.id}), trigger {stats.trigger}: "
                  + ", ".join(f"{count} {status}" for status, count in stats.runs.items()))
    if found is not None:
        for index in range(len(found.steps)):
            console.print(f"  {found.step_label(index)}", highlight=False, markup=False)
    table = Table("", *(f"step {step.step}" for step in stats.steps), "all", title="Emails")
    for name in _STAT_COLUMNS:
        table.add_row(name, *(f"{step.counts[name]:,}" for step in stats.steps), f"{stats.totals[name]:,}")
    console.print(table)
    if stats.exits:
        console.print("Left early: " + ", ".join(f"{reason} {count}" for reason, count in sorted(stats.exits.items())))


@sequence_app.command("enroll")
def sequence_enroll(
    sequence: Annotated[str, typer.Argument(help="The sequence's id.")],
    email: Annotated[str, typer.Argument(help="The lead's email.")],
) -> None:
    """Put a lead in a sequence by hand (as the sequence's rules allow)."""
    from leadrelay.services.nurture import enroll

    application = _app()
    enrollment = enroll(application.uow(), application.playbook, sequence, email, utc_now())
    console.print(f"{email.strip().lower()} is in {sequence!r} (enrollment {enrollment.id}); the worker sends its emails.")


@suppression_app.command("list")
def suppression_list(limit: Annotated[int, typer.Option(min=1, max=100_000)] = 100) -> None:
    """The newest addresses on the suppression list."""
    from leadrelay.services.nurture import suppressions

    table = Table("email", "reason", "since (UTC)", "note", title="Suppression list")
    for row in suppressions(_app().read_uow(), limit=limit):
        table.add_row(row["email"], row["reason"], f"{row['at']:%Y-%m-%d %H:%M}", row["note"] or "")
    console.print(table)


@suppression_app.command("add")
def suppression_add(
    email: Annotated[str, typer.Argument(help="The address.")],
    reason: Annotated[str, typer.Option(help="manual, unsubscribed, bounced or complained.")] = "manual",
    note: Annotated[str | None, typer.Option(help="Why (kept with it).")] = None,
) -> None:
    """Add an address: it gets no nurture email and leaves its sequences."""
    from leadrelay.services.nurture import suppress

    added = suppress(_app().uow(), email, reason, utc_now(), note=note, source="cli")
    console.print(f"{email.strip().lower()} {'is now' if added else 'was already'} on the suppression list")


@suppression_app.command("remove")
def suppression_remove(email: Annotated[str, typer.Argument(help="The address.")]) -> None:
    """Take an address off the list (only when the person asked for the emails again)."""
    from leadrelay.services.nurture import unsuppress

    if not unsuppress(_app().uow(), email):
        raise Refused(f"{email.strip().lower()} is not on the suppression list")
    console.print(f"{email.strip().lower()} is off the suppression list")


# --- the meeting report and content (in report_cli) ---------------------------------------

from leadrelay.entrypoints import report_cli  # noqa: E402 - its commands use the helpers above

app.command("report")(report_cli.report)
app.add_typer(report_cli.content_app, name="content")

# --- predictive scoring, scoring suggestions and the backtest (in model_cli) ---------------------

from leadrelay.entrypoints import model_cli  # noqa: E402 - its commands use the helpers above

app.add_typer(model_cli.model_app, name="model")
playbook_app.command("suggest")(model_cli.suggest)
playbook_app.command("simulate")(model_cli.simulate)

# --- a person's data (erase, export) and backups of the embedded database (in data_cli) ---------

from leadrelay.entrypoints import data_cli  # noqa: E402 - its commands use the helpers above

for _command in (data_cli.erase, data_cli.export, data_cli.backup, data_cli.restore):
    app.command(_command.__name__)(_command)


if __name__ == "__main__":  # pragma: no cover
    main()
