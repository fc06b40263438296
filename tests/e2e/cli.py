"""Running the `leadrelay` command as users run it: the installed console script in a new
process, with LEADRELAY_DATABASE_URL pointing at a SQLite file and a fresh working folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]
TIMEOUT = 120


def leadrelay_executable() -> str:
    beside_python = Path(sys.executable).with_name("leadrelay")
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    found = shutil.which("leadrelay")
    if found is None:
        pytest.fail("the `leadrelay` console script is not installed: run pip install -e '.[test]'", pytrace=False)
    return found


def clean_environment(database_url: str) -> dict[str, str]:
    """The caller's environment without LeadRelay settings or terminal sizes that would change
    the output, plus the test database."""
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith("LEADRELAY_") and key not in {"COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE"}
    }
    env["LEADRELAY_DATABASE_URL"] = database_url
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def command_runner(tmp_path: Path) -> Run:
    """Run `leadrelay ARGS...` in tmp_path against tmp_path/leadrelay.db."""
    executable = leadrelay_executable()
    env = clean_environment(f"sqlite:///{tmp_path / 'leadrelay.db'}")

    def run(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
        environment = env if database_url is None else {**env, "LEADRELAY_DATABASE_URL": database_url}
        return subprocess.run(
            [executable, *args], cwd=tmp_path, env=environment, capture_output=True, text=True,
            encoding="utf-8", timeout=TIMEOUT, stdin=subprocess.DEVNULL,
        )

    return run


def assert_clean_refusal(result: subprocess.CompletedProcess[str], message: str) -> None:
    """Exit code 1, the message on stderr, and no Python traceback anywhere."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert message in " ".join(result.stderr.split()), result.stderr  # compared without line breaks
