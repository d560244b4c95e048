"""End-to-end: the real workflow on a small synthetic cohort, then what reruns when things change."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import open3d as o3d
import pandas as pd
import pydicom
import pytest
import SimpleITK as sitk
import torch
import yaml
from browser import HeadlessChromium, require_chromium
from conftest import REPO, run_snakemake, scheduled_jobs

from laseg.clinical import lavi_grade
from laseg.io import Geometry, read_image, read_volume
from laseg.mesh import SurfaceMesh, enclosed_volume_mm3
from laseg.slices import load_slices
from laseg.visualize import count_video_frames

pytestmark = pytest.mark.workflow

TEST_PATIENTS = ["syn_001", "syn_004"]
CONFIG = {
    "synthetic": {"n_patients": 6, "shape_zyx": [64, 112, 112]},
    "split": {"test": TEST_PATIENTS},
    # The epoch limit binds, not the budget: the result is the same on a busy or a quiet machine.
    "train": {"max_epochs": 12, "iterations_per_epoch": 20, "patch_px": 64, "budget_minutes": 20.0},
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("synthetic_run")
    # Height and weight for one test patient only (BSA exactly 2 m^2): syn_004 must get no LAVI.
    (workdir / "config").mkdir()
    (workdir / "config/patients.tsv").write_text("patient\theight_cm\tweight_kg\tsex\nsyn_001\t180\t80\tM\n")
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
    assert list(history.columns[:5]) == ["view", "epoch", "train_loss", "val_dice", "seconds"]
    assert len(history) >= 1 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert (finished_run / "results/model/training_curve.png").stat().st_size > 10_000
    assert "epoch" in (finished_run / "logs/train.log").read_text()


def test_videos_have_one_frame_per_slice_and_point_clouds_lie_in_the_scan(finished_run):
    for patient in TEST_PATIENTS:
        stack = load_slices(finished_run / f"results/slices/{patient}.npz")
        assert count_video_frames(finished_run / f"results/videos/{patient}.mp4") == stack.image.shape[0]
        geometry = stack.source_geometry
        corners = np.array(
            [
                np.array(geometry.origin_mm)
                + np.array(geometry.direction).reshape(3, 3) @ (np.array(c) * geometry.spacing_mm)
                for c in np.ndindex(2, 2, 2)
                for c in [np.array(c) * (np.array(geometry.size) - 1)]
            ]
        )
        for suffix in ("pred", "true"):
            cloud = o3d.io.read_point_cloud(str(finished_run / f"results/pointclouds/{patient}_{suffix}.ply"))
            points = np.asarray(cloud.points)
            assert len(points) > 100 and cloud.has_colors()
            assert (points >= corners.min(axis=0) - 1e-3).all() and (points <= corners.max(axis=0) + 1e-3).all()


def test_la_volume_index_from_patients_tsv(finished_run):
    per_patient = pd.read_csv(finished_run / "results/metrics/per_patient.csv").set_index("patient")
    table = pd.read_csv(finished_run / "results/clinical/la_volume_index.csv").set_index("patient")
    assert sorted(table.index) == TEST_PATIENTS
    volume = per_patient.loc["syn_001", "volume_pred_ml"]
    assert table.loc["syn_001", "volume_pred_ml"] == pytest.approx(volume)
    assert table.loc["syn_001", "bsa_m2"] == pytest.approx(2.0)
    assert table.loc["syn_001", "lavi_pred_ml_m2"] == pytest.approx(volume / 2.0)
    assert table.loc["syn_001", "grade_pred"] == lavi_grade(volume / 2.0)
    assert table.loc["syn_001", "lavi_true_ml_m2"] == pytest.approx(per_patient.loc["syn_001", "volume_true_ml"] / 2.0)
    assert np.isnan(table.loc["syn_004", "lavi_pred_ml_m2"]) and table.loc["syn_004", "volume_pred_ml"] > 0


def test_volume_agreement_and_cohort_figures(finished_run):
    per_patient = pd.read_csv(finished_run / "results/metrics/per_patient.csv")
    stats = json.loads((finished_run / "results/metrics/volume_agreement.json").read_text())
    difference = per_patient["volume_pred_ml"] - per_patient["volume_true_ml"]
    assert stats["n"] == 2 and stats["bias_ml"] == pytest.approx(difference.mean())
    assert stats["sd_ml"] == pytest.approx(difference.std(ddof=1))
    for figure in ("plots/bland_altman.png", "plots/volume_scatter.png", "plots/dice_distribution.png"):
        height, width = imageio.imread(finished_run / "results" / figure).shape[:2]
        assert height > 400 and width > 500, figure


def test_surface_meshes_lie_in_the_scan_and_enclose_the_mask_volume(finished_run):
    for patient in TEST_PATIENTS:
        for suffix, mask_path in (
            ("pred", f"results/masks/{patient}.nii.gz"),
            ("true", f"resources/synthetic/labelsTr/{patient}.nii.gz"),
        ):
            mask, geometry = read_volume(finished_run / mask_path)
            image = geometry.apply_to(sitk.Image(list(geometry.size), sitk.sitkUInt8))
            corners = np.array(
                [
                    image.TransformContinuousIndexToPhysicalPoint([c - 0.5 for c in corner])
                    for corner in np.ndindex(2, 2, 2)
                    for corner in [np.array(corner) * np.array(geometry.size)]
                ]
            )
            ply = o3d.io.read_triangle_mesh(str(finished_run / f"results/meshes/{patient}_{suffix}.ply"))
            vertices = np.asarray(ply.vertices)
            assert len(ply.triangles) > 1000
            assert (vertices >= corners.min(axis=0) - 1e-3).all() and (vertices <= corners.max(axis=0) + 1e-3).all()
            enclosed = enclosed_volume_mm3(SurfaceMesh(vertices, np.asarray(ply.triangles)))
            assert enclosed == pytest.approx(int((mask != 0).sum()) * geometry.voxel_volume_mm3, rel=0.03)
            stl = o3d.io.read_triangle_mesh(str(finished_run / f"results/meshes/{patient}_{suffix}.stl"))
            assert len(stl.triangles) == len(ply.triangles)


def test_montages_videos_and_3d_views_per_patient(finished_run):
    for patient in TEST_PATIENTS:
        height, width = imageio.imread(finished_run / f"results/montages/{patient}.png").shape[:2]
        assert height > 500 and width > 800
        assert imageio.imread(finished_run / f"results/renders/{patient}.png").shape[1] > 800
        viewer = (finished_run / f"results/viewers/{patient}.html").read_text()
        assert "https://" not in viewer and '"name": "reference"' in viewer
    log = (finished_run / "logs/overlay_video/syn_001.log").read_text()
    assert "error" not in log.lower()


def test_report_shows_every_patient_and_opens_in_chromium(finished_run, tmp_path):
    report = finished_run / "results/report.html"
    text = report.read_text()
    for expected in (
        *TEST_PATIENTS,
        "Bland-Altman",
        "MRI volumes run larger than echo",
        "Training: loss and validation Dice",
    ):
        assert expected in text
    require_chromium()
    with HeadlessChromium(width=1400, height=1000) as browser:
        browser.open(report)
        browser.wait_until("[...document.querySelectorAll('video')].every(v => v.readyState >= 1)", timeout_s=30)
        assert browser.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 100)")
        assert browser.evaluate("document.images.length") == 4 + 2 * len(
            TEST_PATIENTS
        )  # 4 figures, montage + render each
        assert browser.evaluate("document.querySelectorAll('#summary-table tbody tr').length") == len(TEST_PATIENTS)
        assert browser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        assert browser.console_errors() == []
        # The report's link to a 3D viewer leads to a working viewer with both surfaces.
        href = browser.evaluate("document.querySelector('a.button').href")
        browser.page.goto(href)
        browser.wait_until("window.viewerState && window.viewerState.ready")
        assert browser.evaluate("window.viewerState.surfacesDrawn") == ["prediction", "reference"]
        assert browser.console_errors() == []


def test_predict_mode_segments_new_scans_without_training(finished_run, tmp_path):
    (tmp_path / "new_scans").mkdir()
    (tmp_path / "models").mkdir()
    shutil.copy(finished_run / "resources/synthetic/imagesTr/syn_001.nii.gz", tmp_path / "new_scans/new_001.nii.gz")
    shutil.copy(finished_run / "results/model/model.pt", tmp_path / "models/la_unet.pt")
    predict_config = yaml.safe_load((REPO / "config/predict.yaml").read_text())
    assert predict_config["predict"]["checkpoint"] == "models/la_unet.pt"
    predict_config["data"]["path"] = str(tmp_path / "new_scans")
    result = run_snakemake(tmp_path, config=predict_config)
    assert "rule train:" not in result.stdout + result.stderr and not (tmp_path / "results/model").exists()
    table = pd.read_csv(tmp_path / "results/clinical/la_volume_index.csv")
    assert list(table["patient"]) == ["new_001"] and np.isnan(table["volume_true_ml"].iloc[0])
    # The same model on the same scan as syn_001 in the training run: the same mask, the same volume.
    trained_run = pd.read_csv(finished_run / "results/metrics/per_patient.csv").set_index("patient")
    assert table["volume_pred_ml"].iloc[0] == pytest.approx(trained_run.loc["syn_001", "volume_pred_ml"], rel=1e-9)
    for output in (
        "masks/new_001.nii.gz",
        "videos/new_001.mp4",
        "montages/new_001.png",
        "meshes/new_001_pred.stl",
        "viewers/new_001.html",
        "renders/new_001.png",
    ):
        assert (tmp_path / "results" / output).stat().st_size > 1000, output
    assert not (tmp_path / "results/plots/bland_altman.png").exists()  # nothing labelled to agree with
    report = (tmp_path / "results/report.html").read_text()
    assert "new_001" in report and "given checkpoint" in report


def test_predict_mode_marks_the_models_training_patients_and_leaves_them_unscored(finished_run, tmp_path):
    (tmp_path / "models").mkdir()
    shutil.copy(finished_run / "results/model/model.pt", tmp_path / "models/la_unet.pt")
    trained_on = torch.load(tmp_path / "models/la_unet.pt", weights_only=True)["train_patients"]
    config = {
        "data": {"source": "folder", "path": str(finished_run / "resources/synthetic")},
        "predict": {"checkpoint": "models/la_unet.pt"},
    }
    result = run_snakemake(tmp_path, "-n", config=config)
    assert f"trained on {len(trained_on)} of these labelled patients ({', '.join(trained_on)})" in result.stderr
    # Every scan is segmented; only the held-out ones are scored.
    assert scheduled_jobs(tmp_path, config=config)["predict"] == 6


@pytest.mark.parametrize("problem", ["missing", "incompatible", "train-output"])
def test_predict_mode_refuses_a_bad_checkpoint_before_any_job(finished_run, tmp_path, problem):
    (tmp_path / "new_scans").mkdir()
    shutil.copy(finished_run / "resources/synthetic/imagesTr/syn_001.nii.gz", tmp_path / "new_scans/new_001.nii.gz")
    checkpoint, expected = {
        "missing": ("models/absent.pt", "models/absent.pt: checkpoint not found"),
        "incompatible": ("models/old.pt", "models/old.pt: checkpoint format 0"),
        "train-output": ("results/model/model.pt", "copy the checkpoint elsewhere"),
    }[problem]
    if problem == "incompatible":
        (tmp_path / "models").mkdir()
        torch.save({"format": 0, "state_dict": {}}, tmp_path / checkpoint)
    config = {"data": {"source": "folder", "path": str(tmp_path / "new_scans")}, "predict": {"checkpoint": checkpoint}}
    result = run_snakemake(tmp_path, "-n", config=config, check=False)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()


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


def test_the_plan_follows_the_training_cases_and_the_config_keys_set_win(finished_run):
    plan = json.loads((finished_run / "results/plan/plan.json").read_text())
    fingerprint = json.loads((finished_run / "results/plan/fingerprint.json").read_text())
    training = sorted({f"syn_{i:03d}" for i in range(6)} - set(TEST_PATIENTS))
    assert plan["fingerprint_cases"] == fingerprint["patients"] == training  # never the test patients
    settings = plan["settings"]
    for key in ("max_epochs", "iterations_per_epoch", "patch_px", "budget_minutes"):  # set in CONFIG
        assert settings["train"][key]["source"] == "config", key
    assert settings["train"]["max_epochs"]["value"] == 12 and settings["train"]["patch_px"]["value"]["axial"] == [
        64,
        64,
    ]
    assert settings["model"]["views"]["source"] == "plan" and settings["model"]["grid_spacing_mm"]["source"] == "plan"
    # The checkpoint carries the plan it was trained with, and the report shows it with the amount of training.
    checkpoint = torch.load(finished_run / "results/model/model.pt", map_location="cpu", weights_only=True)
    assert checkpoint["plan"] == plan
    assert checkpoint["model_config"]["grid_spacing_mm"] == settings["model"]["grid_spacing_mm"]["value"]
    assert checkpoint["training_amount"]["epochs_run"] == {view: 12 for view in settings["model"]["views"]["value"]}
    report = (finished_run / "results/report.html").read_text()
    assert "id='plan-table'" in report and "model.grid_spacing_mm" in report and "completed as planned" in report


def test_adding_a_test_patient_does_not_replan_or_retrain(finished_run):
    more = {
        **CONFIG,
        "synthetic": {**CONFIG["synthetic"], "n_patients": 7},
        "split": {"test": [*TEST_PATIENTS, "syn_006"]},
    }
    jobs = scheduled_jobs(finished_run, config=more)
    assert jobs.get("synthesize_case") == 1 and jobs.get("slice_case") == 1 and jobs.get("predict") == 1
    assert not {"fingerprint_case", "fingerprint", "plan", "train"} & set(jobs), jobs


def test_changing_execution_settings_does_not_retrain(finished_run):
    jobs = scheduled_jobs(finished_run, config={**CONFIG, "train": {**CONFIG["train"], "threads": 1, "device": "cpu"}})
    assert "train" not in jobs and "plan" not in jobs, jobs


def test_changing_a_planned_key_replans_and_retrains(finished_run):
    jobs = scheduled_jobs(finished_run, config={**CONFIG, "model": {"inplane_spacing_mm": 2.0}})
    assert jobs.get("plan") == 1 and jobs.get("train") == 1 and "fingerprint" not in jobs and "slice_case" not in jobs


def test_editing_a_module_reruns_exactly_the_jobs_that_run_it(finished_run, tmp_path):
    # A copy of the workflow whose laseg/postprocess.py is edited: the postprocess jobs and what follows
    # from their masks rerun; slicing, planning, training and prediction do not.
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for part in ("Snakefile", "rules", "scripts", "laseg", "config", "envs"):
        copy = shutil.copytree if (REPO / part).is_dir() else shutil.copy
        copy(REPO / part, workflow / part)
    # Earlier tests may have left jobs to do (a changed post-processing setting): the copy does them first.
    run_snakemake(finished_run, config=CONFIG, snakefile=workflow / "Snakefile")
    assert not scheduled_jobs(finished_run, config=CONFIG, snakefile=workflow / "Snakefile")
    module = workflow / "laseg/postprocess.py"
    module.write_text(module.read_text() + "\n# an edit\n")
    jobs = scheduled_jobs(finished_run, config=CONFIG, snakefile=workflow / "Snakefile")
    assert jobs.get("postprocess") == len(TEST_PATIENTS) and "report" in jobs, jobs
    assert not {"slice_case", "fingerprint", "plan", "train", "predict"} & set(jobs), jobs


def test_predict_mode_reads_a_dicom_series_and_writes_its_mask_on_the_series_grid(finished_run, tmp_path):
    from dicom_series import write_series

    from laseg.masks import dice

    # syn_001 (a test patient of the run) as a scanner would export it: one file per slice, three folders deep.
    image, geometry = read_volume(finished_run / "resources/synthetic/imagesTr/syn_001.nii.gz")
    truth, _ = read_volume(finished_run / "resources/synthetic/labelsTr/syn_001.nii.gz")
    write_series(
        tmp_path / "export/TEST01/study1/series3",
        np.round(image).astype(np.int16),
        geometry.spacing_mm,
        geometry.origin_mm,
        geometry.direction,
    )
    (tmp_path / "models").mkdir()
    shutil.copy(finished_run / "results/model/model.pt", tmp_path / "models/la_unet.pt")
    config = {
        "data": {"source": "folder", "path": str(tmp_path / "export")},
        "predict": {"checkpoint": "models/la_unet.pt"},
    }
    seg_path = tmp_path / "results/dicom_seg/TEST01_study1_series3.dcm"
    run_snakemake(
        tmp_path,
        "results/masks/TEST01_study1_series3.nii.gz",
        "results/dicom_seg/TEST01_study1_series3.dcm",
        config=config,
    )
    mask, mask_geometry = read_volume(tmp_path / "results/masks/TEST01_study1_series3.nii.gz")
    assert mask_geometry.matches(geometry)
    assert dice(mask, truth) >= 0.85
    assert pydicom.dcmread(seg_path).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert not list((tmp_path / "export").rglob("*.nii.gz")), "nothing may be written into the data folder"
