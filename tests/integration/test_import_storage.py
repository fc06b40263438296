"""Importing files through the batch path: the good rows are kept, each bad row is reported
by line and writes nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import io

from leadrelay.adapters import tables
from leadrelay.adapters.files import read_events, read_leads
from leadrelay.services.importing import import_rows

from .support import NOW, Store

LEADS_CSV = b"""email,name,title,industry,company_size,created_at
ann@acme.io,Ann Archer,VP Sales,software,500,2026-11-01T09:00:00Z
not-an-email,Bob Broken,CTO,software,50,
cy@gamma.io,Cy Gray,Engineer,aerospace,20,
dee@delta.io,Dee Dunn,Manager,retail
eve@epsilon.io,Eve East,Head of IT,fintech,lots,
fay@zeta.io,Fay Fox,Director,healthcare,1000,2026-11-02T09:00:00Z
gus@eta.io,Gus Gale,Founder,software,30,2031-01-01T00:00:00Z
"""
GOOD_LEADS = {"ann@acme.io", "fay@zeta.io"}
BAD_LINES = [3, 4, 5, 6, 8]


def import_leads(store: Store, data: bytes, **options):  # type: ignore[no-untyped-def]
    rows = read_leads(io.BytesIO(data), store.playbook, NOW)
    return import_rows(store.uow, store.playbook, rows, NOW, **options)


def test_a_lead_import_keeps_the_good_rows_and_writes_nothing_for_the_bad_ones(store: Store) -> None:
    summary = import_leads(store, LEADS_CSV)

    assert (summary.rows, summary.accepted) == (7, 2)
    assert [line for line, _ in summary.rejected] == BAD_LINES
    reasons = dict(summary.rejected)
    assert "not-an-email" in reasons[3]
    assert "industry" in reasons[4] and "aerospace" in reasons[4]
    assert "expected 6 values, found 4" in reasons[5]
    assert "company_size" in reasons[6]
    assert "future" in reasons[8]
    assert {row["email"] for row in store.rows(tables.leads)} == GOOD_LEADS
    assert store.count(tables.events) == 2
    assert {row["domain"] for row in store.rows(tables.accounts)} == {"acme.io", "zeta.io"}
    ann = store.lead("ann@acme.io")
    assert ann.fields == {"name": "Ann Archer", "title": "VP Sales", "industry": "software", "company_size": 500}
    assert ann.fit == 70
    assert ann.created_at.isoformat() == "2026-11-01T09:00:00+00:00"  # the file's created_at, not the import time


def test_importing_the_same_lead_file_again_changes_nothing(store: Store) -> None:
    import_leads(store, LEADS_CSV)
    before = store.snapshot()

    again = import_leads(store, LEADS_CSV)

    assert (again.result.stored, again.result.duplicates) == (0, 2)
    assert store.snapshot() == before


def test_a_lead_file_imported_in_several_batches_stores_every_good_row(store: Store) -> None:
    header = b"email,title,company_size\n"
    rows = b"".join(b"rep%d@company%d.example,Manager,%d\n" % (i, i % 7, 10 + i) for i in range(25))

    summary = import_leads(store, header + rows + b"broken@,Manager,10\n", batch_size=4)

    assert (summary.accepted, [line for line, _ in summary.rejected]) == (25, [27])
    assert summary.result.leads_created == 25
    assert store.count(tables.leads) == 25
    assert store.count(tables.accounts) == 7


EVENTS_JSONL = b"""{"type": "identify", "messageId": "e-1", "userId": "u-ann", "timestamp": "2026-11-20T09:00:00Z", "traits": {"email": "ann@acme.io", "title": "VP Sales"}}
{"type": "page", "messageId": "e-2", "userId": "u-ann", "timestamp": "2026-11-20T09:00:00Z", "properties": {"path": "/pricing"}
{"type": "track", "messageId": "e-3", "userId": "u-ann", "timestamp": "2026-11-20T09:00:00Z"}
{"type": "track", "messageId": "e-4", "userId": "u-ann", "event": "download", "timestamp": "2031-01-01T00:00:00Z"}

{"type": "track", "messageId": "e-5", "userId": "u-ann", "event": "Webinar Attended", "timestamp": "2026-11-20T09:00:00Z"}
{"type": "identify", "messageId": "e-6", "userId": "u-ann", "traits": {"email": "ann@acme.io", "company_size": "many"}}
"""


def test_an_event_import_keeps_the_good_lines_and_writes_nothing_for_the_bad_ones(store: Store) -> None:
    rows = read_events(io.BytesIO(EVENTS_JSONL), store.playbook, NOW)

    summary = import_rows(store.uow, store.playbook, rows, NOW)

    assert [line for line, _ in summary.rejected] == [2, 3, 4, 7]
    reasons = dict(summary.rejected)
    assert "JSON" in reasons[2]
    assert "event name" in reasons[3]
    assert "future" in reasons[4]
    assert "company_size" in reasons[7]
    assert set(store.events_by_message()) == {"e-1", "e-5"}
    lead = store.lead("ann@acme.io")
    assert "company_size" not in lead.fields
    assert store.view("ann@acme.io", now=lead.engagement.as_of).engagement_breakdown == {"webinar attended": 20}
