"""Montage slice choice, crop and picture; the video caption with per-slice Dice."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
import pytest

from laseg.io import Geometry
from laseg.masks import per_slice_dice
from laseg.montage import la_crop, montage_slices, write_montage
from laseg.visualize import overlay_frames, slice_caption

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def test_montage_slices_span_the_atrium_evenly():
    present = np.zeros(64, dtype=bool)
    present[20:42] = True  # slices 20..41
    shown = montage_slices(present, 12)
    assert shown[0] == 20 and shown[-1] == 41 and len(shown) == 12
    assert np.diff(shown).min() >= 1 and np.diff(shown).max() <= 3
    assert montage_slices(present[:25], 12) == list(range(20, 25))  # fewer LA slices than tiles: each once
    assert montage_slices(np.zeros(30, dtype=bool), 4) == [13, 14, 16, 17]  # no LA: the middle of the scan


def test_la_crop_adds_the_margin_in_mm_and_stays_in_the_slice():
    la = np.zeros((3, 50, 60), dtype=bool)
    la[1, 20:30, 5:15] = True
    rows, cols = la_crop(la, (2.0, 1.0), margin_mm=10.0)
    assert (rows.start, rows.stop) == (15, 35)  # 10 mm = 5 rows of 2 mm
    assert (cols.start, cols.stop) == (0, 25)  # 10 columns of 1 mm, clipped at the left edge
    assert la_crop(np.zeros((2, 8, 9), dtype=bool), (1.0, 1.0)) == (slice(0, 8), slice(0, 9))


def test_per_slice_dice_known_values():
    pred = np.zeros((3, 4, 4), dtype=np.uint8)
    truth = np.zeros((3, 4, 4), dtype=np.uint8)
    pred[0, :2, :2] = 1  # 4 voxels
    truth[0, :2, :1] = 1  # 2 voxels, both inside: 2*2/6
    truth[1, 0, 0] = 1  # missed entirely
    result = per_slice_dice(pred, truth)
    assert result[0] == pytest.approx(2 / 3) and result[1] == 0.0 and np.isnan(result[2])
    assert slice_caption(0, 3, result[0]) == "slice 1/3  Dice 0.667"
    assert slice_caption(2, 3, result[2]) == "slice 3/3  no LA"
    assert slice_caption(1, 3, None) == "slice 2/3"


def test_video_caption_names_patient_and_slice_dice():
    geometry = Geometry(size=(80, 80, 3), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    image = np.full((3, 80, 80), 100, dtype=np.int16)
    image[0, 0, 0] = 0  # a non-constant scan
    truth = np.zeros((3, 80, 80), dtype=np.uint8)
    truth[:, 50:70, 50:70] = 1  # bottom right, away from the caption
    perfect = truth.copy()
    missed = truth.copy()
    missed[1] = 0  # slice 2 entirely missed: Dice 0.000 instead of 1.000
    caption = np.s_[:60, :200]
    plain = overlay_frames(image, perfect, truth, geometry, max_size_px=400)
    named = overlay_frames(image, perfect, truth, geometry, max_size_px=400, patient="la_007")
    other = overlay_frames(image, missed, truth, geometry, max_size_px=400, patient="la_007")
    # The patient's line is drawn at the top; below the caption the frame is what it was.
    assert (named[0][caption] != plain[0][caption]).any()
    np.testing.assert_array_equal(named[0][200:], plain[0][200:])
    # Only the slice whose Dice changed gets a different caption.
    assert (named[0][caption] == other[0][caption]).all() and (named[2][caption] == other[2][caption]).all()
    assert (named[1][caption] != other[1][caption]).any()
    # Without a reference there is no Dice to show, and so no difference between the two predictions.
    unlabelled = overlay_frames(image, perfect, None, geometry, max_size_px=400, patient="la_007")
    unlabelled_missed = overlay_frames(image, missed, None, geometry, max_size_px=400, patient="la_007")
    assert (unlabelled[1][caption] == unlabelled_missed[1][caption]).all()


def test_montage_png_shows_both_contours_and_legend(tmp_path):
    geometry = Geometry(size=(60, 50, 30), spacing_mm=(1.2, 1.2, 2.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    z, y, x = np.indices((30, 50, 60))
    image = (200 + 50 * np.random.default_rng(0).normal(size=(30, 50, 60))).astype(np.int16)
    truth = ((x - 30) ** 2 + (y - 25) ** 2 + ((z - 15) * 1.6) ** 2 < 120).astype(np.uint8)
    pred = ((x - 32) ** 2 + (y - 25) ** 2 + ((z - 15) * 1.6) ** 2 < 110).astype(np.uint8)
    path = tmp_path / "la_001.png"
    shown = write_montage(image, pred, truth, geometry, "la_001", path, n_slices=8)
    present = np.flatnonzero((pred | truth).reshape(30, -1).any(axis=1))
    assert shown[0] == present[0] and shown[-1] == present[-1] and len(shown) == 8
    picture = imageio.imread(path)[:, :, :3].astype(int)
    green = (picture[:, :, 1] > 180) & (picture[:, :, 0] < 80) & (picture[:, :, 2] < 80)
    red = (picture[:, :, 0] > 200) & (picture[:, :, 1] < 80) & (picture[:, :, 2] < 80)
    assert green.sum() > 500 and red.sum() > 500
    assert [p.name for p in tmp_path.iterdir()] == ["la_001.png"]


def test_montage_without_reference_and_with_empty_prediction(tmp_path):
    geometry = Geometry(size=(20, 20, 10), spacing_mm=(1.0, 1.0, 1.0), origin_mm=(0.0, 0.0, 0.0), direction=IDENTITY)
    image = np.random.default_rng(1).integers(0, 500, size=(10, 20, 20)).astype(np.int16)
    shown = write_montage(
        image, np.zeros((10, 20, 20), dtype=np.uint8), None, geometry, "la_100", tmp_path / "m.png", 4
    )
    assert shown == [3, 4, 6, 7]
    picture = imageio.imread(tmp_path / "m.png")[:, :, :3].astype(int)
    red = (picture[:, :, 0] > 200) & (picture[:, :, 1] < 80) & (picture[:, :, 2] < 80)
    assert not red.any()
