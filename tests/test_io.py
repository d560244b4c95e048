"""Geometry survives every read, reorientation and write exactly; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from laseg.io import (
    Geometry,
    atomic_path,
    from_canonical,
    obliquity_degrees,
    read_volume,
    to_canonical,
    world_aligned_geometry,
    write_volume,
)
from laseg.masks import dice

DIRECTIONS = {
    "identity": (1, 0, 0, 0, 1, 0, 0, 0, 1),
    "RAS": (-1, 0, 0, 0, -1, 0, 0, 0, 1),
    "permuted": (0, 1, 0, -1, 0, 0, 0, 0, 1),
    "nearly axial": tuple(np.array(sitk.VersorTransform((0.3, 0.2, 0.1), 0.03).GetMatrix()).tolist()),
    "oblique": tuple(np.array(sitk.VersorTransform((0.1, 0.2, 0.3), 0.4).GetMatrix()).tolist()),
}
# Flips and swaps only, every voxel's value kept: all but a scan oblique beyond OBLIQUE_RESAMPLE_DEGREES.
NOT_RESAMPLED = [name for name in DIRECTIONS if name != "oblique"]


@pytest.mark.parametrize("name", DIRECTIONS)
def test_write_read_keeps_array_and_geometry(tmp_path, name):
    geometry = Geometry((7, 6, 5), (1.25, 1.5, 2.0), (-40.0, 12.5, 3.0), tuple(float(v) for v in DIRECTIONS[name]))
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    write_volume(array, geometry, tmp_path / "v.nii.gz")
    back, back_geometry = read_volume(tmp_path / "v.nii.gz")
    assert np.array_equal(back, array)
    assert back_geometry.matches(geometry, tolerance=1e-6)


@pytest.mark.parametrize("name", NOT_RESAMPLED)
def test_canonical_round_trip_is_exact(name):
    geometry = Geometry((7, 6, 5), (1.0, 2.0, 3.0), (0.0, 0.0, 0.0), tuple(float(v) for v in DIRECTIONS[name]))
    array = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    canonical = to_canonical(array, geometry)
    assert sorted(canonical.shape) == sorted(array.shape)
    assert np.array_equal(from_canonical(canonical, geometry), array)


def test_canonical_view_puts_superior_slices_last_for_RAS_and_LPS_alike():
    # The same world-space volume stored two ways must look identical once canonical.
    array = np.random.default_rng(1).random((4, 5, 6)).astype(np.float32)
    lps = Geometry((6, 5, 4), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), DIRECTIONS["identity"])
    ras = Geometry((6, 5, 4), (1.0, 1.0, 1.0), (5.0, 4.0, 0.0), DIRECTIONS["RAS"])
    assert np.array_equal(to_canonical(array, lps), to_canonical(array[:, ::-1, ::-1], ras))


def test_obliquity_is_the_largest_angle_of_a_voxel_axis_to_the_world():
    assert obliquity_degrees(Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0), DIRECTIONS["permuted"])) == 0.0
    turned = sitk.VersorTransform((0.0, 0.0, 1.0), np.radians(30)).GetMatrix()  # 30 deg about the head-foot axis
    assert obliquity_degrees(Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0), turned)) == pytest.approx(30.0)
    assert obliquity_degrees(Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0), DIRECTIONS["nearly axial"])) < 2.0


def ellipsoid_on(geometry: Geometry) -> np.ndarray:
    """A world-space ellipsoid (semi-axes 12, 8, 5 mm along x, y, z, centre (3, -2, 4) mm) sampled on `geometry`'s
    voxel centres, (z, y, x) uint8."""
    x, y, z = np.meshgrid(*(np.arange(n) for n in geometry.size), indexing="ij")
    index_mm = np.stack([x, y, z], -1) * np.asarray(geometry.spacing_mm)
    world = np.asarray(geometry.origin_mm) + index_mm @ np.asarray(geometry.direction).reshape(3, 3).T
    inside = (((world - (3.0, -2.0, 4.0)) / (12.0, 8.0, 5.0)) ** 2).sum(-1) <= 1.0
    return inside.transpose(2, 1, 0).astype(np.uint8)


def test_an_oblique_scan_reaches_the_canonical_view_on_the_world_axes():
    # A scan planned 35 deg off the body's axes: flipped and swapped only, the ellipsoid would stay turned by 35 deg;
    # resampled, it lies as it does in the world, and goes back onto the scan's own grid.
    turned = sitk.VersorTransform((0.2, 0.3, 1.0), np.radians(35)).GetMatrix()
    oblique = Geometry((40, 36, 30), (0.9, 1.0, 1.1), (-15.0, -20.0, -10.0), turned)
    source = ellipsoid_on(oblique)
    canonical = to_canonical(source, oblique, mask=True)
    aligned = world_aligned_geometry(oblique)
    assert canonical.shape == tuple(reversed(aligned.size))
    assert dice(canonical, ellipsoid_on(aligned)) > 0.9
    back = from_canonical(canonical, oblique, mask=True)
    assert back.shape == source.shape and back.dtype == source.dtype
    assert dice(back, source) > 0.9
    image = to_canonical(source.astype(np.float32) * 100 + 20, oblique)
    assert image.min() == pytest.approx(20.0) and image.max() == pytest.approx(120.0)


def test_atomic_path_leaves_no_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]


def test_a_header_claiming_more_data_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    import laseg.integrity
    from laseg.io import InputError, count_nonfinite_voxels

    path = tmp_path / "v.nii.gz"
    write_volume(
        np.ones((5, 6, 7), np.float32), Geometry((7, 6, 5), (1, 1, 1), (0, 0, 0), DIRECTIONS["identity"]), path
    )
    assert count_nonfinite_voxels(path) == 0
    monkeypatch.setattr(laseg.integrity, "available_memory_bytes", lambda: 100)
    for read in (read_volume, count_nonfinite_voxels):
        with pytest.raises(InputError, match=r"v\.nii\.gz: header claims 840 bytes of voxel data, more than the 100"):
            read(path)


def test_a_truncated_float_nifti_is_named_by_the_nan_count_too(tmp_path):
    from laseg.io import InputError, count_nonfinite_voxels

    path = tmp_path / "v.nii"
    write_volume(
        np.ones((5, 6, 7), np.float32), Geometry((7, 6, 5), (1, 1, 1), (0, 0, 0), DIRECTIONS["identity"]), path
    )
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"v\.nii: truncated: header promises 1192 bytes \(352 \+ 7x6x5 x 4\)"):
        count_nonfinite_voxels(path)
