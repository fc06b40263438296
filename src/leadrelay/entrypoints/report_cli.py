"""The `leadrelay report` command (the joint meeting report, and CSVs of every report) and the
`leadrelay content` commands (content items, and shares logged by reps). Registered on the
`leadrelay` command by `leadrelay.entrypoints.cli`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from leadrelay.adapters.content import KINDS
from leadrelay.domain.clock import UTC, utc_now

content_app = typer.Typer(help="Content items (assets, pages, emails, webinars) and the shares reps log.",
                          no_args_is_help=True)

DAY = ["%Y-%m-%d"]
MOMENT = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H:%M:%S%z"]


def report(
    first: Annotated[datetime | None, typer.Option("--from", formats=DAY,
                                                   help="First day (in the playbook's time zone; default: 30 days before --to).")] = None,
    last: Annotated[datetime | None, typer.Option("--to", formats=DAY, help="Last day, included (default: today).")] = None,
    out: Annotated[Path, typer.Option(help="The HTML file to write.")] = Path("report.html"),
    png: Annotated[bool, typer.Option("--png", help="Also write a PNG of each chart beside it (OUT-NAME.png).")] = False,
    csv: Annotated[Path | None, typer.Option(help="Also write every report's tables as CSV files into this folder.")]
    = None,
) -> None:
    """The joint sales and marketing meeting report: one self-contained HTML file (opens offline)
    with the headline numbers against the period before, what changed, charts, SLA breaches by
    team, hand-back reasons, the best and worst sources."""
    from leadrelay.entrypoints.cli import Refused, _app, console, progress_bar
    from leadrelay.reports.content import content_report
    from leadrelay.reports.export import tables_of
    from leadrelay.reports.funnel import funnel_report
    from leadrelay.reports.meeting import build_meeting, write_meeting
    from leadrelay.reports.periods import Period
    from leadrelay.reports.sla import sla_report
    from leadrelay.reports.sources import sources_report
    from leadrelay.reports.velocity import velocity_report
    from leadrelay.services.analytics import for_reports, refreshed

    application = _app()
    period = Period.of(first.date() if first else None, last.date() if last else None, application.playbook.timezone)
    if out.is_dir():
        raise Refused(f"--out {out}: is a folder; give a file name, e.g. {out / 'report.html'}")
    if not out.parent.exists():
        raise Refused(f"--out {out}: the folder {out.parent} does not exist")
    now = utc_now()
    with progress_bar("Bringing the report tables up to date", None) as advance:
        done = [0]

        def step(count: int, _total: int) -> None:
            advance(count - done[0])
            done[0] = count

        refreshed(application.engine, application.playbook, now, progress=step)
    with application.read_uow() as uow:
        for_reports(uow.connection)
        meeting = build_meeting(uow.connection, application.playbook, period, now)
        written = write_meeting(meeting, out, png=png)
        if csv is not None:
            try:
                csv.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise Refused(f"--csv {csv}: cannot create the folder ({error.strerror})") from None
            reports = {
                "funnel": funnel_report(uow.connection, application.playbook, period),
                "velocity": velocity_report(uow.connection, application.playbook, period, now),
                "sources": sources_report(uow.connection, application.playbook, period),
                "content": content_report(uow.connection, application.playbook, period),
                "sla": sla_report(uow.connection, application.playbook, period.start, period.end, now, by="team"),
                "meeting": meeting,
            }
            for name, found in reports.items():
                for table, rows in tables_of(found).items():
                    path = csv / f"{name}-{table}.csv"
                    path.write_text(rows.csv(), encoding="utf-8", newline="")
                    written.append(path)
    console.print(f"Meeting report for {period.label()} ({period.timezone}), compared with {period.previous().label()}:")
    for sentence in meeting.sentences or ["No figure moved enough to mention."]:
        console.print(f"  • {sentence}", highlight=False)
    for path in written:
        console.print(f"Wrote {path}", highlight=False)


def _moment(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


@content_app.command("add")
def content_add(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}.")],
    key: Annotated[str, typer.Argument(help="How events name it: the asset downloaded, the page's path, the email's "
                                            "campaign, the webinar.")],
    title: Annotated[str | None, typer.Option(help="What people call it (default: the key).")] = None,
    url: Annotated[str | None, typer.Option(help="Where it lives.")] = None,
) -> None:
    """Make a content item known, so that the reports count who consumed and who shared it."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services.content import add_item

    item = add_item(_app().uow(), kind=kind, key=key, title=title, url=url, now=utc_now())
    console.print(f"Added content item {item['id']}: {item['kind']} {item['key']!r} ({item['title']})", highlight=False)


@content_app.command("list")
def content_list(
    kind: Annotated[str | None, typer.Option(help=f"Only this kind ({', '.join(KINDS)}).")] = None,
    archived: Annotated[bool, typer.Option(help="The archived items instead.")] = False,
) -> None:
    """The content items, newest first, with how often reps shared each."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services.content import items

    table = Table("id", "kind", "key", "title", "shares", "last shared (UTC)", title="Content")
    for item in items(_app().read_uow(), kind=kind, archived=archived, limit=500):
        table.add_row(str(item["id"]), item["kind"], item["key"], item["title"], str(item["shares"]),
                      f"{item['last_shared_at']:%Y-%m-%d %H:%M}" if item["last_shared_at"] else "")
    console.print(table)


@content_app.command("share")
def content_share(
    kind: Annotated[str, typer.Argument(help=f"The item's kind ({', '.join(KINDS)}).")],
    key: Annotated[str, typer.Argument(help="The item's key.")],
    lead: Annotated[str, typer.Option(help="The lead's email.")],
    by: Annotated[str, typer.Option(help="The rep who shared it.")],
    at: Annotated[datetime | None, typer.Option(formats=MOMENT, help="When (UTC unless a zone is given; default: now).")]
    = None,
    note: Annotated[str | None, typer.Option(help="A note.")] = None,
) -> None:
    """Log that a rep shared a content item with a lead."""
    from leadrelay.entrypoints.cli import _app, console
    from leadrelay.services.content import share

    stored = share(_app().uow(), kind=kind, key=key, email=lead, by=by, at=_moment(at), note=note, now=utc_now())
    console.print(f"{stored['by']} shared {stored['title']!r} with {stored['email']} at {stored['at']:%Y-%m-%d %H:%M} UTC",
                  highlight=False)
