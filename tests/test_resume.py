"""A train job killed mid-training (SIGKILL to Snakemake and every job process, as in a crash) resumes
after its last finished epoch when the workflow is rerun."""

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
}


def wait_for_line(path: Path, text: str, process: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.is_file() and text in path.read_text():
            return
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended ({process.returncode}) before {text!r} appeared in {path}")
        time.sleep(0.2)
    raise AssertionError(f"{text!r} did not appear in {path} within {timeout_s} s")


def test_a_killed_train_job_resumes_after_its_last_epoch(tmp_path):
    (tmp_path / "test_config.yaml").write_text(yaml.safe_dump(CONFIG))
    run_snakemake(tmp_path, "results/plan/plan.json", config=CONFIG)
    command = [str(SNAKEMAKE), "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--cores", "2"]
    command += ["--configfile", str(tmp_path / "test_config.yaml"), "results/model/model.pt"]
    # Its own session: the kill reaches Snakemake and the train job's Python, nothing else.
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    log = tmp_path / "logs/train.log"
    try:
        wait_for_line(log, "coronal: [", process)  # the coronal network's first epoch is done (and saved)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    killed_log = log.read_text()
    done_before = killed_log.count("coronal: [")
    state = tmp_path / "results/model/.model.pt.resume"
    assert state.is_file() and not (tmp_path / "results/model/model.pt").exists()

    run_snakemake(tmp_path, "--unlock", config=CONFIG)
    run_snakemake(tmp_path, "--rerun-incomplete", "results/model/model.pt", config=CONFIG)
    resumed_log = log.read_text()
    assert "resuming: axial network already trained" in resumed_log, resumed_log[-2000:]
    assert f"resuming coronal from epoch {done_before} " in resumed_log or (
        f"resuming coronal from epoch {done_before + 1} " in resumed_log  # an epoch finished as the kill landed
    ), resumed_log[-2000:]
    assert "axial: [" not in resumed_log and resumed_log.count("coronal: [") <= 6 - done_before
    checkpoint = torch.load(tmp_path / "results/model/model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["training_amount"]["epochs_run"] == {"axial": 6, "coronal": 6}
    assert not state.exists(), "the resume state outlived the finished job"
