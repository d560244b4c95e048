"""Metrics against hand-computed answers and a brute-force surface-distance reference."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from laseg import metrics


def box(shape, z, y, x) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[z[0] : z[1], y[0] : y[1], x[0] : x[1]] = 1
    return mask


def brute_force_surface_distances(pred, truth, spacing):
    """Surface = foreground voxel with a face-neighbour that is background or outside the array."""

    def surface_points(mask):
        padded = np.pad(mask != 0, 1)
        core = padded[1:-1, 1:-1, 1:-1]
        interior = core.copy()
        for axis in range(3):
            for step in (-1, 1):
                interior &= np.roll(padded, step, axis=axis)[1:-1, 1:-1, 1:-1]
        return np.argwhere(core & ~interior) * np.asarray(spacing)

    p, t = surface_points(pred), surface_points(truth)
    distances = cdist(p, t)
    return distances.min(axis=1), distances.min(axis=0)


def test_cube_with_itself_is_perfect():
    cube = box((12, 12, 12), (2, 8), (3, 9), (1, 7))
    spacing = (2.0, 1.0, 0.5)
    assert metrics.dice(cube, cube) == 1.0
    assert metrics.iou(cube, cube) == 1.0
    assert metrics.hd95_mm(cube, cube, spacing) == 0.0
    assert metrics.assd_mm(cube, cube, spacing) == 0.0


def test_half_overlapping_cubes_have_known_dice_and_iou():
    a = box((10, 10, 10), (0, 4), (0, 4), (0, 4))
    b = box((10, 10, 10), (0, 4), (0, 4), (2, 6))  # shares half of its 64 voxels with a
    assert metrics.dice(a, b) == pytest.approx(2 * 32 / 128)
    assert metrics.iou(a, b) == pytest.approx(32 / 96)


def test_empty_masks():
    empty = np.zeros((5, 5, 5), dtype=np.uint8)
    cube = box((5, 5, 5), (1, 3), (1, 3), (1, 3))
    assert metrics.dice(empty, empty) == 1.0
    assert metrics.iou(empty, empty) == 1.0
    assert metrics.dice(empty, cube) == 0.0
    assert metrics.iou(cube, empty) == 0.0
    for pred, truth in ((empty, cube), (cube, empty), (empty, empty)):
        assert math.isnan(metrics.hd95_mm(pred, truth, (1.0, 1.0, 1.0)))
        assert math.isnan(metrics.assd_mm(pred, truth, (1.0, 1.0, 1.0)))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        metrics.dice(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)))


def test_sphere_volume_with_anisotropic_spacing():
    spacing = (1.5, 0.7, 0.9)  # z, y, x mm
    radius_mm = 20.0
    shape = (40, 80, 60)
    z, y, x = np.indices(shape).astype(float)
    centre = np.array(shape) / 2
    inside = ((z - centre[0]) * spacing[0]) ** 2 + ((y - centre[1]) * spacing[1]) ** 2 + (
        (x - centre[2]) * spacing[2]
    ) ** 2 <= radius_mm**2
    expected_ml = 4 / 3 * math.pi * radius_mm**3 / 1000
    assert metrics.volume_ml(inside, spacing) == pytest.approx(expected_ml, rel=0.01)
    assert metrics.volume_ml(inside, spacing) == pytest.approx(inside.sum() * 1.5 * 0.7 * 0.9 / 1000)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 3])
def test_hd95_of_shifted_cube_is_shift_times_spacing(axis, k):
    spacing = (2.5, 0.8, 0.9)  # all different, so a swapped axis order gives a wrong answer
    truth = box((20, 20, 20), (5, 11), (5, 11), (5, 11))
    pred = np.roll(truth, k, axis=axis)
    assert metrics.hd95_mm(pred, truth, spacing) == pytest.approx(k * spacing[axis])
    assert metrics.hd95_mm(truth, pred, spacing) == pytest.approx(k * spacing[axis])


def test_single_voxels_distance_both_ways():
    spacing = (3.0, 2.0, 1.0)
    a = np.zeros((6, 6, 6), dtype=np.uint8)
    b = np.zeros((6, 6, 6), dtype=np.uint8)
    a[1, 1, 1] = 1
    b[2, 3, 5] = 1
    expected = math.sqrt((1 * 3.0) ** 2 + (2 * 2.0) ** 2 + (4 * 1.0) ** 2)
    assert metrics.hd95_mm(a, b, spacing) == pytest.approx(expected)
    assert metrics.assd_mm(a, b, spacing) == pytest.approx(expected)


@pytest.mark.parametrize("scattered", [False, True], ids=["compact-kdtree", "noise-edt"])
def test_surface_distances_match_brute_force(scattered):
    # Compact blobs take the k-d tree path; masks of scattered noise take the distance-transform one.
    rng = np.random.default_rng(7)
    spacing = (1.7, 0.6, 1.1)
    shape = (30, 30, 30)
    if scattered:
        pred = rng.random(shape) < 0.3
        truth = rng.random(shape) < 0.3
    else:
        pred = box(shape, (5, 12), (8, 20), (10, 16))
        truth = box(shape, (6, 14), (9, 18), (9, 15))
        pred[20, 25, 3] = 1  # a far-off stray voxel makes the two directions differ
    to_truth, to_pred = metrics.surface_distances_mm(pred, truth, spacing)
    expected_to_truth, expected_to_pred = brute_force_surface_distances(pred, truth, spacing)
    np.testing.assert_allclose(np.sort(to_truth), np.sort(expected_to_truth), atol=1e-9)
    np.testing.assert_allclose(np.sort(to_pred), np.sort(expected_to_pred), atol=1e-9)


def test_surface_on_the_array_edge_counts():
    # A mask filling the array still has a surface (its border voxels), as in medpy.
    full = np.ones((4, 5, 6), dtype=np.uint8)
    to_truth, _ = metrics.surface_distances_mm(full, full, (1.0, 1.0, 1.0))
    assert to_truth.size == 4 * 5 * 6 - 2 * 3 * 4


def test_hd95_and_assd_follow_medpy():
    from medpy.metric.binary import assd as medpy_assd
    from medpy.metric.binary import hd95 as medpy_hd95

    spacing = (1.5, 1.0, 0.8)
    truth = box((40, 40, 40), (10, 30), (10, 30), (10, 30))
    pred = box((40, 40, 40), (12, 28), (12, 28), (12, 28))
    # A far blob: 7% of the prediction surface, 3% of both pooled, so that the conventions
    # (pooled vs directed percentiles, pooled mean vs mean of directed means) give different answers;
    # medpy 0.5 pools both.
    pred[33:38, 33:38, 33:38] = 1
    to_truth, to_pred = brute_force_surface_distances(pred, truth, spacing)
    assert (
        abs(max(np.percentile(to_truth, 95), np.percentile(to_pred, 95)) - np.percentile(np.r_[to_truth, to_pred], 95))
        > 0.1
    )
    assert abs(np.r_[to_truth, to_pred].mean() - (to_truth.mean() + to_pred.mean()) / 2) > 0.01
    assert metrics.hd95_mm(pred, truth, spacing) == pytest.approx(medpy_hd95(pred, truth, voxelspacing=spacing))
    assert metrics.assd_mm(pred, truth, spacing) == pytest.approx(medpy_assd(pred, truth, voxelspacing=spacing))


def test_a_failed_case_is_counted_with_worst_case_distances_not_dropped():
    spacing = (2.0, 1.0, 1.0)
    truth = box((10, 20, 30), (2, 6), (2, 6), (2, 6))
    failed = metrics.evaluate_case("empty", np.zeros_like(truth), truth, spacing)
    good = metrics.evaluate_case("good", truth, truth, spacing)
    blind = metrics.evaluate_case("blind", truth, None, spacing)
    assert failed["failed"] == 1 and good["failed"] == 0 and math.isnan(blind["failed"])
    assert failed["dice"] == 0.0 and failed["hd95_mm"] == pytest.approx(math.hypot(20, 20, 30))
    summary = metrics.summarize(pd.DataFrame([failed, good, blind]))
    assert summary.loc["hd95_mm", "n"] == 2 and summary.loc["hd95_mm", "n_failed"] == 1
    assert summary.loc["hd95_mm", "mean"] == pytest.approx(math.hypot(20, 20, 30) / 2)
    assert summary.loc["volume_pred_ml", "n"] == 3 and "failed" not in summary.index


def test_evaluate_case_with_and_without_reference():
    spacing = (2.0, 1.0, 1.0)
    truth = box((10, 10, 10), (0, 4), (0, 4), (0, 4))
    pred = box((10, 10, 10), (0, 4), (0, 4), (2, 6))
    row = metrics.evaluate_case("la_001", pred, truth, spacing)
    assert list(row) == [
        "patient",
        "dice",
        "iou",
        "hd95_mm",
        "assd_mm",
        "volume_pred_mm3",
        "volume_pred_ml",
        "volume_true_mm3",
        "volume_true_ml",
        "failed",
    ]
    assert row["patient"] == "la_001"
    assert row["dice"] == pytest.approx(0.5)
    assert row["iou"] == pytest.approx(1 / 3)
    assert row["hd95_mm"] == pytest.approx(metrics.hd95_mm(pred, truth, spacing))
    assert row["assd_mm"] == pytest.approx(metrics.assd_mm(pred, truth, spacing))
    assert row["volume_pred_mm3"] == pytest.approx(64 * 2.0)
    assert row["volume_pred_ml"] == pytest.approx(0.128)
    assert row["volume_true_ml"] == pytest.approx(0.128)

    blind = metrics.evaluate_case("la_002", pred, None, spacing)
    assert list(blind) == list(row)
    assert blind["volume_pred_ml"] == pytest.approx(0.128)
    for key in ("dice", "iou", "hd95_mm", "assd_mm", "volume_true_mm3", "volume_true_ml"):
        assert math.isnan(blind[key]), key


def test_summarize_skips_nan_and_text():
    per_patient = pd.DataFrame(
        {
            "patient": ["a", "b", "c"],
            "dice": [0.8, 0.9, math.nan],
            "volume_pred_ml": [100.0, 120.0, 110.0],
        }
    )
    summary = metrics.summarize(per_patient)
    assert list(summary.index) == ["dice", "volume_pred_ml"]
    assert list(summary.columns) == ["mean", "sd", "median", "min", "max", "n", "n_failed"]
    assert summary.loc["dice", "mean"] == pytest.approx(0.85)
    assert summary.loc["dice", "sd"] == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert summary.loc["dice", "n"] == 2
    assert summary.loc["volume_pred_ml", "median"] == pytest.approx(110.0)
    assert summary.loc["volume_pred_ml", "min"] == 100.0
    assert summary.loc["volume_pred_ml", "max"] == 120.0
    assert summary.loc["volume_pred_ml", "n"] == 3


def test_evaluate_case_on_a_full_size_scan():
    # 130 x 256 x 256 like the MSD scans: exercises the cropped surface search at real size.
    spacing = (1.37, 1.25, 1.25)
    shape = (130, 256, 256)
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    truth = ((z - 65) * 1.37) ** 2 + ((y - 128) * 1.25) ** 2 + ((x - 128) * 1.25) ** 2 <= 30.0**2
    pred = np.roll(truth, 2, axis=0)
    row = metrics.evaluate_case("big", pred, truth, spacing)
    assert row["hd95_mm"] == pytest.approx(2 * 1.37, rel=0.05)


def test_patients_a_given_model_was_trained_on_are_listed_but_not_summarised(tmp_path):
    spacing = (1.0, 1.0, 1.0)
    truth = box((10, 10, 10), (2, 6), (2, 6), (2, 6))
    paths = []
    for patient, pred in (("seen", truth), ("new", np.roll(truth, 1, axis=0)), ("blind", truth)):
        paths.append(tmp_path / f"{patient}.json")
        paths[-1].write_text(
            json.dumps(metrics.evaluate_case(patient, pred, None if patient == "blind" else truth, spacing))
        )
    per_patient, summary = metrics.aggregate_case_metrics([str(p) for p in paths], {"new"}, {"seen"})
    assert dict(zip(per_patient["patient"], per_patient["role"])) == {
        "blind": "unlabelled",
        "new": "test",
        "seen": "train",
    }
    assert summary.loc["dice", "n"] == 1 and summary.loc["dice", "mean"] < 1.0  # the perfect "seen" is not counted
    assert summary.loc["volume_pred_ml", "n"] == 2
    # Case metrics without QC columns (written before 2026-12-08) leave them empty; the reason is text, not summarised.
    assert list(per_patient.columns[-3:]) == ["qc_score", "qc_flag", "qc_reason"]
    assert per_patient["qc_reason"].isna().all() and "qc_reason" not in summary.index


def test_patient_tables_keep_ids_as_text(tmp_path):
    from laseg.metrics import read_patient_table, write_csv

    ids = ["001", "0042", "NA", "pat(1)", "1e3"]
    table = pd.DataFrame({"patient": ids, "dice": [0.9, float("nan"), 0.8, 0.7, 0.6]})
    write_csv(table, tmp_path / "per_patient.csv")
    back = read_patient_table(tmp_path / "per_patient.csv")
    assert back["patient"].tolist() == ids
    assert np.isnan(back["dice"][1]) and back["dice"][0] == 0.9


def test_the_quality_score_is_the_views_disagreement():
    # How the score flags a case, with the plausibility checks: tests/test_qc.py.
    from laseg.predict import view_disagreement

    a = box((10, 10, 10), (2, 6), (2, 6), (2, 6))
    b = box((10, 10, 10), (2, 6), (2, 6), (4, 8))
    assert view_disagreement({"axial": a, "coronal": a}) == 0.0
    assert view_disagreement({"axial": a, "coronal": b}) == pytest.approx(0.5)
    assert math.isnan(view_disagreement({"axial": a}))
