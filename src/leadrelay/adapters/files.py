"""Files to import: leads from CSV, events from JSON Lines (one Segment message a line).

Readers yield one `Row` per line: an event, or the reason the line was refused. They never
stop at a bad line; the caller decides what to store.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import orjson

from leadrelay.adapters.segment import MAX_MESSAGE_BYTES, InvalidMessage, checked_email, parse_time, to_event
from leadrelay.domain.errors import InvalidField
from leadrelay.domain.model import Event, snake_name
from leadrelay.domain.playbook import Playbook

CSV_MAX_FIELD = 64 * 1024
EMAIL_COLUMNS = ("email", "email_address", "e_mail", "mail")
TIME_COLUMNS = ("created_at", "created", "date")


@dataclass(slots=True)
class Row:
    line: int
    event: Event | None = None
    error: str | None = None


class FileRefused(ValueError):
    """The file as a whole cannot be read (say, a CSV header with unknown columns)."""


def read_events(stream: IO[bytes], playbook: Playbook, now: datetime) -> Iterator[Row]:
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        if len(line) > MAX_MESSAGE_BYTES:
            yield Row(number, error=f"message larger than {MAX_MESSAGE_BYTES // 1024} KB")
            continue
        try:
            message = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            yield Row(number, error=f"not valid JSON: {error}")
            continue
        try:
            yield Row(number, to_event(message, playbook, now))
        except InvalidMessage as error:
            yield Row(number, error=str(error))


def csv_columns(header: list[str], playbook: Playbook, mapping: Mapping[str, str]) -> dict[str, str]:
    """Each CSV column and the field it fills (`email` for the key); refuse unknown columns."""
    columns: dict[str, str] = {}
    unknown: list[str] = []
    for column in header:
        target = mapping.get(column, column)
        key = snake_name(target)
        if key in EMAIL_COLUMNS:
            columns[column] = "email"
        elif key in TIME_COLUMNS:
            columns[column] = "created_at"
        elif target == "-":
            continue
        elif (spec := playbook.field_for(target)) is not None:
            columns[column] = spec.name
        else:
            unknown.append(column)
    if unknown:
        known = ", ".join(sorted(playbook.fields))
        raise FileRefused(
            f"unknown column(s): {', '.join(unknown)}. Map each to a field with --map 'COLUMN=FIELD'"
            f" (or 'COLUMN=-' to leave it out). Fields: email, created_at, {known}"
        )
    if "email" not in columns.values():
        raise FileRefused("no email column: every lead needs an email (map one with --map 'COLUMN=email')")
    return columns


def read_leads(
    stream: IO[bytes], playbook: Playbook, now: datetime, mapping: Mapping[str, str] | None = None
) -> Iterator[Row]:
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="strict", newline="")
    try:
        sample = text.read(64 * 1024)
    except UnicodeDecodeError as error:
        raise FileRefused(_not_utf8(error, None)) from None
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(_chain(sample, text), dialect)
    csv.field_size_limit(CSV_MAX_FIELD)
    try:
        header = next(reader)
    except StopIteration:
        raise FileRefused("the file is empty") from None
    columns = csv_columns([name.strip() for name in header], playbook, mapping or {})
    names = [columns.get(name.strip()) for name in header]
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as error:  # the rest cannot be read: what came before is kept
            raise FileRefused(_not_utf8(error, reader.line_num + 1)) from None
        except csv.Error as error:
            yield Row(reader.line_num, error=f"not valid CSV: {error}")
            continue
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield Row(line, error=f"expected {len(header)} values, found {len(values)}")
            continue
        try:
            yield Row(line, _lead_event(zip(header, names, values), playbook, now))
        except InvalidMessage as error:
            yield Row(line, error=str(error))


def _lead_event(cells: Iterable[tuple[str, str | None, str]], playbook: Playbook, now: datetime) -> Event:
    """One CSV row (column, field, value) as an identify event; errors name the file's column."""
    email = created = ""
    traits: dict[str, Any] = {}
    for column, name, value in cells:
        if name == "email":
            email = value.strip()
        elif name == "created_at":
            created = value.strip()
        elif name is not None:
            try:
                coerced = playbook.fields[name].coerce(value)
            except InvalidField as error:
                raise InvalidMessage(f"{column.strip()}: {str(error).split(': ', 1)[-1]}") from None
            if coerced is not None:
                traits[name] = coerced
    if not email:
        raise InvalidMessage("email is empty")
    email = checked_email(email)
    fingerprint = orjson.dumps([email, created, sorted(traits.items())], default=str)
    return Event(
        message_id="csv:" + hashlib.sha1(fingerprint).hexdigest(),
        type="identify",
        name="identify",
        timestamp=parse_time(created, now, "created_at") if created else now,
        email=email,
        traits=traits,
    )


def _not_utf8(error: UnicodeDecodeError, line: int | None) -> str:
    where = f"a little after line {line - 1}" if line and line > 1 else "in its first 64 KB"
    again = " (rows already stored are recognised and not stored twice)" if line and line > 2 else ""
    return (f"the file is not UTF-8 text: byte 0x{error.object[error.start]:02x} {where} cannot be read."
            f" Save it as UTF-8 (in Excel: CSV UTF-8) and import it again{again}")


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield from io.StringIO(first + rest.readline())
    yield from rest
