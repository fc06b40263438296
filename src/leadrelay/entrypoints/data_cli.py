"""The `leadrelay erase|export|backup|restore` commands: a person's data, and copies of the
embedded database. Registered on the `leadrelay` command by `leadrelay.entrypoints.cli`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from leadrelay.domain.clock import utc_now


def erase(
    email: Annotated[str, typer.Argument(help="The person's email (any address of their leads).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person at their request: their events, identities, notes, tasks, outbox items,
    sent-email addresses, suppression entry and refused messages go; their lead stays, anonymised
    (no email, name, company or fields), so the reports count the same. Recorded in the audit log.
    Cannot be undone (except from a backup)."""
    from leadrelay.entrypoints.cli import Refused, _app, console
    from leadrelay.services.personal_data import erase_person

    application = _app()
    if not yes:
        if not sys.stdin.isatty():
            raise Refused("erasing cannot be undone: confirm with --yes")
        typer.confirm(f"Erase {email.strip().lower()} and everything held about them?", abort=True)
    done = erase_person(application.uow(), email, actor="cli", now=utc_now())
    removed = ", ".join(f"{table} {count:,}" for table, count in sorted(done.removed.items())) or "nothing else"
    console.print(f"Erased {done.email}: lead(s) {', '.join(map(str, done.lead_ids))} kept anonymised for the "
                  f"reports; rows removed or stripped: {removed}.", highlight=False)


def export(
    email: Annotated[str, typer.Argument(help="The person's email (any address of their leads).")],
    out: Annotated[Path | None, typer.Option(help="Write the JSON to this file (default: print it).")] = None,
) -> None:
    """Everything held about a person, as JSON: their leads, events, identities, stage history,
    deals, touches, emails, outbox items and the rest, table by table."""
    from leadrelay.entrypoints.cli import Refused, _app, errors
    from leadrelay.services.personal_data import export_person

    application = _app()
    if out is not None and (out.is_dir() or not out.parent.is_dir()):
        raise Refused(f"--out {out}: give a file in an existing folder")
    data = export_person(application.read_uow(), email, utc_now())
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if out is None:
        print(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        rows = sum(len(found) for found in data["tables"].values())
        errors.print(f"Wrote {out}: {rows:,} rows from {len(data['tables'])} tables about {data['email']}.")


def backup(
    file: Annotated[Path, typer.Argument(help="The backup file to write (replaced if it exists).")],
) -> None:
    """Back up the embedded database (SQLite) to FILE while LeadRelay runs: the copy is the
    database as it was at one moment, checked before it is kept. For PostgreSQL, use pg_dump
    (the command says how)."""
    from leadrelay.adapters.backup import BackupRefused
    from leadrelay.adapters.backup import backup as copy
    from leadrelay.config import get_settings
    from leadrelay.entrypoints.cli import Refused, console, progress_bar

    try:
        with progress_bar("Backing up", None):
            copied = copy(get_settings().database_url, file)
    except BackupRefused as error:
        raise Refused(str(error)) from None
    console.print(f"Backed up to {copied.path}: {copied.bytes / 1e6:,.1f} MB, {copied.leads or 0:,} leads, "
                  f"{copied.events or 0:,} events (integrity checked).", highlight=False)


def restore(
    file: Annotated[Path, typer.Argument(help="A backup written by `leadrelay backup`.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the embedded database (SQLite) by a backup. Stop the server and workers first.
    The backup is checked before anything is replaced, and brought to this version's schema.
    For PostgreSQL, use pg_restore (the command says how)."""
    from leadrelay.adapters.backup import BackupRefused, check, sqlite_path
    from leadrelay.adapters.backup import restore as copy_back
    from leadrelay.adapters.database import make_engine, migrate
    from leadrelay.config import get_settings
    from leadrelay.entrypoints.cli import Refused, console, progress_bar

    url = get_settings().database_url
    try:
        target = sqlite_path(url)
        found = check(file)
        if not yes:
            if not sys.stdin.isatty():
                raise Refused(f"restoring replaces everything in {target}: confirm with --yes")
            typer.confirm(f"Replace everything in {target} by {file} ({found.leads or 0:,} leads)?", abort=True)
        with progress_bar("Restoring", None):
            restored = copy_back(file, url)
    except BackupRefused as error:
        raise Refused(str(error)) from None
    engine = make_engine(url)
    try:
        migrate(engine)  # a backup from an earlier version gets the newer schema
    finally:
        engine.dispose()
    console.print(f"Restored {file} into {target}: {restored.leads or 0:,} leads, {restored.events or 0:,} events "
                  "(integrity checked). Start the server again.", highlight=False)
