"""Size and shape of the LA from a mask in world millimetres: diameters along the patient's axes, maximal
diameter, surface area and sphericity, and their agreement with the reference label's.

Every length comes from the mask's header (spacing, origin, direction), so an oblique or anisotropic scan
gives the numbers of the same atrium scanned axially at 1 mm. World axes are ITK's LPS: x from the
patient's right to left (medio-lateral for the atrium, LR), y from anterior to posterior (AP), z from
inferior to superior (SI).

Conventions:
- Axis diameters (LR, AP, SI): the extent along world x, y, z of the mask's voxels, each voxel the
  parallelepiped its spacing and direction span: the extent of the voxel centres' world coordinates plus one
  voxel's projection on that axis, sum_i |direction[axis, i]| * spacing_i. An axis-aligned box of n voxels
  of spacing s measures exactly n * s; a smooth object is within one projected voxel of its true extent
  (on an oblique grid centres reach nearer the true edge, so the error there leans high).
- Maximal diameter (Dmax): the largest distance between two points of the LA surface `laseg.mesh.surface_mesh`
  builds (the smoothed marching-cubes surface at the 0.5 level, halfway between inside and outside voxel
  centres: the surface of results/meshes), over the vertices of its convex hull, where the farthest pair lies.
- Surface area: the summed area of that surface's triangles.
- Sphericity = V / (pi / 6 * Dmax^3): the mask's volume (voxel count times voxel volume) over that of the
  sphere whose diameter is Dmax. A sphere gives 1, an ellipsoid with semi-axes a >= b >= c gives b c / a^2,
  an elongated or irregular atrium less.
Discretisation: each diameter is within about one voxel of the smooth object's. Dmax, a maximum over every
direction, picks the surface's outermost staircase bump and so runs high by about 0.5-1 voxel (a sphere 150
voxels across: +0.6 %), and sphericity about three times that relative amount low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from scipy.spatial.distance import cdist

from laseg.io import Geometry
from laseg.mesh import SurfaceMesh, index_to_world_mm, surface_mesh
from laseg.metrics import scored_rows
from laseg.plots import bland_altman

# (quantity, unit) of every measure; a column is f"{quantity}_{pred|true}_{unit}" as in per_patient.csv
# (volume_pred_ml), sphericity has no unit.
SHAPE_MEASURES = (
    ("volume", "ml"),
    ("diameter_lr", "mm"),
    ("diameter_ap", "mm"),
    ("diameter_si", "mm"),
    ("diameter_max", "mm"),
    ("surface_area", "cm2"),
    ("sphericity", ""),
)
_ROWS_PER_DISTANCE_BLOCK = 512  # bounds the pairwise distances held at once to 512 x hull vertices


def shape_column(quantity: str, unit: str, which: str) -> str:
    """The table column of one measure of the prediction ("pred") or the reference ("true")."""
    return f"{quantity}_{which}_{unit}" if unit else f"{quantity}_{which}"


def voxel_extent_mm(geometry: Geometry) -> np.ndarray:
    """(3,) the length of one voxel's projection on world x, y, z, mm: sum_i |direction[axis, i]| * spacing_i."""
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    return np.abs(direction) @ np.asarray(geometry.spacing_mm, dtype=float)


def axis_diameters_mm(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(3,) the extent of the mask's voxels along world x, y, z (LR, AP, SI), mm; NaN for an empty mask."""
    foreground = np.asarray(mask) != 0
    if not foreground.any():
        return np.full(3, math.nan)
    # Only voxels on the rim can be extreme along an axis; the interior is most of the count.
    rim = foreground & ~ndimage.binary_erosion(foreground)
    centres_mm = index_to_world_mm(np.argwhere(rim), geometry)
    return centres_mm.max(axis=0) - centres_mm.min(axis=0) + voxel_extent_mm(geometry)


def largest_distance_mm(points_mm: np.ndarray) -> float:
    """The largest distance between two of the points (N, 3), mm; NaN without points. Only the vertices of
    their convex hull can be the farthest pair; points that span no volume (Qhull needs 3D) are all tried."""
    points = np.asarray(points_mm, dtype=float)
    if len(points) == 0:
        return math.nan
    if len(points) >= 4:
        try:
            points = points[ConvexHull(points).vertices]
        except QhullError:
            pass
    largest = 0.0
    for start in range(0, len(points), _ROWS_PER_DISTANCE_BLOCK):
        largest = max(largest, float(cdist(points[start : start + _ROWS_PER_DISTANCE_BLOCK], points).max()))
    return largest


def surface_area_mm2(mesh: SurfaceMesh) -> float:
    """Summed triangle area of a surface, mm^2."""
    if mesh.n_triangles == 0:
        return 0.0
    v0, v1, v2 = (mesh.vertices_mm[mesh.faces[:, i]] for i in range(3))
    return float(np.linalg.norm(np.cross(v1 - v0, v2 - v0), axis=1).sum() / 2.0)


def sphericity(volume_mm3: float, diameter_max_mm: float) -> float:
    """V / (pi / 6 * Dmax^3): the volume over that of the sphere of the maximal diameter (1 for a sphere)."""
    if not diameter_max_mm > 0:
        return math.nan
    return volume_mm3 / (math.pi / 6.0 * diameter_max_mm**3)


def shape_measures(mask: np.ndarray, geometry: Geometry, smoothing_iterations: int = 10) -> dict[str, float]:
    """Every measure of SHAPE_MEASURES of one mask on its own grid, keyed f"{quantity}_{unit}" (volume_ml,
    sphericity); an empty mask has volume and area 0, the rest NaN.

    `smoothing_iterations` is the mesh's Taubin smoothing (config mesh.smoothing_iterations), so that Dmax
    and the area are those of the surface in results/meshes.
    """
    mesh = surface_mesh(mask, geometry, smoothing_iterations)  # checks the mask against the geometry
    volume_mm3 = float(np.count_nonzero(mask)) * geometry.voxel_volume_mm3
    lr, ap, si = axis_diameters_mm(mask, geometry)
    diameter_max = largest_distance_mm(mesh.vertices_mm)
    return {
        "volume_ml": volume_mm3 / 1000.0,
        "diameter_lr_mm": float(lr),
        "diameter_ap_mm": float(ap),
        "diameter_si_mm": float(si),
        "diameter_max_mm": diameter_max,
        "surface_area_cm2": surface_area_mm2(mesh) / 100.0,
        "sphericity": sphericity(volume_mm3, diameter_max),
    }


def shape_row(
    patient: str, pred: np.ndarray, truth: np.ndarray | None, geometry: Geometry, smoothing_iterations: int = 10
) -> dict[str, float | str]:
    """One patient's measures of the prediction and (NaN without a label) of the reference, on one grid."""
    row: dict[str, float | str] = {"patient": patient}
    for which, mask in (("pred", pred), ("true", truth)):
        measures = shape_measures(mask, geometry, smoothing_iterations) if mask is not None else {}
        for quantity, unit in SHAPE_MEASURES:
            key = f"{quantity}_{unit}" if unit else quantity
            row[shape_column(quantity, unit, which)] = measures.get(key, math.nan)
    return row


def shape_table(rows: Iterable[dict], per_patient: pd.DataFrame) -> pd.DataFrame:
    """The per-patient shape table (la_shape.csv), sorted, each patient with its role from per_patient.csv."""
    columns = ["patient"] + [shape_column(q, u, w) for w in ("pred", "true") for q, u in SHAPE_MEASURES]
    table = pd.DataFrame(list(rows), columns=columns)
    roles = per_patient.set_index("patient")["role"] if "role" in per_patient else pd.Series(dtype=str)
    table.insert(1, "role", [roles.get(p, "") for p in table["patient"]])
    return table.sort_values("patient").reset_index(drop=True)


def shape_agreement(table: pd.DataFrame) -> pd.DataFrame:
    """Predicted against reference over the scored patients with both values, one row per measure: n, bias
    (mean of predicted - reference), sample SD of the differences, 95 % limits of agreement (bias +- 1.96 SD,
    as for the volume: `laseg.plots.bland_altman`), mean absolute and mean relative difference."""
    scored = scored_rows(table)
    rows = []
    for quantity, unit in SHAPE_MEASURES:
        pred, true = shape_column(quantity, unit, "pred"), shape_column(quantity, unit, "true")
        both = scored.dropna(subset=[pred, true])
        stats = bland_altman(both[pred].to_numpy(float), both[true].to_numpy(float))
        # bland_altman names its numbers for volumes in mL; the arithmetic holds for any unit.
        rows.append({"measure": quantity, "unit": unit, **{k.removesuffix("_ml"): v for k, v in stats.items()}})
    return pd.DataFrame(rows)
