"""Machine-readable results of a benchmark script (`--json FILE`), read by `python -m benchmarks`.

Each row is one figure: what was measured, on which store, our value and unit, the raw limit of the
underlying store or stack measured in the same run (when there is one), and the target."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path
from typing import Any


class Results:
    def __init__(self, benchmark: str) -> None:
        self.benchmark = benchmark
        self.rows: list[dict[str, Any]] = []
        self.notes: list[str] = []

    def add(self, what: str, value: float | None, unit: str, *, store: str = "", limit: float | None = None,
            limit_what: str = "", target: str = "", met: bool | None = None, **extra: Any) -> None:
        self.rows.append({"what": what, "store": store, "value": value, "unit": unit, "limit": limit,
                          "limit_what": limit_what, "target": target, "met": met, **extra})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def write(self, path: Path | str | None) -> None:
        if not path:
            return
        Path(path).write_text(json.dumps({
            "benchmark": self.benchmark, "python": sys.version.split()[0], "machine": platform.machine(),
            "rows": self.rows, "notes": self.notes,
        }, indent=2, default=str))
