"""Shared helpers: run the real Snakemake workflow in a temporary directory and read what it did."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).parent / "snakemake"
REAL_DATA = (REPO / ".." / "shared" / "data" / "msd_task02_heart").resolve()


def run_snakemake(
    workdir: Path, *args: str, config: dict | None = None, check: bool = True, snakefile: Path | None = None
) -> subprocess.CompletedProcess:
    """Run the repo's Snakefile (or `snakefile`) with `workdir` as working directory and `config` as an
    extra configfile."""
    snakefile = snakefile or REPO / "Snakefile"
    command = [str(SNAKEMAKE), "-s", str(snakefile), "--directory", str(workdir), "--cores", "2", *args]
    if config is not None:
        config_path = workdir / "test_config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        # Last: --configfile takes every following word as a config file, targets included.
        command += ["--configfile", str(config_path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, env=env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        )
    return result


def scheduled_jobs(workdir: Path, config: dict | None = None, snakefile: Path | None = None) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute now (empty when nothing is to be done)."""
    result = run_snakemake(workdir, "-n", config=config, snakefile=snakefile)
    output = result.stdout + result.stderr
    counts: dict[str, int] = {}
    table = output.split("Job stats:", 1)
    if len(table) == 2:
        for line in table[1].splitlines():
            match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
    elif "Nothing to be done" not in output:
        raise AssertionError(f"could not read the dry run:\n{output[-3000:]}")
    return counts


if not (REAL_DATA / "dataset.json").is_file() and os.environ.get("LASEG_REQUIRE_REALDATA") == "1":
    # CI sets the switch: there the real-data accuracy guard must run, never skip.
    raise RuntimeError(f"{REAL_DATA} is missing and LASEG_REQUIRE_REALDATA=1")
requires_real_data = pytest.mark.skipif(not (REAL_DATA / "dataset.json").is_file(), reason=f"{REAL_DATA} not present")


def load_bench_script(name: str):
    """A bench/ script as a module (bench/ is not a package on the tests' path)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
