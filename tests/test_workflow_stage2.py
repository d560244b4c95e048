"""The workflow with the 3D second stage on a small synthetic cohort: a killed stage-2 train job resumes, the
refined masks sit on their scans' grids, and a stage-2 setting reruns the second stage, never the first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import run_snakemake, scheduled_jobs
from test_faults import kill_when, start_snakemake

from laseg.io import read_volume

pytestmark = pytest.mark.workflow

TEST_PATIENTS = ["syn_001", "syn_004"]
STAGE2 = {"enabled": True, "grid_spacing_mm": 2.5, "patch_vox": 32, "steps": 100, "base_channels": 8}
CONFIG = {
    "synthetic": {"n_patients": 6, "shape_zyx": [48, 96, 96]},
    "split": {"test": TEST_PATIENTS},
    "train": {"max_epochs": 8, "iterations_per_epoch": 20, "patch_px": 64, "budget_minutes": 20.0},
    "stage2": {**STAGE2, "learning_rate": 0.01},
    "visualize": {"montage": False},
    "mesh": {"enabled": False},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("stage2_run")
    (workdir / "test_config.yaml").write_text(yaml.safe_dump(CONFIG))
    run_snakemake(workdir, "results/plan/stage2_plan.json", config=CONFIG)
    # Killed in the stage-2 train job after its first epoch: the rerun continues after that epoch.
    process = start_snakemake(workdir, "results/model/stage2.pt")
    kill_when(workdir, "logs/train_stage2.log", "stage 2: epoch 1/", process)
    assert (workdir / "results/model/.stage2.pt.resume").is_file()
    run_snakemake(workdir, "--unlock", config=CONFIG)
    run_snakemake(workdir, "--rerun-incomplete", config=CONFIG)
    return workdir


def test_a_killed_stage2_training_resumes_after_its_last_epoch(finished_run):
    log = (finished_run / "logs/train_stage2.log").read_text()
    assert "stage 2: resuming after epoch 1" in log and "stage 2: epoch 1/" not in log, log[-2000:]
    checkpoint = torch.load(finished_run / "results/model/stage2.pt", map_location="cpu", weights_only=True)
    assert checkpoint["kind"] == "stage2" and checkpoint["training_amount"]["steps_run"] == STAGE2["steps"]
    assert checkpoint["plan"] == json.loads((finished_run / "results/plan/stage2_plan.json").read_text())
    assert not (finished_run / "results/model/.stage2.pt.resume").exists()


def test_the_second_stage_refines_every_mask_on_its_scans_grid(finished_run):
    for patient in TEST_PATIENTS:
        qc = json.loads((finished_run / f"results/predict/{patient}_qc.json").read_text())
        assert qc["stage2"] == "applied", qc
        mask, geometry = read_volume(finished_run / f"results/masks/{patient}.nii.gz")
        _, source = read_volume(finished_run / f"resources/synthetic/imagesTr/{patient}.nii.gz")
        assert geometry == source and np.unique(mask).tolist() == [0, 1]
    per_patient = pd.read_csv(finished_run / "results/metrics/per_patient.csv")
    assert per_patient["dice"].min() > 0.7, per_patient.to_string()


def test_a_stage2_setting_reruns_the_second_stage_and_prediction_never_the_first(finished_run):
    more_steps = {**CONFIG, "stage2": {**CONFIG["stage2"], "steps": 150}}
    jobs = scheduled_jobs(finished_run, config=more_steps)
    assert jobs.get("plan_stage2") == 1 and jobs.get("train_stage2") == 1
    assert jobs.get("predict") == len(TEST_PATIENTS), jobs
    assert not {"slice_case", "fingerprint", "plan", "train"} & set(jobs), jobs
    # How the stages combine is prediction's alone.
    mean = {**CONFIG, "stage2": {**CONFIG["stage2"], "combine": "mean"}}
    jobs = scheduled_jobs(finished_run, config=mean)
    assert jobs.get("predict") == len(TEST_PATIENTS) and not {"train_stage2", "plan_stage2", "train"} & set(jobs)
    # Switching the second stage off predicts again with the first stage alone; nothing trains.
    off = {**CONFIG, "stage2": {**CONFIG["stage2"], "enabled": False}}
    jobs = scheduled_jobs(finished_run, config=off)
    assert jobs.get("predict") == len(TEST_PATIENTS) and not {"train_stage2", "train"} & set(jobs), jobs
    assert scheduled_jobs(finished_run, config=CONFIG) == {}
