"""Where bench scripts put their results: bench/results/<name>-<date>[-tag].json and .md, side by side."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, tag: str, started: dt.datetime | dt.date, result: dict, markdown: str) -> Path:
    """Write the JSON record and the Markdown table of one bench run; returns the path without suffix."""
    out = RESULTS / f"{name}-{started:%Y-%m-%d}{'-' + tag if tag else ''}"
    out.with_suffix(".json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    out.with_suffix(".md").write_text(markdown.rstrip("\n") + "\n")
    return out
