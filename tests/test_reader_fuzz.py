"""Damaged scans through the workflow's own loading step: each ends in a one-line InputError naming the file, or
in exactly the original voxels and geometry; never in a wrong volume, and never with the input file changed."""

from __future__ import annotations

import gzip
import shutil
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from dicom_series import write_series

from laseg.cohort import discover_cases
from laseg.io import Geometry, InputError
from laseg.slices import SliceStack, load_checked_case

SHAPE_ZYX = (16, 20, 24)
GEOMETRY = Geometry((24, 20, 16), (1.25, 1.25, 1.37), (10.0, -5.0, 3.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))


def original_array() -> np.ndarray:
    return np.random.default_rng(0).normal(300, 50, SHAPE_ZYX).astype(np.int16)


def write_nifti(path: Path) -> None:
    image = GEOMETRY.apply_to(sitk.GetImageFromArray(original_array()))
    sitk.WriteImage(image, str(path), useCompression=path.name.endswith(".gz"))


def put(raw: bytes, offset: int, fmt: str, *values: float) -> bytes:
    """`raw` with a NIfTI-1 header field (little-endian, as SimpleITK writes it) overwritten."""
    changed = bytearray(raw)
    struct.pack_into(f"<{fmt}", changed, offset, *values)
    return bytes(changed)


NAN = float("nan")
# Damage to the uncompressed NIfTI-1 bytes (header 348 bytes, voxel data from byte 352): name -> change.
HEADER_DAMAGE: dict[str, Callable[[bytes], bytes]] = {
    "dim[1] doubled": lambda b: put(b, 42, "h", 48),
    "dim[1] halved": lambda b: put(b, 42, "h", 12),
    "dim[3] negative": lambda b: put(b, 46, "h", -16),
    "dim[0] 9": lambda b: put(b, 40, "h", 9),
    "dim[0] 2": lambda b: put(b, 40, "h", 2),
    "dim[0] 4, dim[4] 1": lambda b: put(put(b, 40, "h", 4), 48, "h", 1),
    "absurd size": lambda b: put(b, 42, "3h", 30000, 30000, 30000),
    "datatype uint8": lambda b: put(b, 70, "h", 2),
    "datatype float32": lambda b: put(b, 70, "h", 16),
    "datatype unknown": lambda b: put(b, 70, "h", 999),
    "datatype and bitpix uint8": lambda b: put(b, 70, "2h", 2, 8),
    "vox_offset 348": lambda b: put(b, 108, "f", 348.0),
    "vox_offset 0": lambda b: put(b, 108, "f", 0.0),
    "vox_offset 1e9": lambda b: put(b, 108, "f", 1e9),
    "vox_offset NaN": lambda b: put(b, 108, "f", NAN),
    "pixdim[1] zero": lambda b: put(b, 80, "f", 0.0),
    "pixdim[1] negative": lambda b: put(b, 80, "f", -1.25),
    "pixdim[2] NaN": lambda b: put(b, 84, "f", NAN),
    "pixdim[3] inf": lambda b: put(b, 88, "f", float("inf")),
    "qform_code 0": lambda b: put(b, 252, "h", 0),
    "sform_code 0": lambda b: put(b, 254, "h", 0),
    "qform_code 99": lambda b: put(b, 252, "h", 99),
    "quaternion norm 2, no sform": lambda b: put(put(b, 254, "h", 0), 256, "f", 2.0),
    "quaternion NaN": lambda b: put(b, 256, "f", NAN),
    "qoffset NaN, no sform": lambda b: put(put(b, 254, "h", 0), 268, "f", NAN),
    "sform zero": lambda b: put(b, 280, "12f", *[0.0] * 12),
    "sform NaN": lambda b: put(b, 280, "f", NAN),
    "sform skewed": lambda b: put(b, 280, "4f", 1.25, 1.0, 0.0, 10.0),
    "sizeof_hdr 0": lambda b: put(b, 0, "i", 0),
    "magic gone": lambda b: put(b, 344, "4s", b"xx1\0"),
}
# Cuts: byte counts kept, of the compressed file for .nii.gz and of the file for .nii.
CUTS: dict[str, Callable[[int], int]] = {
    "cut to 0 bytes": lambda n: 0,
    "cut inside the header": lambda n: 200,
    "cut after the header": lambda n: 352,
    "cut to 5000 bytes": lambda n: 5000,
    "cut to half": lambda n: n // 2,
    "cut 4 bytes short": lambda n: n - 4,
    "cut 1 byte short": lambda n: n - 1,
}


def damaged_nifti_files(folder: Path) -> dict[str, Path]:
    """Every damaged variant of the test scan, as .nii and as .nii.gz, each in a file of its own."""
    folder.mkdir()
    write_nifti(folder / "original.nii")
    raw = (folder / "original.nii").read_bytes()
    compressed = gzip.compress(raw)
    variants: dict[str, Path] = {}
    for index, (name, damage) in enumerate(HEADER_DAMAGE.items()):
        for suffix, data in ((".nii", damage(raw)), (".nii.gz", gzip.compress(damage(raw)))):
            variants[f"{name} ({suffix})"] = folder / f"h{index:02d}{suffix}"
            variants[f"{name} ({suffix})"].write_bytes(data)
    for index, (name, cut) in enumerate(CUTS.items()):
        for suffix, data in ((".nii", raw), (".nii.gz", compressed)):
            variants[f"{name} ({suffix})"] = folder / f"c{index:02d}{suffix}"
            variants[f"{name} ({suffix})"].write_bytes(data[: max(0, cut(len(data)))])
    gz = bytearray(compressed)
    gz[-8] ^= 0xFF  # the CRC of the decompressed data
    variants["gzip CRC wrong (.nii.gz)"] = folder / "crc.nii.gz"
    variants["gzip CRC wrong (.nii.gz)"].write_bytes(bytes(gz))
    variants["trailing bytes (.nii)"] = folder / "trailing.nii"
    variants["trailing bytes (.nii)"].write_bytes(raw + b"\0" * 64)
    return variants


def other_format_files(folder: Path) -> dict[str, Path]:
    """NRRD and MetaImage files (data inside, detached .raw and .zraw) cut short, and one sane of each."""
    folder.mkdir()
    image = GEOMETRY.apply_to(sitk.GetImageFromArray(original_array()))
    variants: dict[str, Path] = {}
    for name, compress in (("nrrd", False), ("nrrd", True), ("mha", False), ("mha", True), ("mhd", False)):
        stem = f"{name}{'_z' if compress else ''}"
        path = folder / f"{stem}.{name}"
        sitk.WriteImage(image, str(path), useCompression=compress)
        variants[f"{stem} intact"] = path
        data_path = next(folder.glob(f"{stem}.*raw"), path) if name == "mhd" else path
        data = data_path.read_bytes()
        for cut in (len(data) - 7, len(data) // 2):
            copy = folder / f"{stem}_cut{cut}.{name}"
            if name == "mhd":
                cut_raw = folder / f"{stem}_cut{cut}.raw"
                cut_raw.write_bytes(data[:cut])
                copy.write_text(path.read_text().replace(data_path.name, cut_raw.name))
            else:
                copy.write_bytes(data[:cut])
            variants[f"{stem} cut to {cut} of {len(data)} bytes"] = copy
    return variants


def fingerprint(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def outcome(load: Callable[[], SliceStack], names: str, reference: SliceStack) -> str:
    """'refused: <message>' for a one-line InputError naming `names`, 'correct' for the original voxels and
    geometry; anything else fails the test."""
    try:
        stack = load()
    except InputError as err:
        message = str(err)
        assert "\n" not in message and names in message, message
        return f"refused: {message}"
    assert stack.source_geometry.matches(reference.source_geometry, tolerance=1e-4), stack.source_geometry
    assert np.array_equal(stack.image, reference.image), "silently wrong voxels"
    return "correct"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> SliceStack:
    path = tmp_path_factory.mktemp("reference") / "scan.nii.gz"
    write_nifti(path)
    return load_checked_case("p", path, None)


def test_every_damaged_nifti_is_refused_in_one_line_or_read_exactly(tmp_path, reference):
    variants = damaged_nifti_files(tmp_path / "scans")
    before = fingerprint(tmp_path / "scans")
    results = {name: outcome(lambda p=path: load_checked_case("p", p, None), str(path), reference)
               for name, path in variants.items()}  # fmt: skip
    assert fingerprint(tmp_path / "scans") == before
    for name, result in results.items():
        if name.startswith(("cut", "gzip")):
            words = "truncated" if name.startswith("cut") else "damaged"
            assert result.startswith("refused") and words in result, (name, result)
    # The damage ITK reads into a wrong volume without a word, each refused before it is read.
    for silent in ("dim[1] halved", "datatype uint8", "vox_offset 348", "pixdim[1] zero", "quaternion norm 2, no sform",
                   "sform NaN", "cut to 5000 bytes", "cut 1 byte short", "magic gone", "trailing bytes"):  # fmt: skip
        for name, result in results.items():
            if name.startswith(silent):
                assert result.startswith("refused"), (name, result)
    assert results["qform_code 0 (.nii.gz)"] == "correct" and results["sform skewed (.nii)"] == "correct"
    assert "more than 2**31" in results["absurd size (.nii.gz)"]
    assert "header promises 15712 bytes (352 + 24x20x16 x 2)" in results["cut to 5000 bytes (.nii.gz)"]


def test_nrrd_and_metaimage_cut_short_are_refused_and_intact_ones_read_exactly(tmp_path, reference):
    variants = other_format_files(tmp_path / "scans")
    before = fingerprint(tmp_path / "scans")
    for name, path in variants.items():
        result = outcome(lambda p=path: load_checked_case("p", p, None), str(path), reference)
        assert result == "correct" if name.endswith("intact") else "truncated" in result, (name, result)
    assert fingerprint(tmp_path / "scans") == before


def dicom_scan() -> np.ndarray:
    return np.random.default_rng(1).normal(300, 50, (10, 20, 24)).astype(np.int16)


@pytest.mark.parametrize(
    "damage, words",
    [
        ("intact", None),
        ("missing slice", "a slice is missing"),
        ("pixel data cut short", "truncated: pixel data 860 bytes, expected 960"),
        ("file cut inside its header", "a slice is missing"),
        ("duplicated slice", "same position"),
        ("a second series in the folder", None),
    ],
)
def test_damaged_dicom_series_are_refused_in_one_line_or_read_exactly(tmp_path, damage, words):
    root = tmp_path / "export"
    folder = root / "p1" / "series"
    files = write_series(folder, dicom_scan())
    reference = load_checked_case("p", files, None)
    if damage == "missing slice":
        files[4].unlink()
    elif damage == "pixel data cut short":
        files[4].write_bytes(files[4].read_bytes()[:-100])
    elif damage == "file cut inside its header":
        files[4].write_bytes(files[4].read_bytes()[:300])
    elif damage == "duplicated slice":
        shutil.copy(files[4], folder / "copy_of_slice_5.dcm")
    elif damage == "a second series in the folder":
        write_series(folder, dicom_scan()[:, ::-1], series_uid="1.2.826.0.1.3680043.2.1125.2", series_number=4)
    before = fingerprint(root)
    notes: list[str] = []
    cases = discover_cases(root, note=notes.append)
    results = [outcome(lambda: load_checked_case(cases[0].patient, cases[0].source, None), str(folder), reference)]
    if damage == "a second series in the folder":
        assert [c.patient for c in cases] == ["p1_series_s3", "p1_series_s4"]
        flipped = load_checked_case("q", write_series(tmp_path / "flip", dicom_scan()[:, ::-1]), None)
        results.append(outcome(lambda: load_checked_case("q", cases[1].source, None), str(folder), flipped))
    assert fingerprint(root) == before
    if words is None:
        assert set(results) == {"correct"}, results
    else:
        assert len(results) == 1 and results[0].startswith("refused") and words in results[0], results
    if damage == "pixel data cut short":
        assert str(files[4]) in results[0]
    if damage == "file cut inside its header":
        assert any(str(files[4]) in n and "truncated" in n for n in notes), notes
