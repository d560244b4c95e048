"""DICOM series as a scanner exports them: found in any subfolder, read onto their exact grid, and every
fault (other objects beside them, a missing slice, mixed orientations, a corrupt file) named in one line."""

from __future__ import annotations

import numpy as np
import pytest
from dicom_series import write_series

from laseg.cohort import discover_cases
from laseg.io import Geometry, InputError, read_volume, write_volume
from laseg.slices import load_checked_case

SAGITTAL = (0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def scan(shape=(20, 32, 40)) -> np.ndarray:
    return np.random.default_rng(0).normal(300, 50, shape).astype(np.int16)


def test_a_series_three_folders_deep_and_a_nifti_are_two_scans_on_their_own_grids(tmp_path):
    files = write_series(tmp_path / "patient01" / "study" / "T1_3D", scan(), direction=SAGITTAL)
    write_volume(
        scan((16, 20, 24)).astype(np.float32),
        Geometry((24, 20, 16), (1, 1, 1), (0, 0, 0), (1, 0, 0, 0, 1, 0, 0, 0, 1)),
        tmp_path / "plain.nii.gz",
    )
    cases = {case.patient: case for case in discover_cases(tmp_path)}
    assert set(cases) == {"patient01_study_T1_3D", "plain"}
    series = cases["patient01_study_T1_3D"]
    assert series.source == [str(f) for f in files] and series.label is None
    array, geometry = read_volume(series.source)
    assert np.array_equal(array, scan())
    assert geometry == Geometry((40, 32, 20), (1.25, 1.25, 2.0), (-100.0, -80.0, 30.0), SAGITTAL)
    stack = load_checked_case(series.patient, series.source, None)
    assert stack.source_geometry == geometry and stack.image.size == array.size


def test_only_mr_image_series_are_scans_and_each_skipped_object_is_noted(tmp_path):
    folder = tmp_path / "export"
    write_series(folder, scan(), series_uid="1.2.3.1", series_number=3)
    write_series(folder, scan((20, 32, 40)), series_uid="1.2.3.2", series_number=4)
    write_series(
        folder, scan((3, 32, 40)), series_uid="1.2.3.9", series_number=1, image_type="ORIGINAL\\PRIMARY\\LOCALIZER"
    )
    write_series(
        folder, scan(), series_uid="1.2.3.7", series_number=7, modality="SR", sop_class="1.2.840.10008.5.1.4.1.1.88.11"
    )
    notes: list[str] = []
    cases = discover_cases(tmp_path, note=notes.append)
    assert [c.patient for c in cases] == ["export_s3", "export_s4"]
    assert len(notes) == 2 and all("\n" not in n and "skipped" in n for n in notes)
    assert any("localiser" in n for n in notes) and any("not MR" in n or "SR" in n for n in notes)


@pytest.mark.parametrize("fault", ["missing slice", "mixed orientations", "corrupt file"])
def test_a_faulty_series_is_one_line_naming_it(tmp_path, fault):
    folder = tmp_path / "p1" / "series"
    if fault == "missing slice":
        files = write_series(folder, scan(), skip_slices=(7,))
        words = "a slice is missing"
    elif fault == "mixed orientations":
        files = write_series(folder, scan()[:10], series_number=3)
        files += write_series(folder, scan()[:10], series_number=4, direction=SAGITTAL, origin_xyz=(0.0, 0.0, 100.0))
        words = "mixed orientations"
    else:
        files = write_series(folder, scan())
        files[5].write_bytes(files[5].read_bytes()[:300])
        words = "truncated: pixel data 0 bytes"
    with pytest.raises(InputError) as err:
        read_volume(sorted(files))
    message = str(err.value)
    assert "\n" not in message and str(folder) in message and words in message, message


def test_the_dicom_seg_references_the_series_and_its_frames_rebuild_the_mask(tmp_path):
    import pydicom

    from laseg.dicom_seg import write_dicom_seg

    files = write_series(tmp_path / "series", scan(), direction=SAGITTAL, series_uid="1.2.3.4")
    image, _ = read_volume(files)
    mask = np.zeros(image.shape, np.uint8)
    mask[6:14, 10:20, 12:30] = 1
    write_dicom_seg(mask, files, tmp_path / "seg.dcm")
    seg = pydicom.dcmread(tmp_path / "seg.dcm")
    assert seg.SOPClassUID == "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == "1.2.3.4"
    # Each frame placed by its position on the series grid: together they are the mask.
    positions = {tuple(round(v, 3) for v in pydicom.dcmread(f).ImagePositionPatient): z for z, f in enumerate(files)}
    rebuilt = np.zeros_like(mask)
    for frame, item in zip(seg.pixel_array.reshape(-1, *mask.shape[1:]), seg.PerFrameFunctionalGroupsSequence):
        position = tuple(round(float(v), 3) for v in item.PlanePositionSequence[0].ImagePositionPatient)
        rebuilt[positions[position]] = frame
    assert np.array_equal(rebuilt, mask)
