"""Overlay frames, the H.264 video and point clouds, with world coordinates checked against SimpleITK."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest
import SimpleITK as sitk

from laseg.colours import PREDICTION_RGB as PREDICTION_FLOAT_RGB
from laseg.colours import REFERENCE_RGB, rgb8
from laseg.io import Geometry, canonical_spacing_zyx_mm, to_canonical
from laseg.visualize import (
    count_video_frames,
    overlay_frames,
    surface_points_world_mm,
    write_overlay_video,
    write_point_cloud,
)

# The colours the brief asks for, spelt out rather than imported, so a changed constant is caught.
TRUTH_RGB = rgb8(REFERENCE_RGB)
PREDICTION_RGB = rgb8(PREDICTION_FLOAT_RGB)

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
FLIP_XY = (-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0)
# A proper rotation that permutes and flips axes: world x = -index z, world y = -index x, world z = index y.
PERMUTED = (0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def geometry(size, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=IDENTITY) -> Geometry:
    return Geometry(size=size, spacing_mm=spacing, origin_mm=origin, direction=direction)


def scan(shape_zyx, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 1000, size=shape_zyx).astype(np.int16)


def pixels_of(frame: np.ndarray, rgb) -> np.ndarray:
    return np.all(frame == np.array(rgb, dtype=np.uint8), axis=2)


def test_frames_one_per_slice_square_mm_pixels_even_size():
    # 30 x 20 voxels of 1.0 x 2.0 mm: 30 mm wide, 40 mm tall.
    g = geometry(size=(30, 20, 5), spacing=(1.0, 2.0, 3.0))
    image = scan((5, 20, 30))
    pred = np.zeros((5, 20, 30), dtype=np.uint8)
    frames = overlay_frames(image, pred, None, g, max_size_px=101)
    assert len(frames) == 5
    height, width = frames[0].shape[:2]
    assert height % 2 == 0 and width % 2 == 0
    assert max(height, width) <= 101
    assert height / width == pytest.approx(40 / 30, rel=0.03)
    assert all(f.dtype == np.uint8 and f.shape == (height, width, 3) for f in frames)


def test_contours_are_drawn_in_their_colours_on_their_slices():
    g = geometry(size=(40, 40, 4))
    image = scan((4, 40, 40))
    truth = np.zeros((4, 40, 40), dtype=np.uint8)
    pred = np.zeros((4, 40, 40), dtype=np.uint8)
    truth[1:3, 20:35, 5:18] = 1
    pred[2:4, 22:36, 24:38] = 1
    frames = overlay_frames(image, pred, truth, g, max_size_px=200)
    half = frames[0].shape[0] // 2
    for k, frame in enumerate(frames):
        # Contours live in the bottom half; the legend (also red and green text) in the top one.
        bottom = frame[half:]
        assert pixels_of(bottom, TRUTH_RGB).any() == (k in (1, 2)), k
        assert pixels_of(bottom, PREDICTION_RGB).any() == (k in (2, 3)), k
    # Red only on the left (truth), green only on the right (prediction).
    bottom = frames[2][half:]
    red_columns = np.flatnonzero(pixels_of(bottom, TRUTH_RGB).any(axis=0))
    green_columns = np.flatnonzero(pixels_of(bottom, PREDICTION_RGB).any(axis=0))
    assert red_columns.max() < green_columns.min()


def test_without_reference_no_red_contour():
    g = geometry(size=(40, 40, 2))
    truth_free = overlay_frames(scan((2, 40, 40)), np.ones((2, 40, 40), dtype=np.uint8), None, g, max_size_px=200)
    assert not any(pixels_of(f, TRUTH_RGB).any() for f in truth_free)


def test_frames_follow_the_canonical_orientation():
    # A prediction in array row 0..5, columns 30..40 (top right of the raw array). With the
    # direction flipping x and y the canonical view shows it bottom left.
    image = scan((2, 40, 40))
    pred = np.zeros((2, 40, 40), dtype=np.uint8)
    pred[:, 0:6, 30:40] = 1
    for direction, expect_bottom_left in ((IDENTITY, False), (FLIP_XY, True)):
        frame = overlay_frames(image, pred, None, geometry((40, 40, 2), direction=direction), max_size_px=256)[0]
        green = pixels_of(frame, PREDICTION_RGB)
        half = frame.shape[0] // 2
        assert green[half:, :half].any() == expect_bottom_left
        assert green[:half, half:].any() == (not expect_bottom_left)


def test_canonical_spacing_follows_a_permuted_direction():
    g = geometry(size=(4, 5, 6), spacing=(3.0, 1.0, 2.0), direction=PERMUTED)
    # world z (canonical axis 0) is index y; world y is index x; world x is index z.
    assert canonical_spacing_zyx_mm(g) == (1.0, 3.0, 2.0)
    image = scan((6, 5, 4))
    assert to_canonical(image, g).shape == (5, 4, 6)
    assert len(overlay_frames(image, np.zeros_like(image), None, g, max_size_px=64)) == 5


def test_shape_mismatch_is_an_error():
    g = geometry(size=(10, 10, 3))
    with pytest.raises(ValueError, match="prediction"):
        overlay_frames(scan((3, 10, 10)), np.zeros((3, 10, 11), dtype=np.uint8), None, g)


def test_video_round_trip_h264_even_size(tmp_path):
    g = geometry(size=(30, 20, 7), spacing=(1.0, 1.5, 2.0))
    image = scan((7, 20, 30))
    pred = np.zeros((7, 20, 30), dtype=np.uint8)
    pred[2:5, 5:15, 5:25] = 1
    frames = overlay_frames(image, pred, pred, g, max_size_px=97)
    path = tmp_path / "overlays" / "la_001.mp4"
    write_overlay_video(frames, path, fps=5)
    assert count_video_frames(path) == 7
    meta = imageio.get_reader(path).get_meta_data()
    assert meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    width, height = meta["size"]
    assert width % 2 == 0 and height % 2 == 0
    assert (height, width) == frames[0].shape[:2]
    assert [p.name for p in path.parent.iterdir()] == ["la_001.mp4"]  # no temporary left behind


def test_video_rejects_odd_or_missing_frames(tmp_path):
    with pytest.raises(ValueError, match="even"):
        write_overlay_video([np.zeros((11, 12, 3), dtype=np.uint8)], tmp_path / "odd.mp4")
    with pytest.raises(ValueError, match="no frames"):
        write_overlay_video([], tmp_path / "none.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("direction", [FLIP_XY, PERMUTED], ids=["flip-xy", "permuted"])
def test_surface_points_match_simpleitk_physical_points(direction):
    g = geometry(size=(12, 10, 8), spacing=(0.7, 1.3, 2.1), origin=(-40.5, 12.25, 100.0), direction=direction)
    mask = np.zeros((8, 10, 12), dtype=np.uint8)
    mask[2:6, 3:8, 4:11] = 1  # 4 x 5 x 7 box
    points = surface_points_world_mm(mask, g)
    assert points.shape == (4 * 5 * 7 - 2 * 3 * 5, 3)

    image = g.apply_to(sitk.GetImageFromArray(mask))
    boundary = mask.copy()
    boundary[3:5, 4:7, 5:10] = 0
    expected = np.array(
        [image.TransformIndexToPhysicalPoint((int(x), int(y), int(z))) for z, y, x in np.argwhere(boundary)]
    )
    np.testing.assert_allclose(points, expected, atol=1e-9)  # same voxels, same order

    # All points lie inside the world bounding box of the scan (its voxels' outer corners).
    corners = np.array(
        [
            image.TransformContinuousIndexToPhysicalPoint((cx, cy, cz))
            for cx in (-0.5, g.size[0] - 0.5)
            for cy in (-0.5, g.size[1] - 0.5)
            for cz in (-0.5, g.size[2] - 0.5)
        ]
    )
    assert np.all(points >= corners.min(axis=0)) and np.all(points <= corners.max(axis=0))


def test_surface_points_include_voxels_on_the_array_edge():
    # A mask filling the scan: its outer shell is its surface (outside the array is background).
    points = surface_points_world_mm(np.ones((4, 5, 6), dtype=np.uint8), geometry(size=(6, 5, 4)))
    assert len(points) == 4 * 5 * 6 - 2 * 3 * 4


def test_surface_points_reject_a_mask_off_the_geometry():
    with pytest.raises(ValueError, match="geometry"):
        surface_points_world_mm(np.zeros((3, 4, 5)), geometry(size=(3, 4, 5)))


def test_point_cloud_round_trip(tmp_path):
    import open3d as o3d  # a hard dependency: imported, never skipped

    rng = np.random.default_rng(3)
    points = rng.normal(size=(500, 3)) * 20 + np.array([-30.0, 10.0, 80.0])
    path = tmp_path / "la_001.pred.ply"
    write_point_cloud(points, (0.0, 1.0, 0.0), path)
    cloud = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(cloud.points), points)
    np.testing.assert_allclose(np.asarray(cloud.colors), np.tile([0.0, 1.0, 0.0], (500, 1)))
    assert cloud.has_normals()
    assert [p.name for p in tmp_path.iterdir()] == ["la_001.pred.ply"]


def test_point_cloud_of_a_real_mask_in_red(tmp_path):
    import open3d as o3d  # a hard dependency: imported, never skipped

    g = geometry(size=(12, 10, 8), spacing=(0.7, 1.3, 2.1), origin=(5.0, -3.0, 2.0), direction=PERMUTED)
    mask = np.zeros((8, 10, 12), dtype=np.uint8)
    mask[1:7, 2:9, 3:11] = 1
    points = surface_points_world_mm(mask, g)
    write_point_cloud(points, (1.0, 0.0, 0.0), tmp_path / "truth.ply")
    cloud = o3d.io.read_point_cloud(str(tmp_path / "truth.ply"))
    assert len(cloud.points) == len(points) == 6 * 7 * 8 - 4 * 5 * 6
    assert np.all(np.asarray(cloud.colors) == [1.0, 0.0, 0.0])


def test_empty_point_cloud_still_writes_a_readable_file(tmp_path):
    import open3d as o3d  # a hard dependency: imported, never skipped

    path = tmp_path / "empty.ply"
    write_point_cloud(np.empty((0, 3)), (0.0, 1.0, 0.0), path)
    header = path.read_bytes()
    assert header.startswith(b"ply\n") and b"element vertex 0\n" in header and header.endswith(b"end_header\n")
    assert len(o3d.io.read_point_cloud(str(path)).points) == 0


def test_point_cloud_colour_must_be_in_unit_range(tmp_path):
    with pytest.raises(ValueError, match="colour"):
        write_point_cloud(np.zeros((4, 3)), (0, 255, 0), tmp_path / "bad.ply")
    assert list(tmp_path.iterdir()) == []
