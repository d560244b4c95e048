"""Fault injection on a real run: SIGKILL of Snakemake and its jobs (as in a crash) during training and during
prediction, and a full disk (a file-size limit). Each rerun completes, redoes no finished job, and leaves no
half-written file; a killed train job resumes after its last finished epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO, SNAKEMAKE, run_snakemake

pytestmark = pytest.mark.workflow

CONFIG = {
    "synthetic": {"n_patients": 4, "shape_zyx": [48, 96, 96]},
    "split": {"test": ["syn_003"]},
    "train": {"max_epochs": 6, "iterations_per_epoch": 10, "patch_px": 48, "budget_minutes": 20.0},
    "visualize": {"montage": False},
    "mesh": {"enabled": False},
}
EPOCHS = CONFIG["train"]["max_epochs"]


def start_snakemake(
    workdir: Path, *targets: str, file_size_kib: int | None = None, capture: bool = False
) -> subprocess.Popen:
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2", *targets]
    command += ["--configfile", str(workdir / "test_config.yaml")]  # last: it takes every following word
    if file_size_kib is not None:  # a full disk, as the jobs see it: writes past the limit fail (EFBIG)
        command = ["bash", "-c", f'ulimit -f {file_size_kib} && exec "$@"', "bash", *command]
    # Its own session: a kill reaches Snakemake and its jobs, nothing else.
    return subprocess.Popen(
        command,
        cwd=workdir,
        start_new_session=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,  # read with communicate(), or not at all
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def kill_when(workdir: Path, log: str, text: str, process: subprocess.Popen, timeout_s: float = 600) -> None:
    """SIGKILL the whole session once `text` appears in the job log `log`."""
    path = workdir / log
    deadline = time.monotonic() + timeout_s
    try:
        while not (path.is_file() and text in path.read_text()):
            if process.poll() is not None:
                raise AssertionError(f"snakemake ended ({process.returncode}) before {text!r} appeared in {log}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} did not appear in {log} within {timeout_s} s")
            time.sleep(0.2)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def half_written(workdir: Path) -> list[Path]:
    """Temporary files of atomic writes (".<name>.tmp-<random><suffix>") left in the results; a killed writer
    leaves one, and the rerun that writes its target again removes it."""
    return [p for p in (workdir / "results").rglob(".*.tmp-*") if p.is_file()]


def test_killed_and_full_disk_runs_finish_on_rerun_without_redoing_work(tmp_path):
    (tmp_path / "test_config.yaml").write_text(yaml.safe_dump(CONFIG))
    run_snakemake(tmp_path, "results/plan/plan.json", config=CONFIG)

    # 1. Killed while training the coronal network: the rerun resumes after its last finished epoch.
    kill_when(tmp_path, "logs/train.log", "coronal: [", start_snakemake(tmp_path, "results/model/model.pt"))
    done_before = (tmp_path / "logs/train.log").read_text().count("coronal: [")
    state = tmp_path / "results/model/.model.pt.resume"
    assert state.is_file() and not (tmp_path / "results/model/model.pt").exists()
    run_snakemake(tmp_path, "--unlock", config=CONFIG)
    run_snakemake(tmp_path, "--rerun-incomplete", "results/model/model.pt", config=CONFIG)
    log = (tmp_path / "logs/train.log").read_text()
    assert "resuming: axial network already trained" in log, log[-2000:]
    assert any(f"resuming coronal from epoch {n} " in log for n in (done_before, done_before + 1)), log[-2000:]
    assert "axial: [" not in log and log.count("coronal: [") <= EPOCHS - done_before
    checkpoint = torch.load(tmp_path / "results/model/model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["training_amount"]["epochs_run"] == {"axial": EPOCHS, "coronal": EPOCHS}
    assert not state.exists(), "the resume state outlived the finished job"

    # 2. Killed while predicting: the rerun neither retrains nor leaves a partial file ...
    kill_when(tmp_path, "logs/predict/syn_003.log", "", start_snakemake(tmp_path))
    run_snakemake(tmp_path, "--unlock", config=CONFIG)
    # ... and while drawing the overlay video (ffmpeg included).
    kill_when(tmp_path, "logs/overlay_video/syn_003.log", "", start_snakemake(tmp_path, "--rerun-incomplete"))
    run_snakemake(tmp_path, "--unlock", config=CONFIG)

    # 3. A full disk (files limited to 64 KiB): jobs fail with a clear error, nothing half-written stays.
    limited = start_snakemake(tmp_path, "--keep-going", "--rerun-incomplete", file_size_kib=64, capture=True)
    output, _ = limited.communicate(timeout=900)
    assert limited.returncode != 0 and "File too large" in output + "".join(
        p.read_text(errors="replace") for p in (tmp_path / "logs").rglob("*.log")
    ), output[-3000:]
    assert not half_written(tmp_path), half_written(tmp_path)

    # The rerun finishes everything and trains nothing again.
    run_snakemake(tmp_path, "--unlock", config=CONFIG)
    result = run_snakemake(tmp_path, "--rerun-incomplete", config=CONFIG)
    assert "rule train:" not in result.stdout + result.stderr
    assert (tmp_path / "results/report.html").stat().st_size > 10_000
    assert not half_written(tmp_path), half_written(tmp_path)
    dry_run = run_snakemake(tmp_path, "-n", config=CONFIG)
    assert "Nothing to be done" in dry_run.stdout + dry_run.stderr
