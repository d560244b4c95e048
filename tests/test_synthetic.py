"""Tests of the synthetic cardiac MRI cohort: determinism, anatomy, contrast, and that it is not trivial."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from laseg.io import read_volume
from laseg.synthetic import (
    LA_BLOOD,
    LUNG,
    LV_BLOOD,
    MYO,
    SyntheticCase,
    _synthesize,
    patient_id,
    synthesize_case,
    write_case,
)

SMALL = (64, 112, 112)  # 88 x 140 x 140 mm: holds the whole LA, not the whole heart
N_CASES = 6


@pytest.fixture(scope="module")
def cohort() -> list[tuple[SyntheticCase, np.ndarray]]:
    # Full-size cases: the threshold baseline needs the LV and great vessels inside the field of view.
    return [_synthesize(0, i) for i in range(N_CASES)]


def la_volume_ml(case: SyntheticCase) -> float:
    return float(case.label.sum()) * case.geometry.voxel_volume_mm3 / 1000.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(bool), b.astype(bool)
    return 2.0 * float((a & b).sum()) / max(int(a.sum() + b.sum()), 1)


def otsu_threshold(image: np.ndarray) -> float:
    hist, edges = np.histogram(image, bins=256)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centres)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    return float(centres[np.argmax(w0 * w1 * (mu0 - mu1) ** 2)])


def threshold_largest_component(image: np.ndarray, threshold: float) -> np.ndarray:
    """The naive baseline: bright voxels, then the largest 3D connected component."""
    parts, n = ndimage.label(image > threshold)
    if n == 0:
        return np.zeros(image.shape, bool)
    sizes = np.bincount(parts.ravel())
    sizes[0] = 0
    return parts == np.argmax(sizes)


def test_patient_id() -> None:
    assert [patient_id(i) for i in (0, 1, 12)] == ["syn_000", "syn_001", "syn_012"]
    with pytest.raises(ValueError):
        patient_id(-1)


def test_deterministic_per_seed_and_patient() -> None:
    shape = (32, 64, 64)
    a = synthesize_case(7, 1, shape)
    other = synthesize_case(7, 2, shape)  # another patient in between changes nothing
    b = synthesize_case(7, 1, shape)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.label.tobytes() == b.label.tobytes()
    assert a.geometry == b.geometry
    assert not np.array_equal(a.image, other.image)
    assert not np.array_equal(a.image, synthesize_case(8, 1, shape).image)


def test_anatomy_does_not_depend_on_shape() -> None:
    small, full = synthesize_case(3, 0, SMALL), synthesize_case(3, 0)
    assert small.geometry.spacing_mm == full.geometry.spacing_mm
    assert la_volume_ml(small) == pytest.approx(la_volume_ml(full), rel=0.02)


def test_arrays_and_geometry(cohort) -> None:
    for case, _ in cohort:
        assert case.image.dtype == np.int16 and case.label.dtype == np.uint8
        assert case.image.shape == case.label.shape == (80, 160, 160)
        assert case.geometry.size == (160, 160, 80)
        assert np.allclose(case.geometry.spacing_mm, (1.25, 1.25, 1.37), rtol=0.05)
        assert case.geometry.direction in ((1, 0, 0, 0, 1, 0, 0, 0, 1), (-1, 0, 0, 0, -1, 0, 0, 0, 1))
        assert 0 <= case.image.min() and 1000 < np.percentile(case.image, 99.5) < 3000


def test_label_is_one_connected_atrium_of_realistic_volume(cohort) -> None:
    for case, _ in cohort:
        assert set(np.unique(case.label)) == {0, 1}
        assert ndimage.label(case.label)[1] == 1
        assert 40.0 <= la_volume_ml(case) <= 150.0
    volumes = [la_volume_ml(case) for case, _ in cohort]
    assert max(volumes) - min(volumes) > 20.0  # sizes really vary


def test_la_fits_in_small_field_of_view() -> None:
    for i in range(3):
        label = synthesize_case(0, i, SMALL).label
        faces = [label[0], label[-1], label[:, 0], label[:, -1], label[:, :, 0], label[:, :, -1]]
        assert not any(face.any() for face in faces)


def test_contrast(cohort) -> None:
    for case, classes in cohort:
        image = case.image.astype(float)

        def mean_of(tissue: int, image: np.ndarray = image, classes: np.ndarray = classes) -> float:
            # Eroded, so that partial-volume edges do not blend the classes.
            return float(image[ndimage.binary_erosion(classes == tissue)].mean())

        la, lv = mean_of(LA_BLOOD), mean_of(LV_BLOOD)
        assert abs(la - lv) / max(la, lv) < 0.15
        assert mean_of(LUNG) < mean_of(MYO) < min(la, lv)
        # The label covers the bright LA blood and nothing dark.
        assert image[case.label == 1].mean() > 0.8 * la


def test_threshold_and_largest_component_fails(cohort) -> None:
    best = []
    for case, _ in cohort:
        image = case.image.astype(np.float32)
        assert dice(threshold_largest_component(image, otsu_threshold(image)), case.label) < 0.6
        percentiles = np.percentile(image, [70, 80, 85, 90, 92, 94, 95, 96, 97, 98])
        best.append(max(dice(threshold_largest_component(image, t), case.label) for t in percentiles))
    assert np.mean(best) < 0.5
    assert sum(d < 0.6 for d in best) >= N_CASES - 1


def test_write_case_round_trips(tmp_path) -> None:
    case = synthesize_case(0, 1, (24, 40, 48))
    write_case(case, tmp_path / "img.nii.gz", tmp_path / "sub" / "lab.nii.gz")
    image, image_geometry = read_volume(tmp_path / "img.nii.gz")
    label, label_geometry = read_volume(tmp_path / "sub" / "lab.nii.gz")
    assert image.dtype == np.int16 and label.dtype == np.uint8
    assert np.array_equal(image, case.image) and np.array_equal(label, case.label)
    assert image_geometry.matches(case.geometry) and label_geometry.matches(case.geometry)
    assert image_geometry.size == (48, 40, 24)
