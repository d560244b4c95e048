"""Where bench scripts put their results: bench/results/<name>-<date>[-tag].json and .md, side by side."""

from __future__ import annotations

import datetime as dt
import json
import platform
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_name() -> str:
    """The CPU's model name, for the machine line of a result."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    return next(
        (line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor()
    )


def write_result(name: str, tag: str, started: dt.datetime | dt.date, result: dict, markdown: str) -> Path:
    """Write the JSON record and the Markdown table of one bench run; returns the path without suffix."""
    out = RESULTS / f"{name}-{started:%Y-%m-%d}{'-' + tag if tag else ''}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown.rstrip("\n") + "\n")
    return out
