"""Fixtures of the storage tests. Every test using `store` runs on SQLite and on PostgreSQL
(through the `engine` fixture of tests/conftest.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from leadrelay.domain.playbook import Playbook

from .support import Store


@pytest.fixture
def store(engine: Engine, playbook: Playbook) -> Store:
    return Store(engine, playbook)
