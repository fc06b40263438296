"""Times are stored as UTC and come back timezone-aware on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.exc import StatementError

from leadrelay.adapters import tables
from leadrelay.domain.clock import UTC
from leadrelay.domain.model import Event
from leadrelay.services.ingest import ingest

from .support import ALL_TABLES, NOW, Store, identify, page

NEW_YORK = ZoneInfo("America/New_York")


def _time_columns(table):  # type: ignore[no-untyped-def]
    return [column.name for column in table.columns if isinstance(column.type, tables.UtcDateTime)]


def test_every_stored_time_comes_back_timezone_aware_in_utc(store: Store) -> None:
    store.send(
        identify("t-1", "2026-11-20T11:00:00.123456+02:00", user_id="u-ann", anonymous_id="v-ann", email="ann@acme.io"),
        page("t-2", "2026-11-20T04:00:00-05:00", "/pricing", user_id="u-ann"),
    )
    store.move("ann@acme.io", "mql", now=datetime(2026, 11, 20, 7, 30, tzinfo=NEW_YORK))

    seen = 0
    for table in ALL_TABLES:
        for row in store.rows(table):
            for name in _time_columns(table):
                value = row[name]
                if value is None:
                    continue
                assert value.tzinfo is not None, f"{table.name}.{name} came back naive: {value!r}"
                assert value.utcoffset() == timedelta(0), f"{table.name}.{name} is not in UTC: {value!r}"
                seen += 1
    assert seen >= 12

    events = store.events_by_message()
    assert events["t-1"]["timestamp"] == datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)  # to the microsecond
    assert events["t-2"]["timestamp"] == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert events["t-1"]["received_at"] == NOW
    lead = store.lead("ann@acme.io")
    assert lead.created_at == datetime(2026, 11, 20, 9, 0, 0, 123456, tzinfo=UTC)
    assert lead.stage_entered_at == datetime(2026, 11, 20, 12, 30, tzinfo=UTC)  # 07:30 in New York
    assert lead.engagement.as_of == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert store.rows(tables.stage_changes)[-1]["at"] == datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def test_times_are_compared_as_instants_whatever_zone_they_were_sent_in(store: Store) -> None:
    # The same instant in two zones: the later message (by time, not by zone) sets the field.
    store.send(
        identify("z-1", "2026-11-20T10:00:00+01:00", user_id="u-z", email="zed@acme.io", title="Analyst"),
        identify("z-2", "2026-11-20T04:30:00-05:00", user_id="u-z", email="zed@acme.io", title="Director"),
    )

    assert store.lead("zed@acme.io").fields["title"] == "Director"  # 09:30 UTC comes after 09:00 UTC


def test_a_naive_time_is_refused_never_guessed(store: Store) -> None:
    naive = datetime(2026, 11, 20, 9, 0)
    with pytest.raises(StatementError, match="naive datetime"), store.engine.begin() as connection:
        connection.execute(tables.accounts.insert(), {"domain": "naive.example", "is_target": False, "created_at": naive})
    assert store.count(tables.accounts) == 0


def test_a_naive_time_is_refused_on_the_bulk_write_path_too(store: Store) -> None:
    """The batch path writes events with the driver's executemany, past the column type that
    refuses naive times: it must refuse them just the same, not read them as local time."""
    visit = Event(message_id="naive-1", type="page", name="page_view", timestamp=datetime(2026, 11, 20, 9, 0),
                  anonymous_id="visitor-naive", properties={"path": "/pricing"})

    with pytest.raises((ValueError, StatementError)):
        ingest(store.uow(), store.playbook, [visit], NOW)

    assert store.count(tables.events) == 0
