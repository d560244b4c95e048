"""A crash in the middle of training, measured: the synthetic workflow run once uninterrupted and once killed
with SIGKILL (Snakemake and every job process) during the coronal network's epoch 4, then unlocked and rerun with
--rerun-incomplete. Compares the rerun's train job time with the uninterrupted one's and the Dice of every test
patient (they must be equal: an epoch-bound training resumed ends with the same weights).

    .venv/bin/python bench/kill_resume.py        # about 10 min on 2 cores

Writes bench/results/kill-resume-<date>.md and .json.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.result_files import cpu_name, write_result

CONFIG = {
    "synthetic": {"n_patients": 8},
    "train": {"max_epochs": 8, "budget_minutes": 120, "iterations_per_epoch": 20},
}
SNAKEMAKE = REPO / ".venv" / "bin" / "snakemake"


def command(workdir: Path, *extra: str) -> list[str]:
    return [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
            "--configfile", str(workdir / "config.yaml"), *extra]  # fmt: skip


def train_seconds(workdir: Path) -> float:
    return float(pd.read_csv(workdir / "benchmarks/train.tsv", sep="\t")["s"].iloc[-1])


def main() -> None:
    work = REPO / "bench" / "work" / "kill_resume"
    started = dt.datetime.now(dt.UTC)
    runs = {}
    for name in ("uninterrupted", "killed"):
        workdir = work / name
        if workdir.exists():
            subprocess.run(["rm", "-rf", str(workdir)], check=True)
        workdir.mkdir(parents=True)
        (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
        if name == "uninterrupted":
            subprocess.run(command(workdir), check=True, capture_output=True)
            runs[name] = {"train_s": train_seconds(workdir)}
            continue
        process = subprocess.Popen(command(workdir), start_new_session=True, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)  # fmt: skip
        log = workdir / "logs/train.log"
        while not (log.is_file() and any(
            line.startswith("coronal: [") and " epoch   3 " in line for line in log.read_text().splitlines()
        )):  # fmt: skip
            if process.poll() is not None:
                raise SystemExit("the run ended before the coronal network's epoch 4")
            time.sleep(0.2)
        time.sleep(1.0)  # into epoch 4
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        killed_at = log.read_text().count("coronal: [")
        subprocess.run(command(workdir, "--unlock"), check=True, capture_output=True)
        subprocess.run(command(workdir, "--rerun-incomplete"), check=True, capture_output=True)
        resumed_log = log.read_text()
        runs[name] = {
            "train_s": train_seconds(workdir),
            "coronal_epochs_done_when_killed": killed_at,
            "resumed": [line for line in resumed_log.splitlines() if line.startswith("resuming")],
        }
    dice = {
        name: pd.read_csv(work / name / "results/metrics/per_patient.csv", dtype={"patient": str})
        .set_index("patient")["dice"]
        .dropna()
        for name in runs
    }
    ratio = runs["killed"]["train_s"] / runs["uninterrupted"]["train_s"]
    equal = bool(dice["killed"].equals(dice["uninterrupted"]))
    result = {"config": CONFIG, "runs": runs, "ratio": ratio, "dice_equal": equal,
              "dice": {k: v.to_dict() for k, v in dice.items()}}  # fmt: skip
    lines = [
        f"Killed during the coronal network's epoch 4 and resumed, "
        f"synthetic cohort ({cpu_name()}, {started:%Y-%m-%d}).",
        "",
        "| run | train job s | resumed | per-patient Dice |",
        "| --- | --- | --- | --- |",
        f"| uninterrupted | {runs['uninterrupted']['train_s']:.1f} | | "
        + ", ".join(f"{p} {d:.4f}" for p, d in dice["uninterrupted"].items())
        + " |",
        f"| killed, then rerun | {runs['killed']['train_s']:.1f} ({ratio:.0%} of uninterrupted) | "
        + "; ".join(runs["killed"]["resumed"])
        + " | "
        + ", ".join(f"{p} {d:.4f}" for p, d in dice["killed"].items())
        + " |",
        "",
        f"Per-patient Dice equal: {equal}.",
    ]
    write_result("kill-resume", "", started, result, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
