"""What every Snakemake script entry shares: stderr into the rule's log, bad input as one clean line."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from laseg.io import InputError


@contextlib.contextmanager
def logged_step(log_path: str) -> Iterator[None]:
    """Send stderr to the rule's log; an InputError is printed as one line to the log and the console."""
    console = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log:
        sys.stderr = log
        try:
            yield
        except InputError as err:
            print(f"error: {err}", file=log)
            print(f"error: {err}", file=console)
            raise SystemExit(1) from None
        finally:
            sys.stderr = console
