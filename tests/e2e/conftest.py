"""Fixtures of the end-to-end tests: a real server over HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook

from .cli import Run, command_runner
from .server import Server, running_server


@pytest.fixture
def server(engine: Engine, playbook: Playbook) -> Iterator[Server]:
    """A LeadRelay server on a fresh database (each test runs on SQLite and on PostgreSQL)."""
    with running_server(engine, playbook) as running:
        yield running


@pytest.fixture
def leadrelay(tmp_path: Path) -> Run:
    """Run `leadrelay ARGS...` in tmp_path against tmp_path/leadrelay.db."""
    return command_runner(tmp_path)
