"""End-to-end on 4 real MRI cases (MSD Task02_Heart): geometry and volumes must be exact, Dice sane."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_DATA, requires_real_data, run_snakemake

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
