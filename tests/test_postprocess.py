"""Post-processing on tiny synthetic probability maps with known right answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from laseg.postprocess import PostprocessSettings, ball_structure, postprocess_mask

ISOTROPIC = (1.0, 1.0, 1.0)
ONLY_THRESHOLD = PostprocessSettings(largest_component=False, fill_holes=False)


def cube(shape, start, stop) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    mask[tuple(slice(a, b) for a, b in zip(start, stop))] = 1
    return mask


def test_threshold_is_inclusive_and_respected():
    probability = np.zeros((4, 4, 4), dtype=np.float32)
    probability[0] = 0.3
    probability[1] = 0.5
    probability[2] = 0.7
    at_half = postprocess_mask(probability, ISOTROPIC, ONLY_THRESHOLD)
    assert at_half.dtype == np.uint8
    assert at_half.shape == probability.shape
    assert set(np.unique(at_half)) == {0, 1}
    assert at_half[1:3].all() and not at_half[0].any() and not at_half[3].any()
    higher = PostprocessSettings(threshold=0.6, largest_component=False, fill_holes=False)
    high = postprocess_mask(probability, ISOTROPIC, higher)
    assert high[2].all() and high.sum() == 16


def test_empty_prediction_gives_empty_mask():
    for probability in (np.zeros((6, 7, 8), dtype=np.float32), np.full((6, 7, 8), 0.2, dtype=np.float32)):
        for settings in (PostprocessSettings(), PostprocessSettings(closing_radius_mm=2.0)):
            mask = postprocess_mask(probability, ISOTROPIC, settings)
            assert mask.shape == (6, 7, 8) and mask.dtype == np.uint8 and not mask.any()


def test_largest_component_removes_a_small_separate_blob():
    big = cube((20, 20, 20), (2, 2, 2), (10, 10, 10))
    blob = cube((20, 20, 20), (14, 14, 14), (16, 16, 16))
    probability = (big | blob).astype(np.float32)
    kept = postprocess_mask(probability, ISOTROPIC, PostprocessSettings())
    np.testing.assert_array_equal(kept, big)
    without = postprocess_mask(probability, ISOTROPIC, PostprocessSettings(largest_component=False))
    np.testing.assert_array_equal(without, big | blob)


def test_a_corner_touching_piece_belongs_to_the_component():
    # 26-connectivity: a piece meeting the main body only at a corner is kept.
    big = cube((20, 20, 20), (2, 2, 2), (10, 10, 10))
    diagonal = cube((20, 20, 20), (10, 10, 10), (12, 12, 12))
    kept = postprocess_mask((big | diagonal).astype(np.float32), ISOTROPIC, PostprocessSettings())
    np.testing.assert_array_equal(kept, big | diagonal)


def test_enclosed_hole_is_filled():
    solid = cube((12, 12, 12), (2, 2, 2), (10, 10, 10))
    hollow = solid.copy()
    hollow[4:8, 4:8, 4:8] = 0
    filled = postprocess_mask(hollow.astype(np.float32), ISOTROPIC, PostprocessSettings())
    np.testing.assert_array_equal(filled, solid)
    kept_hollow = postprocess_mask(hollow.astype(np.float32), ISOTROPIC, PostprocessSettings(fill_holes=False))
    np.testing.assert_array_equal(kept_hollow, hollow)


def test_a_tunnel_open_in_3d_is_not_filled_slice_by_slice():
    # Every axial slice shows an enclosed hole, but the tunnel reaches outside along z.
    tube = cube((12, 12, 12), (2, 2, 2), (10, 10, 10))
    tube[:, 5:7, 5:7] = 0
    result = postprocess_mask(tube.astype(np.float32), ISOTROPIC, PostprocessSettings())
    np.testing.assert_array_equal(result, tube)


def test_closing_bridges_a_one_voxel_gap():
    left = cube((10, 10, 20), (2, 2, 2), (8, 8, 9))
    right = cube((10, 10, 20), (2, 2, 10), (8, 8, 18))  # x = 9 is the gap; the bigger half
    probability = (left | right).astype(np.float32)
    bridged = postprocess_mask(probability, ISOTROPIC, PostprocessSettings(closing_radius_mm=1.0))
    # Closing with the 1 mm (6-neighbour) ball fills the gap except its outermost rim, whose
    # in-plane neighbours were never foreground; the rest of the mask is untouched.
    assert bridged[3:7, 3:7, 9].all()
    assert not bridged[2, :, 9].any() and not bridged[:, 2, 9].any()
    np.testing.assert_array_equal(np.delete(bridged, 9, axis=2), np.delete(left | right, 9, axis=2))
    assert ndimage.label(bridged)[1] == 1
    # Without closing the largest-component step keeps only the bigger half.
    unbridged = postprocess_mask(probability, ISOTROPIC, PostprocessSettings())
    np.testing.assert_array_equal(unbridged, right)


def test_closing_radius_is_in_millimetres_along_each_axis():
    # A one-slice gap along z with 3 mm slices: a 2 mm ball has no extent along z, a 3 mm one has.
    spacing = (3.0, 1.0, 1.0)
    lower = cube((20, 24, 24), (2, 2, 2), (9, 22, 22))
    upper = cube((20, 24, 24), (10, 2, 2), (18, 22, 22))
    probability = (lower | upper).astype(np.float32)
    small = postprocess_mask(probability, spacing, PostprocessSettings(closing_radius_mm=2.0, largest_component=False))
    assert not small[9].any()
    large = postprocess_mask(probability, spacing, PostprocessSettings(closing_radius_mm=3.0, largest_component=False))
    # Filled wherever the ball's 3 mm in-plane disc fits inside the gap's 20 x 20 footprint.
    assert large[9, 5:19, 5:19].all()
    assert not large[9, 2:4, :].any()


def test_closing_does_not_erode_objects_at_the_array_edge():
    edge_cube = cube((10, 10, 10), (0, 0, 0), (5, 5, 5))
    closed = postprocess_mask(edge_cube.astype(np.float32), ISOTROPIC, PostprocessSettings(closing_radius_mm=2.0))
    np.testing.assert_array_equal(closed, edge_cube)


def test_ball_structure_respects_anisotropic_spacing():
    ball = ball_structure(2.0, (2.0, 1.0, 0.5))
    assert ball.shape == (3, 5, 9)
    assert ball[1, 2, 0] and ball[1, 2, 8] and ball[0, 2, 4] and ball[1, 0, 4]
    assert not ball[0, 0, 4]  # (2 mm, 2 mm) away: outside a 2 mm ball


def test_negative_closing_radius_is_rejected():
    with pytest.raises(ValueError, match="closing_radius_mm"):
        postprocess_mask(np.ones((3, 3, 3)), ISOTROPIC, PostprocessSettings(closing_radius_mm=-1.0))


def test_working_on_the_bounding_box_changes_nothing():
    # The same steps on the whole array, padded far beyond the closing's reach, as a reference.
    rng = np.random.default_rng(1)
    for _ in range(20):
        smooth = ndimage.gaussian_filter(rng.random((16, 18, 17)), 1.5)
        probability = (smooth - smooth.min()) / (smooth.max() - smooth.min())
        spacing = tuple(rng.uniform(0.6, 2.5, 3))
        settings = PostprocessSettings(
            threshold=float(rng.uniform(0.55, 0.75)),
            closing_radius_mm=float(rng.choice([0.0, 1.5, 3.0])),
            largest_component=bool(rng.integers(2)),
        )
        expected = probability >= settings.threshold
        if settings.closing_radius_mm > 0:
            ball = ball_structure(settings.closing_radius_mm, spacing)
            padded = ndimage.binary_dilation(np.pad(expected, 10), ball)
            expected = ndimage.binary_erosion(padded, ball)[10:-10, 10:-10, 10:-10]
        if settings.largest_component and expected.any():
            labels, _ = ndimage.label(expected, np.ones((3, 3, 3)))
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            expected = labels == sizes.argmax()
        expected = ndimage.binary_fill_holes(expected)
        np.testing.assert_array_equal(postprocess_mask(probability, spacing, settings), expected.astype(np.uint8))
