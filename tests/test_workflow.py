"""End-to-end: the real workflow on a small synthetic cohort, then what reruns when things change."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import open3d as o3d
import pandas as pd
import pytest

from conftest import run_snakemake, scheduled_jobs
from laseg.io import Geometry, read_image, read_volume
from laseg.slices import load_slices
from laseg.visualize import count_video_frames

pytestmark = pytest.mark.workflow

TEST_PATIENTS = ["syn_001", "syn_004"]
CONFIG = {
    "synthetic": {"n_patients": 6, "shape_zyx": [64, 112, 112]},
    "split": {"test": TEST_PATIENTS},
    "train": {"max_epochs": 12, "iterations_per_epoch": 20, "budget_minutes": 2.0},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("synthetic_run")
    run_snakemake(workdir, config=CONFIG)
    return workdir


def test_metrics_tables_have_the_promised_columns_and_a_trained_model_scores_well(finished_run):
    per_patient = pd.read_csv(finished_run / "results/metrics/per_patient.csv")
    for column in ["patient", "dice", "iou", "hd95_mm", "assd_mm", "volume_pred_ml", "volume_true_ml"]:
        assert column in per_patient.columns
    assert sorted(per_patient["patient"]) == TEST_PATIENTS
    assert per_patient["dice"].min() > 0.7, per_patient.to_string()
    summary = pd.read_csv(finished_run / "results/metrics/summary.csv", index_col=0)
    assert summary.loc["dice", "mean"] == pytest.approx(per_patient["dice"].mean())
    assert {"mean", "sd", "median"} <= set(summary.columns)


def test_every_output_volume_sits_on_its_source_grid(finished_run):
    for patient in TEST_PATIENTS:
        source = Geometry.of(read_image(finished_run / f"resources/synthetic/imagesTr/{patient}.nii.gz"))
        for output in (
            f"results/masks/{patient}.nii.gz",
            f"results/predict/{patient}_probability.nii.gz",
            f"results/predict/{patient}_raw_mask.nii.gz",
        ):
            assert Geometry.of(read_image(finished_run / output)) == source, output


def test_true_volume_is_voxel_count_times_voxel_volume(finished_run):
    per_patient = pd.read_csv(finished_run / "results/metrics/per_patient.csv").set_index("patient")
    for patient in TEST_PATIENTS:
        label, geometry = read_volume(finished_run / f"resources/synthetic/labelsTr/{patient}.nii.gz")
        expected_ml = int(label.sum()) * float(np.prod(geometry.spacing_mm)) / 1000.0
        assert per_patient.loc[patient, "volume_true_ml"] == pytest.approx(expected_ml, rel=1e-5)


def test_training_wrote_checkpoint_history_and_curve(finished_run):
    history = pd.read_csv(finished_run / "results/model/history.csv")
    assert list(history.columns[:4]) == ["epoch", "train_loss", "val_dice", "seconds"]
    assert len(history) >= 1 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert (finished_run / "results/model/training_curve.png").stat().st_size > 10_000
    assert "epoch" in (finished_run / "logs/train.log").read_text()


def test_videos_have_one_frame_per_slice_and_point_clouds_lie_in_the_scan(finished_run):
    for patient in TEST_PATIENTS:
        stack = load_slices(finished_run / f"results/slices/{patient}.npz")
        assert count_video_frames(finished_run / f"results/videos/{patient}.mp4") == stack.image.shape[0]
        geometry = stack.source_geometry
        corners = np.array(
            [np.array(geometry.origin_mm) + np.array(geometry.direction).reshape(3, 3) @ (np.array(c) * geometry.spacing_mm)
             for c in np.ndindex(2, 2, 2) for c in [np.array(c) * (np.array(geometry.size) - 1)]]
        )
        for suffix in ("pred", "true"):
            cloud = o3d.io.read_point_cloud(str(finished_run / f"results/pointclouds/{patient}_{suffix}.ply"))
            points = np.asarray(cloud.points)
            assert len(points) > 100 and cloud.has_colors()
            assert (points >= corners.min(axis=0) - 1e-3).all() and (points <= corners.max(axis=0) + 1e-3).all()


def test_a_second_run_schedules_nothing(finished_run):
    assert scheduled_jobs(finished_run, config=CONFIG) == {}


def test_adding_a_patient_slices_only_that_patient(finished_run):
    jobs = scheduled_jobs(finished_run, config={**CONFIG, "synthetic": {**CONFIG["synthetic"], "n_patients": 7}})
    assert jobs.get("synthesize_case") == 1 and jobs.get("slice_case") == 1
    assert jobs.get("train") == 1  # a new training patient means a new model


def test_changing_one_scan_reslices_it_and_retrains(finished_run):
    scan = finished_run / "resources/synthetic/imagesTr/syn_000.nii.gz"
    old = scan.stat().st_mtime
    try:
        os.utime(scan, (time.time() + 5, time.time() + 5))
        jobs = scheduled_jobs(finished_run, config=CONFIG)
        assert jobs.get("slice_case") == 1 and jobs.get("train") == 1 and "synthesize_case" not in jobs
    finally:
        os.utime(scan, (old, old))
    assert scheduled_jobs(finished_run, config=CONFIG) == {}


def test_changing_postprocessing_reruns_only_what_follows_it(finished_run):
    changed = {**CONFIG, "postprocess": {"closing_radius_mm": 2.5}}
    jobs = scheduled_jobs(finished_run, config=changed)
    assert jobs.get("postprocess") == len(TEST_PATIENTS) and jobs.get("evaluate_case") == len(TEST_PATIENTS)
    assert "train" not in jobs and "slice_case" not in jobs and "predict" not in jobs
    checkpoint = finished_run / "results/model/model.pt"
    before = checkpoint.stat().st_mtime_ns
    run_snakemake(finished_run, config=changed)
    assert checkpoint.stat().st_mtime_ns == before
    summary = run_snakemake(finished_run, "--summary", config=changed).stdout
    assert "results/masks/syn_001.nii.gz" in summary
    assert scheduled_jobs(finished_run, config=changed) == {}
