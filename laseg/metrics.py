"""Overlap, surface-distance and volume metrics of a predicted mask against the reference label."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import cKDTree

from laseg.io import atomic_path
from laseg.masks import as_mask, bounding_box, check_same_shape, dice, iou

# Surface voxels are foreground voxels with a background face-neighbour (mask minus its erosion by
# the 6-connected cross), voxels on the array border included, exactly as medpy defines them, so the
# distances here can be compared with published medpy numbers.
FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)


def surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, FACE_NEIGHBOURS, border_value=0)


def surface_distances_mm(
    pred: np.ndarray, truth: np.ndarray, spacing_zyx_mm: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each prediction surface voxel to the nearest reference surface voxel,
    and from each reference surface voxel to the nearest prediction surface voxel.

    Both arrays are empty when either mask is empty (a distance to nothing is undefined).
    """
    check_same_shape(pred, truth)
    p, t = as_mask(pred), as_mask(truth)
    if not p.any() or not t.any():
        return np.empty(0), np.empty(0)
    # All surface voxels of both masks lie in their joint bounding box, so working there is exact;
    # one voxel of zero padding keeps the crop's edge from counting as background next to the
    # object while still making voxels on the array edge surface, as medpy's erosion does.
    box = bounding_box(p | t)
    p_surface = surface(np.pad(p[box], 1))
    t_surface = surface(np.pad(t[box], 1))
    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    n_points = int(p_surface.sum()) + int(t_surface.sum())
    # Both ways give the same exact Euclidean distances. A k-d tree over the surface points costs
    # about 2 us a point, the distance transforms about 0.4 us a voxel of the crop: the tree wins
    # for any sensible segmentation, the transforms when one mask is scattered noise filling the
    # volume (then also the bounding box is the whole scan).
    if n_points * 5 < p_surface.size:
        p_points = np.argwhere(p_surface) * spacing
        t_points = np.argwhere(t_surface) * spacing
        to_truth = cKDTree(t_points).query(p_points)[0]
        to_pred = cKDTree(p_points).query(t_points)[0]
    else:
        sampling = tuple(float(s) for s in spacing)
        to_truth = ndimage.distance_transform_edt(~t_surface, sampling=sampling)[p_surface]
        to_pred = ndimage.distance_transform_edt(~p_surface, sampling=sampling)[t_surface]
    return np.asarray(to_truth, dtype=float), np.asarray(to_pred, dtype=float)


# The surface-distance conventions are medpy 0.5's (medpy.metric.binary.hd95 and assd, checked against it in
# tests/test_metrics.py), as in the LA segmentation literature (UA-MT and its successors report them).
def hd95_of_distances(to_truth_mm: np.ndarray, to_pred_mm: np.ndarray) -> float:
    if to_truth_mm.size == 0 or to_pred_mm.size == 0:
        return math.nan
    return float(np.percentile(np.concatenate([to_truth_mm, to_pred_mm]), 95))


def assd_of_distances(to_truth_mm: np.ndarray, to_pred_mm: np.ndarray) -> float:
    if to_truth_mm.size == 0 or to_pred_mm.size == 0:
        return math.nan
    return float(np.concatenate([to_truth_mm, to_pred_mm]).mean())


def hd95_mm(pred: np.ndarray, truth: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> float:
    """95th-percentile Hausdorff distance, medpy's convention: the 95th percentile of the surface
    distances of both directions pooled. NaN if either mask is empty."""
    return hd95_of_distances(*surface_distances_mm(pred, truth, spacing_zyx_mm))


def assd_mm(pred: np.ndarray, truth: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> float:
    """Average symmetric surface distance, medpy's convention (0.5): the mean of the surface distances of
    both directions pooled (older medpy averaged the two directed means). NaN if either mask is empty."""
    return assd_of_distances(*surface_distances_mm(pred, truth, spacing_zyx_mm))


def scan_diagonal_mm(shape_zyx: tuple[int, ...], spacing_zyx_mm: tuple[float, float, float]) -> float:
    """The longest distance inside a scan: what a failed case's surface distances count as."""
    return float(np.linalg.norm(np.asarray(shape_zyx, float) * np.asarray(spacing_zyx_mm, float)))


def volume_mm3(mask: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> float:
    return float(np.count_nonzero(mask)) * float(np.prod(spacing_zyx_mm))


def volume_ml(mask: np.ndarray, spacing_zyx_mm: tuple[float, float, float]) -> float:
    """Foreground volume in millilitres (1 mL = 1000 mm^3)."""
    return volume_mm3(mask, spacing_zyx_mm) / 1000.0


def evaluate_case(
    patient: str, pred: np.ndarray, truth: np.ndarray | None, spacing_zyx_mm: tuple[float, float, float]
) -> dict[str, float | str]:
    """All metrics of one case; without a reference only the predicted volume is known (rest NaN).

    A failed case (an empty prediction where the reference has an atrium) is marked failed = 1 and its
    HD95 and ASSD are the scan's diagonal, so that it weighs on the cohort means instead of dropping out.
    """
    row: dict[str, float | str] = {"patient": patient}
    pred_mask = as_mask(pred)
    if truth is None:
        row.update(dice=math.nan, iou=math.nan, hd95_mm=math.nan, assd_mm=math.nan)
    else:
        truth_mask = as_mask(truth)
        check_same_shape(pred_mask, truth_mask)
        # One pair of distance transforms serves both surface metrics.
        distances = surface_distances_mm(pred_mask, truth_mask, spacing_zyx_mm)
        hd95, assd = hd95_of_distances(*distances), assd_of_distances(*distances)
        if truth_mask.any() and not pred_mask.any():
            hd95 = assd = scan_diagonal_mm(pred_mask.shape, spacing_zyx_mm)
        row.update(dice=dice(pred_mask, truth_mask), iou=iou(pred_mask, truth_mask), hd95_mm=hd95, assd_mm=assd)
    row["volume_pred_mm3"] = volume_mm3(pred_mask, spacing_zyx_mm)
    row["volume_pred_ml"] = volume_ml(pred_mask, spacing_zyx_mm)
    if truth is None:
        row["volume_true_mm3"] = math.nan
        row["volume_true_ml"] = math.nan
    else:
        row["volume_true_mm3"] = volume_mm3(truth_mask, spacing_zyx_mm)
        row["volume_true_ml"] = volume_ml(truth_mask, spacing_zyx_mm)
    row["failed"] = math.nan if truth is None else int(bool(truth_mask.any() and not pred_mask.any()))
    return row


def summarize(per_patient: pd.DataFrame) -> pd.DataFrame:
    """One row per numeric metric with mean, sd (sample, ddof=1), median, min, max and n, NaN skipped,
    and n_failed: how many of those n are failed cases (counted in, with their worst-case distances)."""
    failed = per_patient["failed"] == 1 if "failed" in per_patient else pd.Series(False, index=per_patient.index)
    numeric = per_patient.select_dtypes(include="number").drop(columns=["failed"], errors="ignore")
    summary = pd.DataFrame(
        {
            "mean": numeric.mean(),
            "sd": numeric.std(ddof=1),
            "median": numeric.median(),
            "min": numeric.min(),
            "max": numeric.max(),
            "n": numeric.count().astype(int),
            "n_failed": pd.Series({column: int((failed & numeric[column].notna()).sum()) for column in numeric}),
        }
    )
    summary.index.name = "metric"
    return summary


def aggregate_case_metrics(
    case_json_paths: list[str], test_patients: set[str], train_patients: set[str] = frozenset()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-patient table (sorted, with its role: test, train or unlabelled) and its summary, from per-case
    JSON. Train patients (those a given checkpoint was trained on) are listed but left out of the summary."""
    rows = [json.loads(Path(p).read_text()) for p in case_json_paths]
    columns = [
        "patient",
        "dice",
        "iou",
        "hd95_mm",
        "assd_mm",
        "volume_pred_ml",
        "volume_true_ml",
        "volume_pred_mm3",
        "volume_true_mm3",
        "failed",
        "qc_score",
        "qc_flag",
        "qc_reason",  # laseg.qc: why a case is flagged, its reasons joined with "; "
    ]
    per_patient = pd.DataFrame(rows, columns=columns).sort_values("patient").reset_index(drop=True)
    # Text even when every case predates it (all missing), so that it is never summarised as a number.
    per_patient = per_patient.astype({"qc_reason": object})
    roles = [
        "test" if p in test_patients else "train" if p in train_patients else "unlabelled"
        for p in per_patient["patient"]
    ]
    per_patient.insert(1, "role", roles)
    return per_patient, summarize(per_patient[per_patient["role"] != "train"])


def scored_rows(per_patient: pd.DataFrame) -> pd.DataFrame:
    """The rows that cohort figures score: all but the patients a given model was trained on."""
    return per_patient[per_patient["role"] != "train"] if "role" in per_patient else per_patient


def read_patient_table(path: str | os.PathLike) -> pd.DataFrame:
    """A per-patient CSV written by write_csv, ids kept as text: "001" stays "001", not the number 1,
    and an id such as "NA" is not a missing value (only empty cells are)."""
    return pd.read_csv(path, dtype={"patient": str}, keep_default_na=False, na_values=[""])


def write_csv(table: pd.DataFrame, path: str | os.PathLike, index: bool = False) -> None:
    with atomic_path(path, suffix=".csv") as tmp:
        table.to_csv(tmp, index=index, float_format="%.10g")


def training_minutes(history: pd.DataFrame) -> float:
    """Wall-clock training minutes from a history table: each view's network counts from 0 seconds,
    so the total is the sum of every view's last elapsed time."""
    groups = history.groupby("view", sort=False) if "view" in history.columns else [(None, history)]
    return sum(float(rows["seconds"].iloc[-1]) for _, rows in groups) / 60.0


def cross_validation_tables(case_json_paths: list[str], history_paths: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-case table with its fold, and per-fold means plus training minutes; the last row is the mean.

    The fold is read from the path (`.../fold_<k>/...`), so the table needs nothing beyond its inputs.
    """
    rows = []
    for path in case_json_paths:
        fold = int(Path(path).parent.parent.name.removeprefix("fold_"))
        rows.append({"fold": fold, **json.loads(Path(path).read_text())})
    per_case = pd.DataFrame(rows).sort_values(["fold", "patient"]).reset_index(drop=True)
    if "failed" not in per_case:  # case metrics written before failed cases were counted
        per_case["failed"] = 0
    minutes = {int(Path(p).parent.name.removeprefix("fold_")): training_minutes(pd.read_csv(p)) for p in history_paths}
    per_fold = per_case.groupby("fold").agg(
        n_cases=("patient", "count"),
        n_failed=("failed", "sum"),
        dice=("dice", "mean"),
        hd95_mm=("hd95_mm", "mean"),
        assd_mm=("assd_mm", "mean"),
    )
    per_fold["train_minutes"] = [minutes.get(k, math.nan) for k in per_fold.index]
    per_fold = per_fold.reset_index()
    mean_row = {
        "fold": "mean",
        "n_cases": int(per_fold["n_cases"].sum()),
        "n_failed": int(per_fold["n_failed"].sum()),
        "dice": per_case["dice"].mean(),
        "hd95_mm": per_case["hd95_mm"].mean(),
        "assd_mm": per_case["assd_mm"].mean(),
        "train_minutes": per_fold["train_minutes"].mean(),
    }
    per_fold = pd.concat([per_fold.astype({"fold": object}), pd.DataFrame([mean_row])], ignore_index=True)
    return per_case, per_fold
