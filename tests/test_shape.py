"""LA size and shape in world mm on shapes with known answers: boxes, ellipsoids and spheres on oblique,
anisotropic grids, the geometry always from the header; the shape table and its agreement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import ellipeinc, ellipkinc

from laseg.io import Geometry
from laseg.plots import bland_altman
from laseg.shape import (
    largest_distance_mm,
    shape_agreement,
    shape_measures,
    shape_row,
    shape_table,
    voxel_extent_mm,
)

IDENTITY = np.eye(3)


def rotation(axis: int, degrees: float) -> np.ndarray:
    """Rotation by `degrees` about world axis 0 (x), 1 (y) or 2 (z)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def ellipsoid_case(
    semi_axes_mm, spacing_mm, direction, axes_rotation=IDENTITY, centre_mm=(12.3, -40.7, 88.1), shift=(0.31, 0.17, 0.23)
) -> tuple[np.ndarray, Geometry]:
    """Voxels whose centre lies inside an ellipsoid (semi-axes along the columns of `axes_rotation`, world mm),
    on a grid with the given spacing and direction covering it; `shift` (in voxels) keeps its centre off the
    voxel centres."""
    spacing = np.asarray(spacing_mm, float)
    n = math.ceil(2 * max(semi_axes_mm) / spacing.min()) + 6  # covers it in any direction
    direction = np.asarray(direction, float)
    centre = np.asarray(centre_mm, float)
    origin = centre - direction @ (((n - 1) / 2 - np.asarray(shift)) * spacing)
    geometry = Geometry((n, n, n), tuple(spacing), tuple(origin), tuple(direction.ravel()))
    # World position minus centre, in the ellipsoid's own axes, one coordinate at a time to keep memory low.
    k, j, i = np.ogrid[:n, :n, :n]
    steps = direction * spacing  # column c: one voxel step along voxel axis c, in world mm
    inside = np.zeros((n, n, n))
    for axis in range(3):
        along = (axes_rotation.T @ steps)[axis]
        offset = float(axes_rotation[:, axis] @ (origin - centre))
        inside += ((offset + i * along[0] + j * along[1] + k * along[2]) / semi_axes_mm[axis]) ** 2
    return (inside <= 1.0).astype(np.uint8), geometry


def ellipsoid_area_mm2(a: float, b: float, c: float) -> float:
    """Exact surface area of an ellipsoid (Legendre's form with incomplete elliptic integrals)."""
    a, b, c = sorted((a, b, c), reverse=True)
    phi = math.acos(c / a)
    m = a * a * (b * b - c * c) / (b * b * (a * a - c * c))
    side = ellipeinc(phi, m) * math.sin(phi) ** 2 + ellipkinc(phi, m) * math.cos(phi) ** 2
    return 2 * math.pi * c * c + 2 * math.pi * a * b / math.sin(phi) * side


def box_case(direction, spacing=(0.8, 1.0, 1.6)) -> tuple[np.ndarray, Geometry]:
    """A box of 20 x 12 x 8 voxels (x, y, z of the grid) inside a 30 x 22 x 16 grid."""
    mask = np.zeros((16, 22, 30), np.uint8)
    mask[4:12, 5:17, 5:25] = 1
    return mask, Geometry((30, 22, 16), spacing, (-30.0, 12.5, 40.0), tuple(np.asarray(direction, float).ravel()))


def test_axis_aligned_box_gives_exact_extents_and_volume():
    mask, geometry = box_case(IDENTITY)
    shape = shape_measures(mask, geometry)
    assert shape["diameter_lr_mm"] == pytest.approx(20 * 0.8, abs=1e-6)
    assert shape["diameter_ap_mm"] == pytest.approx(12 * 1.0, abs=1e-6)
    assert shape["diameter_si_mm"] == pytest.approx(8 * 1.6, abs=1e-6)
    assert shape["volume_ml"] == pytest.approx(20 * 12 * 8 * 0.8 * 1.0 * 1.6 / 1000)
    # Smoothing rounds the box's edges: the farthest points lie between its longest side and its diagonal.
    assert 16.0 < shape["diameter_max_mm"] <= math.hypot(16.0, 12.0, 12.8)


def test_box_on_a_turned_grid_measures_along_the_patient_not_the_grid():
    # Voxel x runs to world -y (posterior to anterior), voxel y to world +x: the grid's 20 voxels of 0.8 mm
    # now lie along AP and its 12 voxels of 1.0 mm along LR.
    turned = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    shape = shape_measures(*box_case(turned))
    assert shape["diameter_lr_mm"] == pytest.approx(12.0, abs=1e-6)
    assert shape["diameter_ap_mm"] == pytest.approx(16.0, abs=1e-6)
    assert shape["diameter_si_mm"] == pytest.approx(12.8, abs=1e-6)


def test_ellipsoid_on_an_oblique_anisotropic_grid():
    # Semi-axes 30, 20, 15 mm turned 20 degrees about SI in the world; the grid 0.8 x 1.0 x 1.6 mm, turned
    # 30 degrees about LR. Its extent along world axis k is 2 sqrt(sum_j (R[k, j] a_j)^2).
    semi = np.array([30.0, 20.0, 15.0])
    turn = rotation(2, 20.0)
    mask, geometry = ellipsoid_case(semi, (0.8, 1.0, 1.6), rotation(0, 30.0), turn)
    shape = shape_measures(mask, geometry)
    expected = 2 * np.sqrt(((turn * semi) ** 2).sum(axis=1))
    measured = np.array([shape["diameter_lr_mm"], shape["diameter_ap_mm"], shape["diameter_si_mm"]])
    # One voxel along each world axis: 0.8, 1.67 and 1.89 mm, the grid's voxel seen along that axis.
    assert np.all(np.abs(measured - expected) <= voxel_extent_mm(geometry))
    assert shape["diameter_max_mm"] == pytest.approx(60.0, abs=1.6)
    assert shape["volume_ml"] == pytest.approx(4 / 3 * math.pi * semi.prod() / 1000, rel=0.01)
    assert shape["sphericity"] == pytest.approx(20.0 * 15.0 / 30.0**2, rel=0.02)  # b c / a^2
    assert shape["surface_area_cm2"] == pytest.approx(ellipsoid_area_mm2(*semi) / 100, rel=0.04)


def test_sphere_has_sphericity_one():
    # Dmax runs high by up to a voxel (the outermost staircase bump), sphericity three times that low: a
    # sphere 180 voxels across keeps that within 2 %. The grid is oblique, so nothing rests on its axes.
    radius = 36.0
    mask, geometry = ellipsoid_case((radius,) * 3, (0.4, 0.4, 0.4), rotation(0, 30.0) @ rotation(2, 15.0))
    shape = shape_measures(mask, geometry)
    assert shape["sphericity"] == pytest.approx(1.0, abs=0.02)
    assert shape["diameter_max_mm"] == pytest.approx(2 * radius, abs=0.4)
    assert shape["surface_area_cm2"] == pytest.approx(4 * math.pi * radius**2 / 100, rel=0.02)
    for diameter, one_voxel in zip(("diameter_lr_mm", "diameter_ap_mm", "diameter_si_mm"), voxel_extent_mm(geometry)):
        assert shape[diameter] == pytest.approx(2 * radius, abs=one_voxel)


def test_lengths_come_from_the_header_spacing_and_nothing_from_the_origin():
    mask, geometry = ellipsoid_case((9.0, 7.0, 5.0), (1.0, 1.0, 1.0), IDENTITY)
    base = shape_measures(mask, geometry)
    moved_and_doubled = Geometry(geometry.size, (2.0, 2.0, 2.0), (500.0, -300.0, 7.0), geometry.direction)
    doubled = shape_measures(mask, moved_and_doubled)
    for length in ("diameter_lr_mm", "diameter_ap_mm", "diameter_si_mm", "diameter_max_mm"):
        assert doubled[length] == pytest.approx(base[length] * 2, rel=1e-9)
    assert doubled["surface_area_cm2"] == pytest.approx(base["surface_area_cm2"] * 4, rel=1e-9)
    assert doubled["volume_ml"] == pytest.approx(base["volume_ml"] * 8, rel=1e-12)
    assert doubled["sphericity"] == pytest.approx(base["sphericity"], rel=1e-9)


def test_empty_mask_and_a_mask_off_its_geometry():
    mask, geometry = box_case(IDENTITY)
    empty = shape_measures(np.zeros_like(mask), geometry)
    assert empty["volume_ml"] == 0.0 and empty["surface_area_cm2"] == 0.0
    assert all(math.isnan(empty[k]) for k in ("diameter_lr_mm", "diameter_max_mm", "sphericity"))
    with pytest.raises(ValueError, match="does not match geometry"):
        shape_measures(mask[:, :, :-1], geometry)


def test_largest_distance_on_known_points_including_flat_ones():
    cube = np.array([[x, y, z] for x in (0, 2) for y in (0, 3) for z in (0, 6)], float)
    assert largest_distance_mm(np.vstack([cube, cube.mean(axis=0)])) == pytest.approx(7.0)  # sqrt(4 + 9 + 36)
    line = np.array([[0, 0, 0], [1, 1, 1], [3, 3, 3], [2, 2, 2], [-1, -1, -1]], float)
    assert largest_distance_mm(line) == pytest.approx(4 * math.sqrt(3))  # no hull: all pairs
    assert math.isnan(largest_distance_mm(np.empty((0, 3))))


def test_shape_table_and_agreement_over_the_scored_patients():
    geometry = Geometry((12, 12, 12), (1.5, 1.5, 2.0), (0.0, 0.0, 0.0), tuple(IDENTITY.ravel()))
    small, large = np.zeros((12, 12, 12), np.uint8), np.zeros((12, 12, 12), np.uint8)
    small[3:8, 3:9, 3:10] = 1
    large[2:9, 3:9, 3:10] = 1  # one more voxel each side along z: SI + 4 mm
    rows = [
        shape_row("p3", large, small, geometry),  # the model was trained on it: left out of the agreement
        shape_row("p1", large, small, geometry),
        shape_row("p2", small, small, geometry),
        shape_row("u1", small, None, geometry),
    ]
    per_patient = pd.DataFrame({"patient": ["p1", "p2", "p3", "u1"], "role": ["test", "test", "train", "unlabelled"]})
    table = shape_table(rows, per_patient)
    assert list(table["patient"]) == ["p1", "p2", "p3", "u1"]
    assert list(table["role"]) == ["test", "test", "train", "unlabelled"]
    assert table.loc[0, "diameter_si_pred_mm"] - table.loc[0, "diameter_si_true_mm"] == pytest.approx(4.0)
    assert table.loc[3, ["diameter_si_true_mm", "sphericity_true"]].isna().all()
    agreement = shape_agreement(table).set_index("measure")
    si = agreement.loc["diameter_si"]
    expected = bland_altman(np.array([14.0, 10.0]), np.array([10.0, 10.0]))  # p1 +4 mm, p2 0
    assert si["n"] == 2 and si["unit"] == "mm"
    assert [si["bias"], si["sd"], si["loa_low"], si["loa_high"]] == pytest.approx(
        [expected["bias_ml"], expected["sd_ml"], expected["loa_low_ml"], expected["loa_high_ml"]]
    )
    assert agreement.loc["diameter_lr", "bias"] == pytest.approx(0.0, abs=1e-9)
    assert set(agreement.index) == {
        "volume", "diameter_lr", "diameter_ap", "diameter_si", "diameter_max", "surface_area", "sphericity"
    }  # fmt: skip
