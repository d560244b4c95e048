"""Surface meshes: enclosed volume against the voxel volume, world placement checked against SimpleITK, files."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from laseg.io import Geometry
from laseg.mesh import (
    SurfaceMesh,
    enclosed_volume_mm3,
    index_to_world_mm,
    read_mesh_ply,
    surface_mesh,
    taubin_smooth,
    write_mesh_ply,
    write_mesh_stl,
)
from laseg.visualize import surface_points_world_mm

# A proper rotation with flips, oblique by 30 degrees about world z after permuting the axes.
_c, _s = np.cos(np.radians(30)), np.sin(np.radians(30))
OBLIQUE = tuple(
    (np.array([[_c, -_s, 0], [_s, _c, 0], [0, 0, 1]]) @ np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]])).ravel()
)
IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
# Determinant -1 (a left-handed voxel grid, as some NIfTI writers produce): the winding must still come out right.
MIRRORED = (-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def sphere_case(radius_mm: float, spacing=(1.25, 1.25, 1.37), direction=IDENTITY, origin=(-60.0, 25.0, 110.0)):
    size = tuple(int(np.ceil(2 * radius_mm / s)) + 8 for s in spacing)
    geometry = Geometry(size=size, spacing_mm=spacing, origin_mm=origin, direction=direction)
    z, y, x = np.indices(tuple(reversed(size)), dtype=float)
    centre = [(n - 1) / 2 for n in reversed(size)]
    spacing_zyx = list(reversed(spacing))
    inside = sum(((a - c) * s) ** 2 for a, c, s in zip((z, y, x), centre, spacing_zyx)) <= radius_mm**2
    return inside.astype(np.uint8), geometry


def world_box(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """The scan's world bounding box: the outer corners of its corner voxels, from SimpleITK."""
    image = geometry.apply_to(sitk.Image(list(geometry.size), sitk.sitkUInt8))
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint((cx, cy, cz))
            for cx in (-0.5, geometry.size[0] - 0.5)
            for cy in (-0.5, geometry.size[1] - 0.5)
            for cz in (-0.5, geometry.size[2] - 0.5)
        ]
    )
    return corners.min(axis=0), corners.max(axis=0)


@pytest.mark.parametrize("direction", [IDENTITY, OBLIQUE, MIRRORED], ids=["identity", "oblique", "mirrored"])
@pytest.mark.parametrize("smoothing", [0, 10])
def test_sphere_mesh_encloses_the_voxel_volume_within_3_percent(direction, smoothing):
    mask, geometry = sphere_case(radius_mm=20.0, direction=direction)
    mesh = surface_mesh(mask, geometry, smoothing_iterations=smoothing)
    voxel_mm3 = int(mask.sum()) * geometry.voxel_volume_mm3
    enclosed = enclosed_volume_mm3(mesh)
    assert enclosed > 0  # faces wind outwards whatever the direction's handedness
    assert enclosed == pytest.approx(voxel_mm3, rel=0.03)
    # And a sphere's mesh is round: every vertex near 20 mm from the centre.
    centre = index_to_world_mm(np.array([[(n - 1) / 2 for n in reversed(geometry.size)]]), geometry)[0]
    radii = np.linalg.norm(mesh.vertices_mm - centre, axis=1)
    assert np.abs(radii - 20.0).max() < 1.5


def test_mesh_and_point_cloud_lie_inside_the_scans_world_box_and_on_the_object():
    mask, geometry = sphere_case(radius_mm=12.0, spacing=(0.9, 1.4, 2.2), direction=OBLIQUE)
    low, high = world_box(geometry)
    mesh = surface_mesh(mask, geometry)
    points = surface_points_world_mm(mask, geometry)
    for coordinates in (mesh.vertices_mm, points):
        assert len(coordinates) > 100
        assert (coordinates >= low - 1e-6).all() and (coordinates <= high + 1e-6).all()
    # The mesh centroid is the sphere centre that SimpleITK places in the world.
    image = geometry.apply_to(sitk.Image(list(geometry.size), sitk.sitkUInt8))
    centre = image.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in geometry.size])
    np.testing.assert_allclose(mesh.vertices_mm.mean(axis=0), centre, atol=0.6)
    np.testing.assert_allclose(points.mean(axis=0), centre, atol=0.6)


def test_index_to_world_matches_simpleitk():
    geometry = Geometry(size=(7, 9, 11), spacing_mm=(0.7, 1.3, 2.1), origin_mm=(5.0, -3.0, 2.0), direction=OBLIQUE)
    image = geometry.apply_to(sitk.Image(list(geometry.size), sitk.sitkUInt8))
    index_zyx = np.random.default_rng(0).uniform(-0.5, 6.5, size=(20, 3))
    expected = [image.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in i[::-1])) for i in index_zyx]
    np.testing.assert_allclose(index_to_world_mm(index_zyx, geometry), expected, atol=1e-9)


def test_mask_touching_the_scan_edge_still_gives_a_closed_surface():
    import open3d as o3d  # a hard dependency: imported, never skipped

    geometry = Geometry(size=(6, 5, 4), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    mesh = surface_mesh(np.ones((4, 5, 6), dtype=np.uint8), geometry, smoothing_iterations=0)
    triangle_mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices_mm), o3d.utility.Vector3iVector(mesh.faces)
    )
    assert triangle_mesh.is_watertight()
    # The level-0.5 surface of a full block cuts its edges and corners: between the inner and outer box.
    assert 3 * 4 * 5 < enclosed_volume_mm3(mesh) < 4 * 5 * 6


def test_smoothed_surface_of_a_mask_cut_by_the_scan_edge_stays_inside_the_scan():
    # A vessel running out of the first and last slice, as pulmonary veins leave a small field of view:
    # smoothing pulls its open ends outwards, beyond the scan, unless they are held on its edge.
    # (Axis-aligned, so that the world box is tight along the vessel; an oblique box would hide an overshoot.)
    geometry = Geometry(
        size=(40, 40, 20), spacing_mm=(1.25, 1.25, 1.37), origin_mm=(-20.0, 5.0, 60.0), direction=MIRRORED
    )
    _, y, x = np.indices((20, 40, 40))
    vessel = ((x - 20) ** 2 + (y - 20) ** 2 <= 4).astype(np.uint8)
    low, high = world_box(geometry)
    for smoothing in (0, 10, 50):
        mesh = surface_mesh(vessel, geometry, smoothing_iterations=smoothing)
        assert (mesh.vertices_mm >= low - 1e-9).all() and (mesh.vertices_mm <= high + 1e-9).all(), smoothing
        assert enclosed_volume_mm3(mesh) == pytest.approx(int(vessel.sum()) * geometry.voxel_volume_mm3, rel=0.1)


def test_empty_mask_gives_an_empty_mesh_and_files_that_read_back(tmp_path):
    import open3d as o3d  # a hard dependency: imported, never skipped

    geometry = Geometry(size=(5, 5, 5), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    mesh = surface_mesh(np.zeros((5, 5, 5), dtype=np.uint8), geometry)
    assert mesh.n_triangles == 0 and enclosed_volume_mm3(mesh) == 0.0
    write_mesh_ply(mesh, (0.1, 0.8, 0.2), tmp_path / "empty.ply")
    write_mesh_stl(mesh, tmp_path / "empty.stl")
    assert read_mesh_ply(tmp_path / "empty.ply").n_triangles == 0
    assert (tmp_path / "empty.stl").stat().st_size == 84
    assert len(o3d.io.read_triangle_mesh(str(tmp_path / "empty.ply")).triangles) == 0


def test_ply_and_stl_round_trip_through_open3d_in_world_mm(tmp_path):
    import open3d as o3d  # a hard dependency: imported, never skipped

    mask, geometry = sphere_case(radius_mm=10.0, direction=OBLIQUE)
    mesh = surface_mesh(mask, geometry)
    write_mesh_ply(mesh, (0.1, 0.8, 0.2), tmp_path / "la_pred.ply")
    write_mesh_stl(mesh, tmp_path / "la_pred.stl")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["la_pred.ply", "la_pred.stl"]  # no temporaries left

    header = (tmp_path / "la_pred.ply").read_bytes()[:400]
    assert b"comment SPACE=LPS\n" in header  # 3D Slicer reads the coordinate system from this comment
    assert b"SPACE=LPS" in (tmp_path / "la_pred.stl").read_bytes()[:80]

    ply = o3d.io.read_triangle_mesh(str(tmp_path / "la_pred.ply"))
    np.testing.assert_allclose(np.asarray(ply.vertices), mesh.vertices_mm, atol=1e-4)  # float32 in the file
    np.testing.assert_array_equal(np.asarray(ply.triangles), mesh.faces)
    np.testing.assert_allclose(
        np.asarray(ply.vertex_colors),
        np.tile(np.round(np.array([0.1, 0.8, 0.2]) * 255) / 255, (len(mesh.vertices_mm), 1)),
    )
    back = read_mesh_ply(tmp_path / "la_pred.ply")
    assert enclosed_volume_mm3(back) == pytest.approx(enclosed_volume_mm3(mesh), rel=1e-5)

    stl = o3d.io.read_triangle_mesh(str(tmp_path / "la_pred.stl"))
    assert len(stl.triangles) == mesh.n_triangles
    stl_mesh = SurfaceMesh(np.asarray(stl.vertices), np.asarray(stl.triangles))
    assert enclosed_volume_mm3(stl_mesh) == pytest.approx(enclosed_volume_mm3(mesh), rel=1e-5)
    # Stored facet normals point outwards: away from the centre for a sphere.
    facets = np.frombuffer(
        (tmp_path / "la_pred.stl").read_bytes()[84:], dtype=[("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]
    )
    outward = facets["v"].mean(axis=1) - mesh.vertices_mm.mean(axis=0)
    assert (np.einsum("ij,ij->i", facets["n"], outward) > 0).mean() > 0.99


def test_taubin_smoothing_flattens_noise_without_shrinking():
    mask, geometry = sphere_case(radius_mm=15.0, spacing=(1.0, 1.0, 1.0))
    raw = surface_mesh(mask, geometry, smoothing_iterations=0)
    noisy = raw.vertices_mm + np.random.default_rng(1).normal(scale=0.3, size=raw.vertices_mm.shape)
    smoothed = taubin_smooth(noisy, raw.faces, iterations=20)
    centre = raw.vertices_mm.mean(axis=0)
    spread_before = np.linalg.norm(noisy - centre, axis=1).std()
    spread_after = np.linalg.norm(smoothed - centre, axis=1).std()
    assert spread_after < 0.6 * spread_before
    volume = enclosed_volume_mm3(SurfaceMesh(smoothed, raw.faces))
    assert volume == pytest.approx(enclosed_volume_mm3(raw), rel=0.03)


def test_mesh_rejects_a_mask_off_the_geometry():
    geometry = Geometry(size=(3, 4, 5), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    with pytest.raises(ValueError, match="geometry"):
        surface_mesh(np.zeros((3, 4, 5)), geometry)
