"""Bad input to the file readers and the playbook loader (Hypothesis): whatever the bytes, the
JSON Lines and CSV importers give each line an event or a reason, or refuse the file as a whole
with a message; the playbook loader gives a playbook or its list of problems. Never another
exception, never a hang: every run is bounded (fixed examples, derandomized, deadline per
example). Then the limits, each with the input that broke things before it existed."""

from __future__ import annotations

import io
import json
import string
import time
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadrelay.adapters.files import (
    CSV_MAX_FIELD,
    FileRefused,
    Row,
    read_events,
    read_leads,
)
from leadrelay.adapters.playbook_file import (
    MAX_PLAYBOOK_BYTES,
    PlaybookError,
    default_playbook_text,
    parse_playbook,
)
from leadrelay.adapters.segment import MAX_DEPTH, InvalidMessage, parse_time, to_event
from leadrelay.domain.clock import UTC
from leadrelay.domain.playbook import Playbook

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FUZZ = settings(max_examples=100, deadline=timedelta(seconds=5), derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PLAYBOOK = parse_playbook(default_playbook_text(), "<built-in playbook>")
TRIED: dict[str, int] = {}  # inputs tried per reader (printed with -s)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
message_keys = st.sampled_from(["type", "userId", "anonymousId", "messageId", "event", "timestamp", "traits",
                                "properties", "context", "previousId", "groupId", "email", "sentAt"])
messages = st.dictionaries(message_keys, json_values | st.sampled_from(
    ["identify", "track", "page", "alias", "group", "u-1", "ann@acme.example", "2026-11-20T10:00:00Z",
     "1969-12-31T23:59:59Z", "9999-12-31T23:59:59-05:00", "Demo Requested"]), max_size=8)


def _count(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


def _checked(rows: list[Row]) -> None:
    for row in rows:
        assert isinstance(row.line, int) and row.line >= 1
        assert (row.event is None) != (row.error is None), row
        if row.error is not None:
            assert row.error.strip() and "Traceback" not in row.error


@FUZZ
@given(lines=st.lists(st.one_of(messages.map(json.dumps), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                                st.text(max_size=100)), max_size=8))
def test_every_line_of_a_json_lines_file_becomes_an_event_or_a_reason(lines: list[str]) -> None:
    _count("jsonl files")
    data = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", errors="surrogatepass")
    _checked(list(read_events(io.BytesIO(data), PLAYBOOK, NOW)))


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_json_lines_file_are_read_without_failing(data: bytes) -> None:
    _count("jsonl bytes")
    _checked(list(read_events(io.BytesIO(data), PLAYBOOK, NOW)))


csv_cells = st.one_of(st.text(max_size=20), st.sampled_from(["ann@acme.example", "not an email", "1e999", "-5",
                                                             "2026-11-20", "1969-01-01", "3000-01-01", '"', ";", ""]))


@FUZZ
@given(header=st.lists(st.sampled_from(["email", "name", "company_size", "country", "created_at", "industry",
                                        "unknown", ""]), min_size=1, max_size=5),
       rows=st.lists(st.lists(csv_cells, max_size=6), max_size=6),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_every_row_of_a_csv_file_becomes_a_lead_or_a_reason_or_the_file_is_refused(
    header: list[str], rows: list[list[str]], delimiter: str
) -> None:
    _count("csv files")
    text = "\n".join(delimiter.join(cells) for cells in [header, *rows])
    try:
        _checked(list(read_leads(io.BytesIO(text.encode("utf-8", errors="surrogatepass")), PLAYBOOK, NOW)))
    except FileRefused as refused:
        assert str(refused).strip()


@FUZZ
@given(data=st.binary(max_size=400))
def test_any_bytes_as_a_csv_file_are_read_or_refused_with_a_message(data: bytes) -> None:
    _count("csv bytes")
    try:
        _checked(list(read_leads(io.BytesIO(b"email,name\n" + data), PLAYBOOK, NOW)))
    except FileRefused as refused:
        assert str(refused).strip()


def test_a_csv_file_that_is_not_utf8_is_refused_saying_how_to_save_it() -> None:
    with pytest.raises(FileRefused, match="not UTF-8 text: byte 0xfc .* Save it as UTF-8"):
        list(read_leads(io.BytesIO("email,name\nann@acme.example,Ann Müller\n".encode("latin-1")), PLAYBOOK, NOW))


def test_a_csv_field_larger_than_the_limit_is_refused_on_its_line_and_the_next_rows_are_read() -> None:
    data = f"email,name\nann@acme.example,{'x' * (CSV_MAX_FIELD + 1)}\nbob@acme.example,Bob\n".encode()
    refused, taken = read_leads(io.BytesIO(data), PLAYBOOK, NOW)
    assert refused.error is not None and "field larger than field limit" in refused.error
    assert taken.event is not None and taken.event.email == "bob@acme.example"


DEFAULT_LINES = default_playbook_text().splitlines()


@FUZZ
@given(edits=st.lists(st.tuples(st.integers(0, len(DEFAULT_LINES) - 1),
                                st.one_of(st.text(string.printable, max_size=40),
                                          st.sampled_from(["  - {id: x, moves: [y]}", "mql: {rule: '1 +'}",
                                                           "&a [*a]", "*nowhere", "[[[[", "key: !!python/object",
                                                           "version: 1e400", "\t", "stages: null"]))),
                      min_size=1, max_size=4))
def test_a_playbook_changed_anywhere_is_read_or_refused_with_its_problems(edits: list[tuple[int, str]]) -> None:
    _count("playbooks")
    lines = list(DEFAULT_LINES)
    for index, text in edits:
        lines[index] = text
    try:
        assert isinstance(parse_playbook("\n".join(lines), "p.yaml"), Playbook)
    except PlaybookError as error:
        assert error.problems and all(problem.message.strip() for problem in error.problems)


@FUZZ
@given(text=st.text(max_size=300))
def test_any_text_as_a_playbook_is_read_or_refused_with_its_problems(text: str) -> None:
    _count("playbook texts")
    try:
        parse_playbook(text, "p.yaml")
    except PlaybookError as error:
        assert error.problems


# --- the limits ---------------------------------------------------------------------------


def _refused_quickly(text: str, message: str) -> None:
    started = time.monotonic()
    with pytest.raises(PlaybookError) as refused:
        parse_playbook(text, "p.yaml")
    assert time.monotonic() - started < 10
    assert message in str(refused.value.problems[0].message)


def test_a_playbook_larger_than_the_limit_is_refused_before_it_is_read() -> None:
    _refused_quickly(default_playbook_text() + "\n# " + "x" * MAX_PLAYBOOK_BYTES + "\n", "larger than 1,000 KB")


def test_a_playbook_whose_aliases_expand_to_billions_of_values_is_refused_at_once() -> None:
    bomb = "a: &a [" + ",".join(['"lol"'] * 9) + "]\n" + "".join(
        f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]\n" for previous, name in zip("abcdefgh", "bcdefghi"))
    _refused_quickly(bomb, "once its aliases (*name) are expanded")


def test_a_playbook_nested_thousands_deep_is_refused_not_a_crash() -> None:
    _refused_quickly("name: x\nstages: " + "[" * 3000 + "]" * 3000 + "\n", "nested too deeply")


def _nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [MAX_DEPTH, 300, 900])
def test_a_message_nested_deeper_than_the_limit_is_refused_saying_where(depth: int) -> None:
    message = {"type": "track", "userId": "u-1", "event": "Clicked", "properties": _nested(depth)}
    with pytest.raises(InvalidMessage, match=f"properties(.a)+: nested deeper than {MAX_DEPTH} levels"):
        to_event(message, PLAYBOOK, NOW)
    [row] = read_events(io.BytesIO(json.dumps(message).encode()), PLAYBOOK, NOW)
    assert row.error is not None and "nested deeper" in row.error


def test_a_message_nested_just_within_the_limit_is_taken() -> None:
    message = {"type": "track", "userId": "u-1", "event": "Clicked", "properties": _nested(MAX_DEPTH - 2)}
    assert to_event(message, PLAYBOOK, NOW).name == "clicked"


@pytest.mark.parametrize(("moment", "taken"), [
    ("1969-12-31T23:59:59Z", False), ("1999-12-31T23:59:59Z", False), ("2000-01-01T00:00:00Z", True),
    ((NOW + timedelta(hours=23)).isoformat(), True), ((NOW + timedelta(days=1, minutes=1)).isoformat(), False),
    ("0001-01-01T00:00:00+01:00", False), ("9999-12-31T23:59:59-05:00", False),
])
def test_event_times_outside_a_sane_range_are_refused(moment: str, taken: bool) -> None:
    if taken:
        assert parse_time(moment, NOW) == datetime.fromisoformat(moment).astimezone(UTC)
    else:
        with pytest.raises(InvalidMessage, match="timestamp"):
            parse_time(moment, NOW)


@FUZZ
@given(moment=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)))
def test_any_time_is_taken_exactly_when_it_is_in_range(moment: datetime) -> None:
    _count("times")
    inside = datetime(2000, 1, 1, tzinfo=UTC) <= moment <= NOW + timedelta(days=1)
    try:
        assert parse_time(moment.isoformat(), NOW) == moment and inside
    except InvalidMessage:
        assert not inside


def test_zz_report_the_inputs_tried() -> None:
    print("fuzzed inputs:", ", ".join(f"{name} {count}" for name, count in sorted(TRIED.items())))
