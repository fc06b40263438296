"""The domain imports no framework: the import-linter contract in pyproject.toml is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONTRACT = "The domain imports no framework"


def lint_imports(cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("lint-imports")
    command = [str(script)] if script.exists() else [shutil.which("lint-imports") or "lint-imports"]
    return subprocess.run(
        [*command, "--no-cache", "--no-logo"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_domain_imports_no_framework():
    result = lint_imports(REPO)
    output = result.stdout + result.stderr

    assert f"{CONTRACT} KEPT" in output, output
    assert "0 broken" in output, output
    assert result.returncode == 0, output


def test_the_contract_catches_a_framework_imported_into_the_domain(tmp_path):
    """The same contract, run on a copy of the code whose domain imports YAML, is broken."""
    shutil.copytree(REPO / "src" / "leadrelay", tmp_path / "src" / "leadrelay",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    model = tmp_path / "src" / "leadrelay" / "domain" / "model.py"
    model.write_text(model.read_text(encoding="utf-8") + "\nimport yaml  # noqa: E402 - a framework in the domain\n",
                     encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "src")}

    result = lint_imports(tmp_path, env)
    output = result.stdout + result.stderr

    assert f"{CONTRACT} BROKEN" in output, output
    assert "leadrelay.domain.model -> yaml" in output, output
    assert result.returncode != 0
