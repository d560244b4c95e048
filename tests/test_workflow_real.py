"""End-to-end on 4 real MRI cases (MSD Task02_Heart): geometry and volumes must be exact, Dice sane."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REAL_DATA, REPO, load_bench_script, requires_real_data, run_snakemake, scheduled_jobs

from laseg.io import Geometry, read_image, read_volume

pytestmark = [pytest.mark.workflow, pytest.mark.realdata, requires_real_data]

PATIENTS = ["la_003", "la_004", "la_005", "la_007"]
HELD_OUT = "la_007"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("real_run")
    data = workdir / "msd"
    for folder in ("imagesTr", "labelsTr"):
        (data / folder).mkdir(parents=True)
        for patient in PATIENTS:
            (data / folder / f"{patient}.nii.gz").symlink_to(REAL_DATA / folder / f"{patient}.nii.gz")
    training = [{"image": f"./imagesTr/{p}.nii.gz", "label": f"./labelsTr/{p}.nii.gz"} for p in PATIENTS]
    (data / "dataset.json").write_text(json.dumps({"name": "LA subset", "training": training, "test": []}))
    config = {
        "data": {"source": "folder", "path": str(data)},
        "split": {"test": [HELD_OUT]},
        "train": {"max_epochs": 8, "iterations_per_epoch": 20, "budget_minutes": 20.0},  # epochs bind
        "mesh": {"enabled": False},  # the synthetic run covers meshes; keep CI time for the real-data checks
    }
    run_snakemake(workdir, config=config)
    return workdir


def test_outputs_sit_exactly_on_the_source_grid(real_run):
    source = Geometry.of(read_image(REAL_DATA / "imagesTr" / f"{HELD_OUT}.nii.gz"))
    for output in (f"results/masks/{HELD_OUT}.nii.gz", f"results/predict/{HELD_OUT}_probability.nii.gz"):
        assert Geometry.of(read_image(real_run / output)) == source, output


def test_true_volume_uses_the_header_spacing(real_run):
    row = pd.read_csv(real_run / "results/metrics/per_patient.csv").set_index("patient").loc[HELD_OUT]
    label, geometry = read_volume(REAL_DATA / "labelsTr" / f"{HELD_OUT}.nii.gz")
    voxel_ml = float(np.prod(geometry.spacing_mm)) / 1000.0
    assert voxel_ml == pytest.approx(1.25 * 1.25 * 1.37 / 1000, rel=1e-6)  # not the 1 mm the prototype assumed
    assert row["volume_true_ml"] == pytest.approx(int(label.sum()) * voxel_ml, rel=1e-6)


def test_short_training_already_finds_the_atrium(real_run):
    row = pd.read_csv(real_run / "results/metrics/per_patient.csv").set_index("patient").loc[HELD_OUT]
    # 160 iterations per network (deterministic on one machine): 0.846 with the default two networks in bf16
    # (Xeon with AMX), 0.844 with one axial network in fp32 (AMD EPYC). A regression guard.
    assert row["dice"] > 0.78, row.to_dict()
    assert 0.5 < row["volume_pred_ml"] / row["volume_true_ml"] < 2.0


def test_make_predict_reads_a_dicom_series_and_a_nifti_and_writes_masks_and_a_dicom_seg(tmp_path):
    """Issue 15's check: la_007 (held out of the shipped model) exported as a DICOM series three folders deep,
    beside one NIfTI scan; `make predict` segments both with the shipped model, no training. The series carries
    la_007's anatomical orientation, as a scanner's would, not the MSD file's axial header over sagittal slices."""
    import pydicom
    from dicom_series import write_series

    from laseg.masks import dice

    image, stored = read_volume(REAL_DATA / "imagesTr" / f"{HELD_OUT}.nii.gz")
    truth, _ = read_volume(REAL_DATA / "labelsTr" / f"{HELD_OUT}.nii.gz")
    direction = load_bench_script("orientation").ANATOMICAL_DIRECTION["msd_task02_heart"]
    geometry = Geometry(stored.size, stored.spacing_mm, stored.origin_mm, direction)
    scans = tmp_path / "scans"
    write_series(
        scans / "PAT007" / "study" / "bright_blood", image, geometry.spacing_mm, geometry.origin_mm, geometry.direction
    )
    (scans / "la_016.nii.gz").symlink_to(REAL_DATA / "imagesTr" / "la_016.nii.gz")
    out = tmp_path / "out"
    result = subprocess.run(
        ["make", "-C", str(REPO), "predict", f"IN={scans}", f"OUT={out}", "CORES=2"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    masks = sorted(p.name for p in (out / "results/masks").glob("*.nii.gz"))
    assert masks == ["PAT007_study_bright_blood.nii.gz", "la_016.nii.gz"], masks
    mask, mask_geometry = read_volume(out / "results/masks/PAT007_study_bright_blood.nii.gz")
    assert mask_geometry.matches(geometry)
    assert dice(mask, truth) >= 0.85
    segs = list((out / "results/dicom_seg").glob("*.dcm"))
    assert len(segs) == 1 and pydicom.dcmread(segs[0]).SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"
    assert sorted(p.name for p in scans.rglob("*") if p.is_file() and not p.name.endswith(".dcm")) == ["la_016.nii.gz"]


def test_the_second_stage_refines_the_held_out_scan_without_retraining_the_first(real_run, tmp_path):
    """The two-stage path on real MRI: a copy of the finished run with the 3D second stage switched on trains only
    that stage and refines the held-out scan on its own grid."""
    workdir = tmp_path / "two_stage"
    shutil.copytree(real_run, workdir, symlinks=True)
    config = yaml.safe_load((real_run / "test_config.yaml").read_text())
    # A small second stage (2 mm grid, 48^3 windows, 8 base channels, 150 steps): what CI can afford.
    config["stage2"] = {"enabled": True, "steps": 150, "patch_vox": 48, "grid_spacing_mm": 2.0, "base_channels": 8}
    jobs = scheduled_jobs(workdir, config=config)
    assert jobs.get("train_stage2") == 1 and jobs.get("predict") == 1, jobs
    assert not {"slice_case", "plan", "train"} & set(jobs), jobs
    run_snakemake(workdir, config=config)
    qc = json.loads((workdir / f"results/predict/{HELD_OUT}_qc.json").read_text())
    assert qc["stage2"] == "applied", qc
    source = Geometry.of(read_image(REAL_DATA / "imagesTr" / f"{HELD_OUT}.nii.gz"))
    assert Geometry.of(read_image(workdir / f"results/masks/{HELD_OUT}.nii.gz")) == source
    row = pd.read_csv(workdir / "results/metrics/per_patient.csv").set_index("patient").loc[HELD_OUT]
    # A guard of the path (a box or grid off by a few voxels falls far below it), not of the stage's accuracy: 150
    # steps on 3 cases scored 0.798 here (AMD EPYC, fp32), the first stage alone 0.858; the planned stage on MSD
    # fold 0 lifts the first stage by 0.012 (bench/README.md).
    assert row["dice"] > 0.72, row.to_dict()
