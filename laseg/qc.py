"""Plausibility checks on every segmentation, labelled or not: the results whose volume must not be trusted unread.

Each check that fires gives one reason; a case with any reason is flagged (qc_flag 1) and its reasons are joined
with "; " (qc_reason). Thresholds and why: docs/reliability.md#plausibility-checks.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from laseg.masks import as_mask
from laseg.postprocess import FOREGROUND_CONNECTIVITY

# A cut face as large as a tenth of the atrium's widest cross-section parallel to it is atrium, not a vein: one
# pulmonary vein is 1-2 cm², 5-10% of an atrium's 15-25 cm². Of the 60 labels of MSD Task02 and LA2018 dev, two
# touch a face: a vein's tip at 3% and an atrium cut at its roof at 22%. A sphere merely tangent to a face
# touches it with a voxel or a few, under 1%.
EDGE_CUT_FRACTION = 0.10
# The training atria's smallest and largest volumes span a cohort, not every patient: a severely dilated atrium
# (200-250 mL in MRI) lies beyond most cohorts' largest. Half the smallest and twice the largest leave room for
# real disease and still catch a mask that leaked into a neighbouring chamber or caught a fragment.
VOLUME_RANGE_FACTOR = 2.0
# A second component of a tenth of the largest is no stray blob (a trained network's strays are well under 1%):
# if it is atrium, post-processing drops it and the volume comes out at least 10% low, half a grade step of
# the LA volume index (34 -> 41 mL/m² is +20%); if it is not, the network found two candidate atria.
LARGE_COMPONENT_FRACTION = 0.10

EMPTY_MASK = "empty mask: no atrium found"
EDGE_CUT = "atrium cut off by the scan's edge"
# Reasons after which a volume is not the atrium's: an LA volume index graded from it would be a wrong answer.
GRADE_WITHHOLDING = (EMPTY_MASK, EDGE_CUT)
ARRAY_AXES = ("k", "j", "i")  # the (z, y, x) array axes as ITK indexes the voxels


def edge_cut_fractions(mask: np.ndarray) -> dict[str, float]:
    """Per face of the volume the mask touches ("k=0", "i=255", ...): its foreground voxels there as a fraction
    of the mask's largest cross-section parallel to that face."""
    inside = as_mask(mask)
    fractions: dict[str, float] = {}
    for axis, name in enumerate(ARRAY_AXES):
        others = tuple(a for a in range(inside.ndim) if a != axis)
        per_slice = inside.sum(axis=others)
        widest = int(per_slice.max(initial=0))
        for index in (0, inside.shape[axis] - 1):
            if per_slice[index]:
                fractions[f"{name}={index}"] = float(per_slice[index]) / widest
    return fractions


def edge_cut_reason(mask: np.ndarray, fraction: float = EDGE_CUT_FRACTION) -> str | None:
    cut = {face: f for face, f in edge_cut_fractions(mask).items() if f >= fraction}
    if not cut:
        return None
    faces = ", ".join(f"{f:.0%} of its widest cross-section on face {face}" for face, f in cut.items())
    return f"{EDGE_CUT}: {faces}"


def volume_range_reason(
    volume_ml: float, training_range_ml: tuple[float, float], factor: float = VOLUME_RANGE_FACTOR
) -> str | None:
    smallest, largest = training_range_ml
    low, high = smallest / factor, largest * factor
    if low <= volume_ml <= high:
        return None
    return (
        f"LA volume {volume_ml:.1f} mL outside {low:.1f}-{high:.1f} mL "
        f"(the training atria's {smallest:.1f}-{largest:.1f} mL, /{factor:g} and x{factor:g})"
    )


def large_components_reason(raw_mask: np.ndarray, fraction: float = LARGE_COMPONENT_FRACTION) -> str | None:
    """Components as post-processing sees them (26-connected) in the mask before it keeps the largest."""
    labels, n_components = ndimage.label(as_mask(raw_mask), structure=FOREGROUND_CONNECTIVITY)
    if n_components < 2:
        return None
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    large = int((sizes >= fraction * sizes[0]).sum())
    if large < 2:
        return None
    return f"{large} large components before post-processing (the second {sizes[1] / sizes[0]:.0%} of the largest)"


def view_disagreement_reason(score: float, review_above: float) -> str | None:
    if math.isnan(score) or score <= review_above:
        return None
    return f"views' networks disagree by {score:.3f} (above {review_above:g})"


def plausibility_reasons(
    mask: np.ndarray,
    raw_mask: np.ndarray | None,
    spacing_zyx_mm: tuple[float, float, float],
    training_range_ml: tuple[float, float] | None,
) -> list[str]:
    """Why a final mask (and the raw mask it came from) is not a plausible atrium; empty when it is.

    The volume is checked only with a training range (None: skipped), the components only with a raw mask.
    """
    inside = as_mask(mask)
    if not inside.any():
        return [EMPTY_MASK]  # nothing else to say of nothing: no edge, no components, no volume
    reasons = [edge_cut_reason(inside)]
    if training_range_ml is not None:
        volume = float(inside.sum()) * float(np.prod(spacing_zyx_mm)) / 1000.0
        reasons.append(volume_range_reason(volume, training_range_ml))
    if raw_mask is not None:
        reasons.append(large_components_reason(raw_mask))
    return [reason for reason in reasons if reason]


def quality_columns(
    mask: np.ndarray,
    raw_mask: np.ndarray | None,
    spacing_zyx_mm: tuple[float, float, float],
    training_range_ml: tuple[float, float] | None,
    predict_qc: dict,
    review_above: float,
) -> dict[str, float | str]:
    """One case's QC columns: qc_score (the views' disagreement from predict's QC file, NaN with one view),
    qc_flag (1 with any reason, else 0) and qc_reason (the reasons joined with "; ", empty when none)."""
    score = float(predict_qc.get("view_disagreement", math.nan))
    reasons = plausibility_reasons(mask, raw_mask, spacing_zyx_mm, training_range_ml)
    reasons += [r for r in [view_disagreement_reason(score, review_above)] if r]
    return {"qc_score": score, "qc_flag": float(bool(reasons)), "qc_reason": "; ".join(reasons)}


def grade_withheld_reason(qc_reason: object) -> str:
    """The reasons in a qc_reason cell that leave a case without an LA volume index grade; "" when none."""
    if not isinstance(qc_reason, str):
        return ""
    return "; ".join(r for r in qc_reason.split("; ") if r.startswith(GRADE_WITHHOLDING))
