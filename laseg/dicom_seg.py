"""The predicted mask of a DICOM series as a DICOM Segmentation (SOP class Segmentation Storage), referencing
the source series, one frame per source slice that holds atrium: what a PACS or a DICOM viewer shows over it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import laseg
from laseg.io import InputError, atomic_path


def write_dicom_seg(mask_zyx: np.ndarray, series_files: Sequence[str | os.PathLike], path: str | os.PathLike) -> None:
    """`mask_zyx` on the series' grid (slice i is series_files[i], as laseg.io.read_image reads the series)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(str(f)) for f in series_files]
    if not all(getattr(source, "FrameOfReferenceUID", "") for source in sources):
        raise InputError(
            f"{Path(series_files[0]).parent}: the series has no Frame of Reference UID, which a DICOM-SEG needs"
        )
    frames = (np.asarray(mask_zyx) != 0).astype(np.uint8)
    expected = (len(sources), int(sources[0].Rows), int(sources[0].Columns))
    if frames.shape != expected:
        raise InputError(
            f"{path}: mask shape {frames.shape} does not match the series' {expected} (slices, rows, columns)"
        )
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="left atrium",
        segmented_property_category=codes.SCT.AnatomicalStructure,
        segmented_property_type=codes.SCT.LeftAtrium,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=hd.AlgorithmIdentificationSequence(
            name="laseg", version=laseg.__version__, family=codes.cid7162.ArtificialIntelligence
        ),
    )
    segmentation = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=int(getattr(sources[0], "SeriesNumber", 0) or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="laseg",
        manufacturer_model_name="laseg left-atrium 2.5D U-Net",
        software_versions=laseg.__version__,
        device_serial_number="none",
        series_description="LA segmentation (laseg, not for diagnosis)",
    )
    with atomic_path(path, suffix=".dcm") as tmp:
        segmentation.save_as(str(tmp))
