"""A scan file's integrity, checked before it is read: a sane header and exactly the voxel bytes it promises.

ITK reads a file cut short as a volume padded with zeros, and a header with a wrong size, type, offset or spacing
as a volume of garbage, without a word: here each format's header is parsed and its data measured first, streaming
compressed data in chunks (never a second copy of the scan in memory), and every fault is a one-line InputError
naming the file.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from laseg.errors import InputError

CHUNK_BYTES = 1 << 20
GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib's code for a gzip wrapper
# No cardiac MRI comes near 2**31 voxels (1024^3 is 2**30); a header claiming more is damaged, and numpy would try
# to allocate it before ITK noticed anything.
MAX_VOXELS = 2**31

# NIfTI datatype code -> bytes per voxel (nifti1.h).
NIFTI_BYTES_PER_VOXEL = {
    2: 1, 4: 2, 8: 4, 16: 4, 32: 8, 64: 8, 128: 3, 256: 1, 512: 2, 768: 4, 1024: 8, 1280: 8, 1536: 16,
    1792: 16, 2048: 32, 2304: 4,
}  # fmt: skip
NIFTI_FLOAT_DTYPES = {16: "f4", 64: "f8"}


@dataclass(frozen=True)
class NiftiHeader:
    """What a NIfTI-1 or -2 header says about where its voxel data lies and how much of it there is."""

    endian: str  # "<" or ">"
    dims: tuple[int, ...]  # dim[1..dim[0]]
    datatype: int
    vox_offset: int

    @property
    def bytes_per_voxel(self) -> int:
        return NIFTI_BYTES_PER_VOXEL[self.datatype]

    @property
    def payload_bytes(self) -> int:
        return int(np.prod(self.dims, dtype=object)) * self.bytes_per_voxel

    def promise(self) -> str:
        shape = "x".join(str(d) for d in self.dims)
        return f"{self.vox_offset + self.payload_bytes} bytes ({self.vox_offset} + {shape} x {self.bytes_per_voxel})"


def _open_maybe_gzip(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")  # type: ignore[return-value]


def read_nifti_header(path: Path) -> NiftiHeader | None:
    """The header of a single-file NIfTI (`n+1`, `n+2`), checked; None for a file that is no NIfTI at all
    (ITK's own reader then names it unreadable). A damaged header is a one-line InputError."""
    if path.name.endswith(".gz"):
        with open(path, "rb") as handle:
            if handle.read(2) not in (b"\x1f\x8b", b""):
                return None  # no gzip file at all: ITK's reader names it unreadable
    try:
        with _open_maybe_gzip(path) as handle:
            raw = handle.read(540)
    except EOFError:
        with open(path, "rb") as handle:
            held, _ = _inflated_size(handle, GZIP_WBITS)
        raise InputError(f"{path}: truncated: its gzip stream ends early, after {held} decompressed bytes") from None
    except (OSError, zlib.error) as err:
        raise InputError(f"{path}: damaged compressed data ({str(err)[:120]})") from None
    if not raw:
        raise InputError(f"{path}: truncated: the file holds no data (0 bytes after decompression)")
    if len(raw) >= 4 and raw[4:8] == b"n+2\0":
        return _nifti2_header(path, raw)
    if len(raw) >= 348 and raw[344:348] in (b"n+1\0", b"ni1\0"):
        return _nifti1_header(path, raw)
    sizeof = [int(np.frombuffer(raw[0:4], f"{e}i4")[0]) for e in "<>"] if len(raw) >= 4 else []
    if 348 in sizeof or 540 in sizeof:
        header_bytes = 348 if 348 in sizeof else 540
        if len(raw) < header_bytes:
            raise InputError(f"{path}: truncated: NIfTI header promises {header_bytes} bytes, file holds {len(raw)}")
        raise InputError(f"{path}: damaged header: no NIfTI magic ('n+1'); as Analyze it would lose its position")
    return None


def _nifti1_header(path: Path, raw: bytes) -> NiftiHeader:
    endian = next((e for e in "<>" if np.frombuffer(raw[0:4], f"{e}i4")[0] == 348), None)
    if endian is None:
        # sizeof_hdr is damaged: tell the byte order from dim[0], which must be 1-7.
        endian = ">" if 1 <= np.frombuffer(raw[40:42], ">i2")[0] <= 7 else "<"

    def field(offset: int, kind: str, count: int = 1) -> np.ndarray:
        return np.frombuffer(raw, f"{endian}{kind}", count, offset).astype(float)

    if raw[344:348] == b"ni1\0":
        raise InputError(f"{path}: NIfTI header of a .hdr/.img pair in a single file (magic 'ni1'), no voxel data")
    return _checked_nifti(
        path,
        endian,
        dim=field(40, "i2", 8),
        datatype=int(field(70, "i2")[0]),
        bitpix=int(field(72, "i2")[0]),
        pixdim=field(76, "f4", 8),
        vox_offset=float(field(108, "f4")[0]),
        header_end=352,
        codes=(int(field(252, "i2")[0]), int(field(254, "i2")[0])),
        quatern=field(256, "f4", 6),
        srow=field(280, "f4", 12),
    )


def _nifti2_header(path: Path, raw: bytes) -> NiftiHeader:
    if len(raw) < 540:
        raise InputError(f"{path}: truncated: NIfTI-2 header promises 540 bytes, the file holds {len(raw)}")
    endian = "<" if np.frombuffer(raw[0:4], "<i4")[0] == 540 else ">"

    def field(offset: int, kind: str, count: int = 1) -> np.ndarray:
        return np.frombuffer(raw, f"{endian}{kind}", count, offset).astype(float)

    return _checked_nifti(
        path,
        endian,
        dim=field(16, "i8", 8),
        datatype=int(field(12, "i2")[0]),
        bitpix=int(field(14, "i2")[0]),
        pixdim=field(104, "f8", 8),
        vox_offset=float(field(168, "i8")[0]),
        header_end=544,
        codes=(int(field(344, "i4")[0]), int(field(348, "i4")[0])),
        quatern=field(352, "f8", 6),
        srow=field(400, "f8", 12),
    )


def _checked_nifti(
    path: Path,
    endian: str,
    dim: np.ndarray,
    datatype: int,
    bitpix: int,
    pixdim: np.ndarray,
    vox_offset: float,
    header_end: int,
    codes: tuple[int, int],
    quatern: np.ndarray,
    srow: np.ndarray,
) -> NiftiHeader:
    """Every header field ITK would silently replace or misread, checked (each fault seen in tests/test_reader_fuzz.py
    to give a wrong volume or geometry without any error)."""
    ndim = int(dim[0])
    if not 1 <= ndim <= 7:
        raise InputError(f"{path}: damaged header: dim[0] = {ndim}, must be 1-7")
    dims = tuple(int(d) for d in dim[1 : ndim + 1])
    if min(dims) < 1:
        raise InputError(f"{path}: damaged header: image size {dims} has a dimension below 1")
    if datatype not in NIFTI_BYTES_PER_VOXEL:
        raise InputError(f"{path}: damaged header: unknown datatype code {datatype}")
    if bitpix != 8 * NIFTI_BYTES_PER_VOXEL[datatype]:
        raise InputError(
            f"{path}: damaged header: datatype {datatype} has {8 * NIFTI_BYTES_PER_VOXEL[datatype]} bits per voxel, "
            f"bitpix says {bitpix}"
        )
    if not (np.isfinite(vox_offset) and vox_offset == int(vox_offset) and vox_offset >= header_end):
        raise InputError(f"{path}: damaged header: vox_offset {vox_offset} is not a whole byte count >= {header_end}")
    # niftilib replaces a zero, negative or NaN spacing with 1 mm (and ITK may flip the axis): volumes would be wrong.
    spacing = pixdim[1 : min(ndim, 3) + 1]
    if not (np.all(np.isfinite(spacing)) and np.all(spacing > 0)):
        raise InputError(f"{path}: damaged header: voxel spacing (pixdim) {tuple(spacing.tolist())} must be positive")
    qform_code, sform_code = codes
    # niftilib turns a quaternion of norm > 1 into a 180-degree rotation, and ITK passes NaN into the direction.
    if qform_code > 0 and (not np.all(np.isfinite(quatern)) or float(np.sum(quatern[:3] ** 2)) > 1.0 + 1e-4):
        raise InputError(f"{path}: damaged header: qform {tuple(quatern.tolist())} is no rotation and offset")
    if sform_code > 0:
        matrix = srow.reshape(3, 4)[:, :3]
        if not np.all(np.isfinite(srow)) or abs(np.linalg.det(matrix)) <= 1e-12 * max(1.0, np.abs(matrix).max()) ** 3:
            raise InputError(f"{path}: damaged header: sform matrix {tuple(srow.tolist())} is singular or not finite")
    header = NiftiHeader(endian, dims, datatype, int(vox_offset))
    check_claimed_size(path, int(np.prod(dims, dtype=object)), header.payload_bytes)
    return header


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where it cannot be told."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_claimed_size(path: Path, voxels: int, payload_bytes: int) -> None:
    """Refuse a header claiming more voxels than any scan has, or more data than this machine could hold,
    before anything is allocated for it."""
    if voxels > MAX_VOXELS:
        raise InputError(f"{path}: damaged header: it claims {voxels} voxels (more than 2**31)")
    memory = available_memory_bytes()
    if memory is not None and payload_bytes > memory:
        raise InputError(
            f"{path}: header claims {payload_bytes} bytes of voxel data, "
            f"more than the {memory} bytes of memory available"
        )


def nifti_voxel_chunks(path: Path, header: NiftiHeader) -> Iterator[bytes]:
    """The voxel data, in chunks of whole voxels, streamed; InputError when the file holds fewer or more bytes than
    the header promises or its gzip stream is damaged (checked once the last chunk has been taken)."""
    step = max(1, CHUNK_BYTES // header.bytes_per_voxel) * header.bytes_per_voxel
    held = 0
    try:
        with _open_maybe_gzip(path) as handle:
            skipped = len(handle.read(header.vox_offset))
            held = skipped
            remaining = header.payload_bytes
            while remaining:
                chunk = handle.read(min(step, remaining))
                held += len(chunk)
                if len(chunk) < min(step, remaining):
                    break
                remaining -= len(chunk)
                yield chunk
            extra = len(handle.read(1)) if not remaining else 0
            if extra:
                # Drain the rest to count it: a gzip stream's length is only known at its end.
                while chunk := handle.read(CHUNK_BYTES):
                    extra += len(chunk)
    except EOFError:
        with open(path, "rb") as handle:
            held, _ = _inflated_size(handle, GZIP_WBITS)  # exact: gzip's reader drops the last partial read
        raise InputError(
            f"{path}: truncated: header promises {header.promise()}, the file holds {held} (its gzip stream ends early)"
        ) from None
    except (OSError, zlib.error) as err:
        raise InputError(f"{path}: damaged compressed data ({str(err)[:120]})") from None
    if remaining:
        raise InputError(f"{path}: truncated: header promises {header.promise()}, the file holds {held}")
    if extra:
        raise InputError(
            f"{path}: damaged header: it promises {header.promise()}, the file holds {extra} bytes more "
            "(a wrong size, datatype or vox_offset)"
        )


def check_nifti(path: Path) -> None:
    header = read_nifti_header(path)
    if header is None:
        return
    if not path.name.endswith(".gz"):
        # An uncompressed file's size says it all; nothing is read.
        size, promised = path.stat().st_size, header.vox_offset + header.payload_bytes
        if size < promised:
            raise InputError(f"{path}: truncated: header promises {header.promise()}, the file holds {size}")
        if size > promised:
            raise InputError(
                f"{path}: damaged header: it promises {header.promise()}, the file holds {size - promised} bytes more "
                "(a wrong size, datatype or vox_offset)"
            )
        return
    for _ in nifti_voxel_chunks(path, header):
        pass


def count_nonfinite_nifti_voxels(path: Path) -> int:
    """NaN/Inf voxels stored in a float NIfTI file, counted chunk by chunk; 0 for other files."""
    header = read_nifti_header(path)
    if header is None or header.datatype not in NIFTI_FLOAT_DTYPES:
        return 0
    dtype = np.dtype(f"{header.endian}{NIFTI_FLOAT_DTYPES[header.datatype]}")
    return sum(int((~np.isfinite(np.frombuffer(c, dtype))).sum()) for c in nifti_voxel_chunks(path, header))


# NRRD and MetaImage (MHA/MHD) element types -> bytes per element.
NRRD_TYPE_BYTES = [
    (("longlong", "long long", "int64", "uint64"), 8),
    (("double",), 8),
    (("float",), 4),
    (("short", "int16", "uint16"), 2),
    (("char", "int8", "uint8"), 1),
    (("int", "int32", "uint32"), 4),
]
META_TYPE_BYTES = {
    "MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4, "MET_LONG": 4,
    "MET_ULONG": 4, "MET_FLOAT": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_DOUBLE": 8,
}  # fmt: skip


def _text_header(path: Path, ends: Callable[[str], bool]) -> tuple[dict[str, str], int]:
    """Key/value lines of a text header up to the line `ends` accepts, and the byte offset just after that line."""
    fields: dict[str, str] = {}
    offset = 0
    with open(path, "rb") as handle:
        for raw in iter(lambda: handle.readline(65536), b""):
            offset += len(raw)
            line = raw.decode("latin-1").rstrip("\r\n")
            if ends(line):
                fields["_end"] = line
                return fields, offset
            match = re.match(r"^([^:=#][^:=]*?)\s*(:=|:|=)\s*(.*)$", line)
            if match:
                fields[match.group(1).strip().lower()] = match.group(3).strip()
            if offset > 1 << 20:
                break
    raise InputError(f"{path}: truncated: the header never ends (no data after it)")


def _measure(path: Path, offset: int, codec: str) -> tuple[int, bool]:
    """Bytes of data from `offset` on (decompressed for "gzip", "bzip2", "zlib") and whether a compressed stream
    ends properly, streamed."""
    if codec == "raw":
        return max(0, path.stat().st_size - offset), True
    with open(path, "rb") as handle:
        handle.seek(offset)
        if codec == "bzip2":
            return _bunzipped_size(handle)
        return _inflated_size(handle, GZIP_WBITS if codec == "gzip" else zlib.MAX_WBITS)


def _inflated_size(handle: BinaryIO, wbits: int) -> tuple[int, bool]:
    """Decompressed bytes of a zlib or gzip stream (every member of a multi-member gzip file) and whether it ends
    properly (trailer and checksum read); streamed, the output of each step bounded."""
    held, inflater = 0, zlib.decompressobj(wbits)
    while chunk := handle.read(CHUNK_BYTES):
        while chunk:
            held += len(inflater.decompress(chunk, CHUNK_BYTES))
            chunk = inflater.unconsumed_tail
            if inflater.eof:
                rest = inflater.unused_data + handle.read(2)
                if wbits != GZIP_WBITS or not rest.startswith(b"\x1f\x8b"):
                    return held, True  # trailing bytes after the stream are ignored, as gzip and ITK do
                inflater, chunk = zlib.decompressobj(wbits), rest
    return held, inflater.eof


def _bunzipped_size(handle: BinaryIO) -> tuple[int, bool]:
    held, inflater = 0, bz2.BZ2Decompressor()
    while not inflater.eof and (chunk := handle.read(CHUNK_BYTES)):
        held += len(inflater.decompress(chunk, CHUNK_BYTES))
        while not inflater.eof and not inflater.needs_input:
            held += len(inflater.decompress(b"", CHUNK_BYTES))
    return held, inflater.eof


def _compare(path: Path, data_path: Path, promised: int, held: int, complete: bool, what: str) -> None:
    name = f"{path}" if data_path == path else f"{path}: data file {data_path}"
    if not complete or held < promised:
        cut = " (its compressed stream ends early)" if not complete else ""
        raise InputError(f"{name}: truncated: header promises {promised} bytes of {what}, the file holds {held}{cut}")
    if held > promised:
        raise InputError(
            f"{name}: damaged header: it promises {promised} bytes of {what}, the file holds {held - promised} more"
        )


def _measured(path: Path, data_path: Path, offset: int, codec: str) -> tuple[int, bool]:
    if not data_path.is_file():
        raise InputError(f"{path}: its data file {data_path} is missing")
    try:
        return _measure(data_path, offset, codec)
    except (OSError, zlib.error) as err:
        raise InputError(f"{data_path}: damaged compressed data ({str(err)[:120]})") from None


def check_nrrd(path: Path) -> None:
    """NRRD (attached or detached data): raw, gzip and bzip2 encodings are measured; ASCII ones are left to ITK."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"NRRD":
            return
    fields, end = _text_header(path, lambda line: line.strip() == "")
    try:
        sizes = [int(s) for s in fields["sizes"].split()]
    except (KeyError, ValueError):
        raise InputError(f"{path}: damaged header: no valid 'sizes' field") from None
    kind = fields.get("type", "").lower()
    size = next((n for names, n in NRRD_TYPE_BYTES if any(name in kind for name in names)), None)
    encoding = fields.get("encoding", "").lower()
    encoding = {"gz": "gzip", "bz2": "bzip2"}.get(encoding, encoding)
    if size is None or encoding not in ("raw", "gzip", "bzip2") or min(sizes, default=0) < 1:
        return
    voxels = int(np.prod(sizes, dtype=object))
    check_claimed_size(path, voxels, voxels * size)
    data_file = fields.get("data file", fields.get("datafile"))
    if data_file and (data_file.startswith("LIST") or " " in data_file or "%" in data_file):
        return  # data spread over several files: left to ITK
    data_path = (path.parent / data_file) if data_file else path
    offset = 0 if data_file else end
    skip = int(fields.get("byte skip", fields.get("byteskip", "0")) or 0)
    if int(fields.get("line skip", fields.get("lineskip", "0")) or 0) or skip < 0:
        return  # data at an offset told by lines or by the file's end: left to ITK
    held, complete = _measured(path, data_path, offset if encoding != "raw" else offset + skip, encoding)
    _compare(path, data_path, voxels * size + (skip if encoding != "raw" else 0), held, complete, "voxel data")


def check_metaimage(path: Path) -> None:
    """MetaImage (.mha with its data inside, .mhd with a detached .raw/.zraw): raw and zlib-compressed data."""
    fields, end = _text_header(path, lambda line: line.lower().replace(" ", "").startswith("elementdatafile="))
    data_file = fields["_end"].split("=", 1)[1].strip()
    try:
        sizes = [int(s) for s in fields["dimsize"].split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
    except (KeyError, ValueError):
        raise InputError(f"{path}: damaged header: no valid DimSize") from None
    size = META_TYPE_BYTES.get(fields.get("elementtype", "").upper().removesuffix("_ARRAY"))
    if size is None or min(sizes, default=0) < 1 or data_file.upper().startswith("LIST") or "%" in data_file:
        return
    voxels = int(np.prod(sizes, dtype=object))
    check_claimed_size(path, voxels, voxels * channels * size)
    local = data_file.upper() == "LOCAL"
    data_path = path if local else path.parent / data_file
    header_size = int(fields.get("headersize", "0") or 0)
    compressed = fields.get("compresseddata", "false").lower() == "true"
    if header_size < 0 and not compressed:
        return  # data at the end of the file: any length goes
    offset = end if local else max(0, header_size)
    held, complete = _measured(path, data_path, offset, "zlib" if compressed else "raw")
    _compare(path, data_path, voxels * channels * size, held, complete, "voxel data")


def is_dicom_file(path: Path) -> bool:
    """The DICOM part-10 preamble: 128 bytes, then "DICM"."""
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def check_dicom_pixel_data(path: Path) -> dict[str, str]:
    """A DICOM image file holds rows x columns x samples x bits/8 x frames bytes of pixel data; returns the tags
    read on the way (the series instance UID, so that a truncated file can be told which series it belongs to)."""
    import pydicom  # only for DICOM input: a second of import time otherwise spent for nothing

    try:
        dataset = pydicom.dcmread(path, defer_size=256, force=True)
    except Exception as err:  # noqa: BLE001 (pydicom raises many types for a damaged file: the same fault here)
        raise InputError(f"{path}: not a readable DICOM file ({type(err).__name__})") from None
    tags = {"series_uid": str(dataset.get("SeriesInstanceUID", "") or "")}
    if "PixelData" not in dataset:
        size = path.stat().st_size
        raise InputError(f"{path}: truncated: pixel data 0 bytes (no pixel data in its {size} bytes)")
    element = dataset.get_item(0x7FE00010, keep_deferred=True)
    length = getattr(element, "length", None)
    tell = getattr(element, "value_tell", None)
    if length is None or tell is None or length == 0xFFFFFFFF:
        return tags  # compressed (encapsulated) pixel data: its length is not known from the header
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples, bits = int(dataset.get("SamplesPerPixel", 1) or 1), int(dataset.BitsAllocated)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"{path}: damaged header: no valid rows, columns or bits allocated") from None
    expected = (rows * columns * samples * bits * frames + 7) // 8
    held = min(int(length), max(0, path.stat().st_size - int(tell)))
    if held < expected:
        raise InputError(
            f"{path}: truncated: pixel data {held} bytes, expected {expected} "
            f"({rows} x {columns} x {samples} sample(s) x {bits} bits x {frames} frame(s))"
        )
    return tags


# Which check each kind of scan file gets, by name; DICOM files are told by their preamble.
CHECKS: list[tuple[tuple[str, ...], Callable[[Path], None]]] = [
    ((".nii", ".nii.gz"), check_nifti),
    ((".nrrd", ".nhdr"), check_nrrd),
    ((".mha", ".mhd"), check_metaimage),
]


def check_scan_file(path: Path) -> None:
    """The check for `path`'s format, if there is one; raises a one-line InputError naming the file."""
    for suffixes, check in CHECKS:
        if path.name.lower().endswith(suffixes):
            check(path)
            return
    if is_dicom_file(path):
        check_dicom_pixel_data(path)
