"""Fixtures shared by the unit tests (helpers to build things live in `builders.py`)."""

import pytest

from leadrelay.domain.playbook import Playbook

from .builders import DEFAULT_PLAYBOOK


@pytest.fixture
def playbook() -> Playbook:
    """The playbook LeadRelay ships with (immutable, so one copy serves every test)."""
    return DEFAULT_PLAYBOOK
