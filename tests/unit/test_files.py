"""Importing files: leads from CSV, events from JSON Lines. A bad line is reported with its line
number and the rest of the file is kept; only a file that cannot be read at all is refused."""

from __future__ import annotations

import io
from datetime import datetime

import orjson
import pytest

from leadrelay.adapters.files import FileRefused, read_events, read_leads
from leadrelay.adapters.segment import MAX_MESSAGE_BYTES

from .builders import UTC

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def jsonl(*lines) -> io.BytesIO:
    return io.BytesIO(b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines))


def csv_file(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode("utf-8"))


def outcome(rows):
    """Each row as (line, email) when taken or (line, reason) when refused."""
    return [(row.line, row.event.email if row.event else row.error) for row in rows]


# --- JSON Lines -----------------------------------------------------------------------------------

GOOD = {"type": "track", "event": "Form Submit", "userId": "ada@acme.example", "timestamp": "2026-03-01T10:00:00Z"}


def test_each_json_line_becomes_an_event_numbered_by_its_line(playbook):
    rows = list(read_events(jsonl(GOOD, {**GOOD, "userId": "bo@beta.example"}), playbook, NOW))

    assert outcome(rows) == [(1, "ada@acme.example"), (2, "bo@beta.example")]
    assert rows[0].event.name == "form_submit"


def test_bad_json_lines_are_reported_with_their_line_numbers_and_the_rest_is_kept(playbook):
    rows = list(read_events(jsonl(
        GOOD,
        b'{"type": "track", "event": ',  # cut off
        {**GOOD, "traits": {"email": "not-an-email"}},
        {"type": "track", "event": "Form Submit", "timestamp": "2026-03-01T10:00:00Z"},
        {**GOOD, "timestamp": "2031-01-01T00:00:00Z"},
        {**GOOD, "timestamp": "1970-01-01T00:00:00Z"},
        b"",
        {**GOOD, "userId": "cy@gamma.example"},
    ), playbook, NOW))

    results = outcome(rows)
    assert [line for line, _ in results] == [1, 2, 3, 4, 5, 6, 8]  # the blank line 7 is no row
    assert results[0] == (1, "ada@acme.example")
    assert results[1][1].startswith("not valid JSON")
    assert results[2][1].startswith("invalid email 'not-an-email'")
    assert results[3][1] == "a message needs a userId or an anonymousId"
    assert results[4][1] == "timestamp: 2031-01-01T00:00:00Z is in the future"
    assert results[5][1] == "timestamp: 1970-01-01T00:00:00Z is before 2000"
    assert results[6] == (8, "cy@gamma.example")


def test_a_line_larger_than_the_message_limit_is_refused_without_being_read(playbook):
    huge = {**GOOD, "properties": {"note": "x" * MAX_MESSAGE_BYTES}}

    rows = list(read_events(jsonl(huge, GOOD), playbook, NOW))

    assert outcome(rows) == [(1, "message larger than 32 KB"), (2, "ada@acme.example")]


def test_a_line_just_under_the_message_limit_is_read(playbook):
    message = {**GOOD, "properties": {"note": ""}}
    room = MAX_MESSAGE_BYTES - len(orjson.dumps(message)) - 1  # the newline counts
    message["properties"]["note"] = "x" * room

    [row] = read_events(jsonl(message), playbook, NOW)

    assert row.error is None
    assert len(row.event.properties["note"]) == room


def test_a_line_that_is_not_utf8_is_reported_and_the_rest_is_kept(playbook):
    rows = list(read_events(io.BytesIO(b'{"type": "track", "event": "\xff"}\n' + orjson.dumps(GOOD) + b"\n"), playbook, NOW))

    assert rows[0].line == 1 and rows[0].error.startswith("not valid JSON")
    assert outcome(rows)[1] == (2, "ada@acme.example")


def test_a_json_line_with_a_wrongly_typed_trait_is_reported(playbook):
    message = {"type": "identify", "userId": "ada@acme.example", "traits": {"employees": "lots"}}

    [row] = read_events(jsonl(message), playbook, NOW)

    assert (row.line, row.error) == (1, "traits.employees: expected a number, got 'lots'")


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_rows_become_leads_with_typed_fields(playbook):
    rows = list(read_leads(csv_file(
        "Email,Company,Employees,Job Title,Industry\n"
        "Ada@Acme.example,Acme,250,VP Sales,Software\n"
    ), playbook, NOW))

    [row] = rows
    assert (row.line, row.error) == (2, None)
    assert row.event.email == "ada@acme.example"
    assert row.event.traits == {"company": "Acme", "company_size": 250, "title": "VP Sales", "industry": "software"}
    assert (row.event.type, row.event.timestamp) == ("identify", NOW)


def test_a_csv_with_unknown_columns_is_refused_naming_them_and_how_to_map_them(playbook):
    with pytest.raises(FileRefused) as refused:
        list(read_leads(csv_file("email,favourite colour,shoe size\nada@acme.example,green,38\n"), playbook, NOW))

    message = str(refused.value)
    assert message.startswith("unknown column(s): favourite colour, shoe size.")
    assert "--map 'COLUMN=FIELD'" in message
    assert "'COLUMN=-'" in message
    assert "company_size" in message  # it lists the fields there are


def test_unknown_columns_can_be_mapped_to_a_field_or_left_out(playbook):
    [row] = read_leads(csv_file("mail address,org,shoe size\nada@acme.example,Acme,38\n"), playbook, NOW,
                       {"mail address": "email", "org": "company", "shoe size": "-"})

    assert (row.event.email, row.event.traits) == ("ada@acme.example", {"company": "Acme"})


def test_a_csv_without_an_email_column_is_refused(playbook):
    with pytest.raises(FileRefused, match="no email column"):
        list(read_leads(csv_file("company,title\nAcme,CTO\n"), playbook, NOW))


def test_an_empty_csv_is_refused(playbook):
    with pytest.raises(FileRefused, match="empty"):
        list(read_leads(csv_file(""), playbook, NOW))


def test_bad_csv_rows_are_reported_with_their_line_numbers_and_the_rest_is_kept(playbook):
    text = (
        "email,company,company_size,created_at\n"             # 1
        "ada@acme.example,Acme,250,2026-01-15T09:00:00Z\n"    # 2
        "not-an-email,Nobody,3,\n"                            # 3
        "bo@beta.example,Beta,many,\n"                        # 4
        "cy@gamma.example,Gamma\n"                            # 5
        ",Nameless,4,\n"                                      # 6
        "\n"                                                  # 7
        "di@delta.example,Delta,12,2099-01-01\n"              # 8
        f"ed@eps.example,{'x' * 70_000},1,\n"                 # 9
        "fy@zeta.example,Zeta,7,\n"                           # 10
    )

    results = outcome(read_leads(csv_file(text), playbook, NOW))

    assert results[0] == (2, "ada@acme.example")
    assert results[1][0] == 3 and results[1][1].startswith("invalid email 'not-an-email'")
    assert results[2] == (4, "company_size: expected a number, got 'many'")
    assert results[3] == (5, "expected 4 values, found 2")
    assert results[4] == (6, "email is empty")
    assert results[5] == (8, "created_at: 2099-01-01 is in the future")
    assert results[6][0] == 9 and results[6][1].startswith("not valid CSV")
    assert results[7] == (10, "fy@zeta.example")
    assert len(results) == 8


def test_a_wrongly_typed_csv_value_is_reported_under_the_column_name_of_the_file(playbook):
    rows = list(read_leads(csv_file("email,Employees\nada@acme.example,many\n"), playbook, NOW))

    assert outcome(rows) == [(2, "Employees: expected a number, got 'many'")]


def test_the_created_at_column_dates_the_lead(playbook):
    [row] = read_leads(csv_file("email,created\nada@acme.example,2026-01-15T09:00:00+01:00\n"), playbook, NOW)

    assert row.event.timestamp == datetime(2026, 1, 15, 8, 0, tzinfo=UTC)


def test_a_csv_separated_by_semicolons_with_a_byte_order_mark_is_read(playbook):
    [row] = read_leads(io.BytesIO("\ufeffemail;company\nada@acme.example;Acme, Inc.\n".encode()), playbook, NOW)

    assert (row.event.email, row.event.traits) == ("ada@acme.example", {"company": "Acme, Inc."})


def test_a_quoted_value_may_span_lines_and_later_lines_keep_their_numbers(playbook):
    text = 'email,need\nada@acme.example,"one\ntwo"\nnot-an-email,x\n'

    results = outcome(read_leads(csv_file(text), playbook, NOW))

    assert results[0][1] == "ada@acme.example"
    assert results[1][0] == 4


def test_the_same_csv_row_imported_twice_gets_the_same_id(playbook):
    text = "email,company\nada@acme.example,Acme\n"

    [first] = read_leads(csv_file(text), playbook, NOW)
    [again] = read_leads(csv_file(text), playbook, NOW)

    assert first.event.message_id == again.event.message_id


def test_csv_values_no_database_can_keep_are_refused_naming_the_column(playbook):
    text = (
        "email,company,company_size\n"
        "ada@acme.example,Acme,1e300\n"
        "bo@beta.example,Be\x00ta,3\n"
        "cy@gamma.example,Gamma,-2e16\n"
        "di@delta.example,Delta,999999999999999\n"
    )

    results = outcome(read_leads(csv_file(text), playbook, NOW))

    assert results[0] == (2, "company_size: out of range (numbers are at most 1e+15 either way)")
    assert results[1] == (3, "company: contains a NUL character")
    assert results[2][0] == 4 and "out of range" in results[2][1]
    assert results[3] == (5, "di@delta.example")
