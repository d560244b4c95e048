"""Geometry survives every read, reorientation and write exactly; writes are atomic."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from laseg.io import Geometry, atomic_path, from_canonical, read_volume, to_canonical, write_volume

DIRECTIONS = {
    "identity": (1, 0, 0, 0, 1, 0, 0, 0, 1),
    "RAS": (-1, 0, 0, 0, -1, 0, 0, 0, 1),
    "permuted": (0, 1, 0, -1, 0, 0, 0, 0, 1),
    "oblique": tuple(np.array(sitk.VersorTransform((0.1, 0.2, 0.3), 0.4).GetMatrix()).tolist()),
}


@pytest.mark.parametrize("name", DIRECTIONS)
def test_write_read_keeps_array_and_geometry(tmp_path, name):
    geometry = Geometry((7, 6, 5), (1.25, 1.5, 2.0), (-40.0, 12.5, 3.0), tuple(float(v) for v in DIRECTIONS[name]))
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    write_volume(array, geometry, tmp_path / "v.nii.gz")
    back, back_geometry = read_volume(tmp_path / "v.nii.gz")
    assert np.array_equal(back, array)
    assert back_geometry.matches(geometry, tolerance=1e-6)


@pytest.mark.parametrize("name", DIRECTIONS)
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


def test_atomic_path_leaves_no_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
