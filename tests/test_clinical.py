"""Body surface area, LA volume index and grade on known numbers; patients.tsv parsing and its errors."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from laseg.clinical import (
    ASE_2015_UPPER_ML_M2,
    Anthropometrics,
    body_surface_area_m2,
    lavi_grade,
    patients_tsv_in_use,
    read_patients_tsv,
    volume_index_ml_m2,
    volume_index_table,
)
from laseg.io import InputError

HEADER = "patient\theight_cm\tweight_kg\tsex\n"


def test_mosteller_bsa_on_known_inputs():
    # sqrt(180 * 80 / 3600) = sqrt(4) = 2 exactly; sqrt(160 * 90 / 3600) = 2 as well.
    assert body_surface_area_m2(180, 80) == pytest.approx(2.0, abs=1e-12)
    assert body_surface_area_m2(160, 90) == pytest.approx(2.0, abs=1e-12)
    assert body_surface_area_m2(170, 70) == pytest.approx(math.sqrt(170 * 70 / 3600))
    with pytest.raises(ValueError):
        body_surface_area_m2(0, 70)


def test_lavi_is_volume_over_bsa():
    assert volume_index_ml_m2(68.0, 2.0) == pytest.approx(34.0)
    assert volume_index_ml_m2(body_surface_area_m2(180, 80) * 41, body_surface_area_m2(180, 80)) == pytest.approx(41.0)


@pytest.mark.parametrize(
    "lavi, grade",
    [
        (10.0, "normal"),
        (34.0, "normal"),
        (34.01, "mild"),
        (35.0, "mild"),
        (41.0, "mild"),
        (41.5, "moderate"),
        (42.0, "moderate"),
        (48.0, "moderate"),
        (48.01, "severe"),
        (120.0, "severe"),
    ],
)
def test_ase_eacvi_2015_grades(lavi, grade):
    assert lavi_grade(lavi) == grade


def test_configurable_thresholds_and_their_checks():
    limits = {"normal": 28.0, "mild": 33.0, "moderate": 40.0}
    assert [lavi_grade(v, limits) for v in (28.0, 30.0, 40.0, 40.1)] == ["normal", "mild", "moderate", "severe"]
    with pytest.raises(InputError, match="increase"):
        lavi_grade(30.0, {"normal": 40.0, "mild": 33.0, "moderate": 48.0})
    with pytest.raises(InputError, match="missing moderate"):
        lavi_grade(30.0, {"normal": 34.0, "mild": 41.0})
    assert ASE_2015_UPPER_ML_M2 == {"normal": 34.0, "mild": 41.0, "moderate": 48.0}


def test_volume_index_table_known_patient_and_patient_without_a_row():
    volumes = pd.DataFrame(
        {"patient": ["la_002", "la_001"], "volume_pred_ml": [90.0, 70.0], "volume_true_ml": [math.nan, 100.0]}
    )
    people = {"la_001": Anthropometrics("la_001", 180.0, 80.0, "M")}  # BSA 2.0
    table = volume_index_table(volumes, people, ASE_2015_UPPER_ML_M2).set_index("patient")
    assert list(table.index) == ["la_001", "la_002"]
    assert table.loc["la_001", "bsa_m2"] == pytest.approx(2.0)
    assert table.loc["la_001", "lavi_pred_ml_m2"] == pytest.approx(35.0)
    assert table.loc["la_001", "grade_pred"] == "mild"
    assert table.loc["la_001", "lavi_true_ml_m2"] == pytest.approx(50.0)
    assert table.loc["la_001", "grade_true"] == "severe"
    # No row in patients.tsv: volume only, no index, no grade.
    assert table.loc["la_002", "volume_pred_ml"] == 90.0
    assert math.isnan(table.loc["la_002", "lavi_pred_ml_m2"]) and table.loc["la_002", "grade_pred"] == ""


def test_read_patients_tsv_with_comments_and_any_column_order(tmp_path):
    path = tmp_path / "patients.tsv"
    path.write_text(
        "# heights and weights\nsex\tpatient\tweight_kg\theight_cm\n\nF\tla_001\t61.5\t165\nM\tla_002\t80\t180\n"
    )
    rows = read_patients_tsv(path)
    assert rows == {
        "la_001": Anthropometrics("la_001", 165.0, 61.5, "F"),
        "la_002": Anthropometrics("la_002", 180.0, 80.0, "M"),
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ("la_001\t170\t70\n", "header"),
        (HEADER + "la_001\t170\t70\n", "line 2: 3 tab-separated fields"),
        (HEADER + "la_001\t170\tseventy\tM\n", "line 2: weight_kg: 'seventy'"),
        (HEADER + "la_001\tnan\t70\tM\n", "line 2: height_cm"),
        (HEADER + "la_001\t17\t70\tM\n", "line 2: height_cm: 17.0 is less than the minimum"),
        (HEADER + "la_001\t170\t70\tmale\n", "line 2: sex: 'male' is not one of"),
        (HEADER + "la_001\t170\t70\tM\nla_001\t171\t71\tM\n", "line 3: patient 'la_001' appears twice"),
        (HEADER + "\t170\t70\tM\n", "line 2: patient"),
        ("", "empty"),
    ],
    ids=["no-header", "missing-field", "not-a-number", "nan", "out-of-range", "bad-sex", "duplicate", "no-id", "empty"],
)
def test_malformed_patients_tsv_is_one_line_naming_file_and_line(tmp_path, body, message):
    path = tmp_path / "patients.tsv"
    path.write_text(body)
    with pytest.raises(InputError) as err:
        read_patients_tsv(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_patients_tsv_in_use_default_is_optional_other_paths_are_not(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert patients_tsv_in_use(None) is None
    assert patients_tsv_in_use("config/patients.tsv") is None  # the default, absent: no LAVI
    with pytest.raises(InputError, match="not found"):
        patients_tsv_in_use("elsewhere/patients.tsv")
    (tmp_path / "config").mkdir()
    (tmp_path / "config/patients.tsv").write_text(HEADER + "la_001\t170\t70\tX\n")
    assert patients_tsv_in_use("config/patients.tsv") == "config/patients.tsv"
    (tmp_path / "config/patients.tsv").write_text(HEADER + "la_001\t170\t\tX\n")
    with pytest.raises(InputError, match="weight_kg"):
        patients_tsv_in_use("config/patients.tsv")  # present but malformed: an error, not silence


def test_shipped_example_table_is_valid():
    from conftest import REPO

    rows = read_patients_tsv(REPO / "config" / "patients.tsv")
    assert len(rows) == 16 and all(p.startswith("syn_") for p in rows)


@pytest.mark.workflow
def test_workflow_stops_at_start_on_a_malformed_patients_tsv(tmp_path):
    from conftest import run_snakemake

    table = tmp_path / "heights.tsv"
    table.write_text(HEADER + "syn_000\t180\t80\tM\nsyn_001\t1.80\t80\tM\n")  # metres where cm belong
    result = run_snakemake(tmp_path, "-n", config={"clinical": {"patients_tsv": str(table)}}, check=False)
    assert result.returncode != 0
    assert f"{table}: line 3: height_cm: 1.8 is less than the minimum of 40" in result.stdout + result.stderr
    result = run_snakemake(
        tmp_path, "-n", config={"clinical": {"patients_tsv": str(tmp_path / "absent.tsv")}}, check=False
    )
    assert result.returncode != 0 and "absent.tsv: patients table not found" in result.stdout + result.stderr


def test_an_empty_or_edge_cut_mask_gets_no_lavi_grade_with_the_reason(tmp_path):
    import numpy as np

    from laseg.metrics import read_patient_table, volume_ml, write_csv
    from laseg.qc import quality_columns

    spacing = (4.0, 4.0, 4.0)  # 64 mm^3 a voxel: a radius-6 ball of 925 voxels is 59.2 mL
    z, y, x = np.ogrid[:30, :30, :30]

    def ball(cz: int) -> np.ndarray:
        return ((z - cz) ** 2 + (y - 15) ** 2 + (x - 15) ** 2 <= 36).astype(np.uint8)

    masks = {"empty": np.zeros((30, 30, 30), np.uint8), "cut": ball(2), "middle": ball(15), "large": ball(15)}
    rows = []
    for patient, mask in masks.items():
        # "large" was planned from atria of 10-20 mL: flagged for its volume, which does not withhold a grade.
        training_range = (10.0, 20.0) if patient == "large" else (40.0, 80.0)
        qc = quality_columns(mask, mask, spacing, training_range, {"view_disagreement": 0.0}, 0.1)
        rows.append({"patient": patient, "volume_pred_ml": volume_ml(mask, spacing), "volume_true_ml": math.nan, **qc})
    write_csv(pd.DataFrame(rows), tmp_path / "per_patient.csv")  # as the workflow hands it on: "" reads back NaN
    per_patient = read_patient_table(tmp_path / "per_patient.csv")
    people = {p: Anthropometrics(p, 180.0, 80.0, "F") for p in masks}  # BSA 2.0
    table = volume_index_table(per_patient, people, ASE_2015_UPPER_ML_M2).set_index("patient")
    assert table.loc["middle", "lavi_pred_ml_m2"] == pytest.approx(29.6)
    assert table.loc["middle", "grade_pred"] == "normal"
    assert table.loc["middle", "no_grade_reason"] == ""
    assert table.loc["large", "grade_pred"] == "normal" and table.loc["large", "no_grade_reason"] == ""
    assert table.loc["empty", "grade_pred"] == "" and math.isnan(table.loc["empty", "lavi_pred_ml_m2"])
    assert table.loc["empty", "no_grade_reason"] == "empty mask: no atrium found"
    assert table.loc["cut", "grade_pred"] == "" and math.isnan(table.loc["cut", "lavi_pred_ml_m2"])
    assert table.loc["cut", "no_grade_reason"] == (
        "atrium cut off by the scan's edge: 89% of its widest cross-section on face k=0"
    )
    assert table.loc["cut", "volume_pred_ml"] > 0 and table.loc["cut", "bsa_m2"] == pytest.approx(2.0)
