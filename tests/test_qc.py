"""Plausibility QC on tiny volumes in memory: each check's exact answer, its threshold's edge, and the reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laseg.plan import training_volume_range, training_volume_range_ml
from laseg.qc import (
    EMPTY_MASK,
    edge_cut_fractions,
    edge_cut_reason,
    grade_withheld_reason,
    large_components_reason,
    plausibility_reasons,
    quality_columns,
    volume_range_reason,
)

SHAPE = (30, 30, 30)
UNIT_MM = (1.0, 1.0, 1.0)
# Lattice points of a disc of squared radius r2: 113 for 36 (radius 6), 101 for 32 (a radius-6 sphere's
# section 2 voxels off its centre); a radius-6 ball holds 925.
DISC_36, DISC_32, BALL_6 = 113, 101, 925


def sphere(centre_zyx: tuple[int, int, int], radius: int = 6, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    z, y, x = np.ogrid[: shape[0], : shape[1], : shape[2]]
    squared = (z - centre_zyx[0]) ** 2 + (y - centre_zyx[1]) ** 2 + (x - centre_zyx[2]) ** 2
    return (squared <= radius**2).astype(np.uint8)


def box(shape, z, y, x) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[z[0] : z[1], y[0] : y[1], x[0] : x[1]] = 1
    return mask


def test_an_empty_mask_is_flagged_as_empty_and_nothing_else():
    empty = np.zeros(SHAPE, np.uint8)
    assert plausibility_reasons(empty, empty, UNIT_MM, (40.0, 150.0)) == [EMPTY_MASK]
    assert quality_columns(empty, empty, UNIT_MM, (40.0, 150.0), {"view_disagreement": 0.0}, 0.1) == {
        "qc_score": 0.0,
        "qc_flag": 1.0,
        "qc_reason": "empty mask: no atrium found",
    }


def test_a_sphere_in_the_middle_passes_every_check():
    middle = sphere((15, 15, 15))
    assert int(middle.sum()) == BALL_6
    assert edge_cut_fractions(middle) == {}
    # 925 voxels of 1 mm³ are 0.925 mL, inside 0.5-3.0 mL (a training range of 1.0-1.5 mL, /2 and x2).
    assert plausibility_reasons(middle, middle, UNIT_MM, (1.0, 1.5)) == []
    assert quality_columns(middle, middle, UNIT_MM, (1.0, 1.5), {"view_disagreement": 0.05}, 0.1) == {
        "qc_score": 0.05,
        "qc_flag": 0.0,
        "qc_reason": "",
    }
    # One view, no score: the plausibility checks still decide, so the flag is 0, not unknown.
    assert quality_columns(middle, None, UNIT_MM, None, {"view_disagreement": math.nan}, 0.1)["qc_flag"] == 0.0


def test_a_sphere_cut_by_a_face_is_flagged_with_its_share_of_the_cross_section():
    cut = sphere((2, 15, 15))  # centre 2 voxels from face k=0: the section there is a disc of r^2 = 36 - 4
    assert edge_cut_fractions(cut) == {"k=0": DISC_32 / DISC_36}
    assert edge_cut_reason(cut) == "atrium cut off by the scan's edge: 89% of its widest cross-section on face k=0"
    far_side = sphere((15, 15, 27))  # on the last column (i = 29), 2 voxels off centre as well
    assert edge_cut_fractions(far_side) == {"i=29": DISC_32 / DISC_36}
    assert plausibility_reasons(far_side, far_side, UNIT_MM, None) == [
        "atrium cut off by the scan's edge: 89% of its widest cross-section on face i=29"
    ]


def test_a_sphere_merely_tangent_to_a_face_is_not_cut_off():
    tangent = sphere((6, 15, 15))  # its pole, one voxel, on face k=0
    assert edge_cut_fractions(tangent) == {"k=0": 1 / DISC_36}
    assert edge_cut_reason(tangent) is None
    assert edge_cut_reason(tangent, fraction=1 / DISC_36) is not None  # the tolerance is what spares it


def test_two_equal_spheres_before_post_processing_are_flagged_a_stray_blob_is_not():
    one = sphere((15, 8, 8))
    two = one | sphere((15, 22, 22))
    assert large_components_reason(two) == "2 large components before post-processing (the second 100% of the largest)"
    # Post-processing kept one of them: the final mask is a plausible sphere, the raw one is not.
    assert plausibility_reasons(one, two, UNIT_MM, None) == [
        "2 large components before post-processing (the second 100% of the largest)"
    ]
    stray = one | box(SHAPE, (2, 4), (25, 27), (25, 27))  # 8 voxels beside 925
    assert large_components_reason(stray) is None
    assert large_components_reason(one) is None


def test_a_second_component_counts_as_large_from_a_tenth_of_the_largest():
    largest = box(SHAPE, (0, 10), (0, 10), (0, 10))  # 1000 voxels
    tenth = largest | box(SHAPE, (20, 21), (0, 10), (0, 10))  # 100 voxels
    under = largest | box(SHAPE, (20, 21), (0, 11), (0, 9))  # 99 voxels
    assert large_components_reason(tenth) == "2 large components before post-processing (the second 10% of the largest)"
    assert large_components_reason(under) is None
    # Touching by a corner is one component, as post-processing (26-connected) sees it.
    assert large_components_reason(largest | box(SHAPE, (10, 20), (10, 20), (10, 20))) is None


def test_a_volume_three_times_the_cohorts_largest_is_flagged():
    spacing = (3.0, 2.0, 5.0)  # 30 mm^3 a voxel: 1000 voxels are 30 mL
    mask = box(SHAPE, (5, 15), (5, 15), (5, 15))
    assert plausibility_reasons(mask, mask, spacing, (4.0, 10.0)) == [
        "LA volume 30.0 mL outside 2.0-20.0 mL (the training atria's 4.0-10.0 mL, /2 and x2)"
    ]
    assert plausibility_reasons(mask, mask, spacing, (4.0, 15.0)) == []  # exactly twice the largest: inside
    assert volume_range_reason(1.9, (4.0, 10.0)) == (
        "LA volume 1.9 mL outside 2.0-20.0 mL (the training atria's 4.0-10.0 mL, /2 and x2)"
    )
    assert volume_range_reason(2.0, (4.0, 10.0)) is None
    assert plausibility_reasons(mask, mask, spacing, None) == []  # no recorded range: the check is skipped


def test_the_plan_records_the_training_volume_range_and_the_check_reads_it_back():
    fingerprint = {"cases": [{"la_volume_ml": 75.5}, {"la_volume_ml": 40.25}, {"la_volume_ml": 150.0}]}
    plan = {"format": 1, **training_volume_range(fingerprint)}
    assert plan["training_la_volume_ml"] == {"min": 40.25, "max": 150.0, "n_cases": 3}
    assert training_volume_range_ml(plan) == (40.25, 150.0)
    assert training_volume_range({}) == {}
    assert training_volume_range_ml({"format": 1}) is None  # a plan before 2026-12-08
    assert training_volume_range_ml(None) is None  # a checkpoint without a plan


def test_every_reason_is_kept_joined_and_only_empty_or_edge_cut_withhold_a_grade():
    cut = sphere((2, 15, 15))
    columns = quality_columns(cut, cut | sphere((15, 22, 22)), UNIT_MM, (10.0, 20.0), {"view_disagreement": 0.25}, 0.1)
    reasons = columns["qc_reason"].split("; ")
    assert columns["qc_flag"] == 1.0 and [r.split(" ")[0] for r in reasons] == ["atrium", "LA", "2", "views'"]
    assert reasons[-1] == "views' networks disagree by 0.250 (above 0.1)"
    assert grade_withheld_reason(columns["qc_reason"]) == reasons[0]
    assert grade_withheld_reason(EMPTY_MASK) == EMPTY_MASK
    assert grade_withheld_reason("views' networks disagree by 0.250 (above 0.1)") == ""
    assert grade_withheld_reason(math.nan) == ""  # an empty CSV cell reads back as NaN


@pytest.mark.parametrize("bad_face", ["k=0", "k=29", "j=0", "j=29", "i=0", "i=29"])
def test_every_face_of_the_volume_is_checked(bad_face):
    axis, index = "kji".index(bad_face[0]), int(bad_face[2:])
    centre = [15, 15, 15]
    centre[axis] = 2 if index == 0 else 27
    assert list(edge_cut_fractions(sphere(tuple(centre)))) == [bad_face]  # type: ignore[arg-type]
