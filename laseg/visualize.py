"""Overlay videos of prediction and reference contours, and surface point clouds in world millimetres."""

from __future__ import annotations

import os

import cv2
import imageio.v2 as imageio
import numpy as np
from scipy import ndimage

from laseg.colours import PREDICTION_RGB as PREDICTION_FLOAT_RGB
from laseg.colours import REFERENCE_RGB, rgb8
from laseg.colours import TEXT_RGB as TEXT_FLOAT_RGB
from laseg.io import Geometry, atomic_path, canonical_spacing_zyx_mm, to_canonical
from laseg.masks import per_slice_dice

# Colours of RGB frames (cv2 draws whatever channel order the array has; ours is RGB).
TRUTH_RGB = rgb8(REFERENCE_RGB)
PREDICTION_RGB = rgb8(PREDICTION_FLOAT_RGB)
TEXT_RGB = rgb8(TEXT_FLOAT_RGB)

FACE_NEIGHBOURS = ndimage.generate_binary_structure(3, 1)

EMPTY_PLY = "".join(
    line + "\n"
    for line in [
        "ply",
        "format binary_little_endian 1.0",
        "element vertex 0",
        *(f"property double {axis}" for axis in ("x", "y", "z", "nx", "ny", "nz")),
        *(f"property uchar {channel}" for channel in ("red", "green", "blue")),
        "end_header",
    ]
)


def window_to_uint8(image: np.ndarray) -> np.ndarray:
    """Map the scan's 1st..99.5th intensity percentile onto 0..255 (one window for all slices)."""
    values = image.astype(np.float32, copy=False)
    # The percentiles of a subsample are as good and much faster on a full scan.
    sample = values.ravel()[:: max(1, values.size // 2_000_000)]
    low, high = np.percentile(sample, [1.0, 99.5])
    if high <= low:
        high = low + 1.0
    return (np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def frame_size_px(shape_yx: tuple[int, int], spacing_yx_mm: tuple[float, float], max_size_px: int) -> tuple[int, int]:
    """(height, width) with square pixels in mm, the longer side max_size_px, both sides even."""
    height_mm = shape_yx[0] * spacing_yx_mm[0]
    width_mm = shape_yx[1] * spacing_yx_mm[1]
    px_per_mm = max_size_px / max(height_mm, width_mm)
    # Round down to even so neither side exceeds the limit; yuv420p halves chroma in both directions.
    height = max(2, int(height_mm * px_per_mm) // 2 * 2)
    width = max(2, int(width_mm * px_per_mm) // 2 * 2)
    return height, width


def draw_contours(frame: np.ndarray, mask_slice: np.ndarray, rgb: tuple[int, int, int], thickness: int) -> None:
    size = (frame.shape[1], frame.shape[0])
    resized = cv2.resize(mask_slice.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    # RETR_LIST keeps inner contours too, so holes in a mask are visible as such.
    contours, _ = cv2.findContours(resized, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(frame, contours, -1, rgb, thickness, lineType=cv2.LINE_8)


def slice_caption(slice_index: int, n_slices: int, dice: float | None) -> str:
    """`slice 12/64`, with `  Dice 0.913` (or `  no LA`) when a reference is known (dice not None)."""
    caption = f"slice {slice_index + 1}/{n_slices}"
    if dice is not None:
        caption += "  no LA" if np.isnan(dice) else f"  Dice {dice:.3f}"
    return caption


def draw_legend(
    frame: np.ndarray,
    slice_index: int,
    n_slices: int,
    with_truth: bool,
    patient: str | None = None,
    dice: float | None = None,
) -> None:
    scale = max(0.35, frame.shape[0] / 1000.0)
    line_px = int(22 * scale / 0.5)
    labels = [(patient, TEXT_RGB)] if patient else []
    labels += [
        (slice_caption(slice_index, n_slices, dice if with_truth else None), TEXT_RGB),
        ("prediction", PREDICTION_RGB),
    ]
    if with_truth:
        labels.append(("reference", TRUTH_RGB))
    for row, (text, rgb) in enumerate(labels):
        origin = (6, line_px * (row + 1))
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, 1, cv2.LINE_AA)


def canonical_overlay_inputs(
    image: np.ndarray, pred: np.ndarray, truth: np.ndarray | None, geometry: Geometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Scan windowed to uint8 and 0/1 masks, all checked against `geometry` and in the canonical view."""
    expected = tuple(reversed(geometry.size))
    for name, array in (("image", image), ("prediction", pred), ("reference", truth)):
        if array is not None and array.shape != expected:
            raise ValueError(f"{name} shape {array.shape} does not match geometry size (z,y,x) {expected}")
    grey = window_to_uint8(to_canonical(image, geometry))
    pred_canonical = to_canonical((np.asarray(pred) != 0).astype(np.uint8), geometry, mask=True)
    truth_canonical = (
        None if truth is None else to_canonical((np.asarray(truth) != 0).astype(np.uint8), geometry, mask=True)
    )
    return grey, pred_canonical, truth_canonical


def overlay_frames(
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray | None,
    geometry: Geometry,
    *,
    max_size_px: int = 512,
    patient: str | None = None,
) -> list[np.ndarray]:
    """One RGB uint8 frame per canonical axial slice: the scan in grey, the reference contour red,
    the prediction contour green (drawn last, so it is the one visible where they coincide), and a
    caption: the patient (when given), the slice, and with a reference that slice's Dice."""
    grey, pred_canonical, truth_canonical = canonical_overlay_inputs(image, pred, truth, geometry)
    _, spacing_y, spacing_x = canonical_spacing_zyx_mm(geometry)
    height, width = frame_size_px(grey.shape[1:], (spacing_y, spacing_x), max_size_px)
    thickness = 1 if max(height, width) < 400 else 2

    frames = []
    n_slices = grey.shape[0]
    dice_per_slice = per_slice_dice(pred_canonical, truth_canonical) if truth_canonical is not None else None
    for k in range(n_slices):
        scan = cv2.resize(grey[k], (width, height), interpolation=cv2.INTER_LINEAR)
        frame = np.ascontiguousarray(np.repeat(scan[:, :, None], 3, axis=2))
        if truth_canonical is not None:
            draw_contours(frame, truth_canonical[k], TRUTH_RGB, thickness)
        draw_contours(frame, pred_canonical[k], PREDICTION_RGB, thickness)
        slice_dice = None if dice_per_slice is None else float(dice_per_slice[k])
        draw_legend(frame, k, n_slices, truth_canonical is not None, patient, slice_dice)
        frames.append(frame)
    return frames


def write_overlay_video(frames: list[np.ndarray], path: str | os.PathLike, fps: int = 10) -> None:
    """Write RGB frames as an H.264 (yuv420p) MP4 that browsers play, atomically."""
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    height, width = frames[0].shape[:2]
    if height % 2 or width % 2:
        raise ValueError(f"{path}: frame size {width}x{height} must be even for yuv420p")
    for i, frame in enumerate(frames):
        if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
            raise ValueError(f"{path}: frame {i} is {frame.shape} {frame.dtype}, expected ({height}, {width}, 3) uint8")
    with atomic_path(path, suffix=".mp4") as tmp:
        writer = imageio.get_writer(
            tmp,
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            # Sizes are already even; 2 stops imageio rescaling them to multiples of 16.
            macro_block_size=2,
            # Index at the front of the file, so a browser starts playing before the download ends.
            ffmpeg_params=["-movflags", "+faststart"],
        )
        try:
            for frame in frames:
                writer.append_data(frame)
        finally:
            writer.close()


def count_video_frames(path: str | os.PathLike) -> int:
    """Number of frames decoded from a video (the ffmpeg reader's nframes is inf, so count them)."""
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        return sum(1 for _ in reader)
    finally:
        reader.close()


def surface_points_world_mm(mask: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(N, 3) world (x, y, z) millimetres of the mask's boundary voxel centres, in the file's
    physical space: origin + direction @ (index * spacing), index (x, y, z) = reversed array axes."""
    expected = tuple(reversed(geometry.size))
    if mask.shape != expected:
        raise ValueError(f"mask shape {mask.shape} does not match geometry size (z,y,x) {expected}")
    foreground = np.asarray(mask) != 0
    # Boundary: foreground with a background face-neighbour; outside the array counts as background.
    boundary = foreground & ~ndimage.binary_erosion(foreground, FACE_NEIGHBOURS, border_value=0)
    index_xyz = np.argwhere(boundary)[:, ::-1].astype(float)
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    return (index_xyz * np.asarray(geometry.spacing_mm)) @ direction.T + np.asarray(geometry.origin_mm)


def write_point_cloud(points_mm: np.ndarray, rgb: tuple[float, float, float], path: str | os.PathLike) -> None:
    """Write points as a binary PLY with one colour (RGB in 0..1) and estimated normals, atomically."""
    import open3d as o3d  # heavy, and needs libusb at import: only load it when writing clouds

    points = np.asarray(points_mm, dtype=np.float64).reshape(-1, 3)
    colour = np.asarray(rgb, dtype=np.float64)
    if colour.shape != (3,) or colour.min() < 0 or colour.max() > 1:
        raise ValueError(f"{path}: colour must be three values in 0..1, got {rgb}")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    cloud.colors = o3d.utility.Vector3dVector(np.tile(colour, (len(points), 1)))
    if len(points) >= 3:
        # Normals from the 16 nearest neighbours' plane, turned to point away from the centroid:
        # right for the roughly convex atrium body, and cheap (no global orientation propagation).
        cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=16))
        cloud.orient_normals_towards_camera_location(points.mean(axis=0))
        cloud.normals = o3d.utility.Vector3dVector(-np.asarray(cloud.normals))
    with atomic_path(path, suffix=".ply") as tmp:
        if len(points) == 0:
            # open3d refuses to write an empty cloud, but an empty prediction still needs its file
            # (the workflow expects one per case): the same header, no vertices.
            tmp.write_text(EMPTY_PLY)
        elif not o3d.io.write_point_cloud(str(tmp), cloud, write_ascii=False):
            raise OSError(f"{path}: open3d could not write the point cloud")


def keyframe_index(pred: np.ndarray, truth: np.ndarray | None, geometry: Geometry) -> int:
    """The canonical slice with the most left atrium (reference if known, else prediction)."""
    mask = to_canonical(
        (np.asarray(truth if truth is not None and truth.any() else pred) != 0).astype(np.uint8), geometry, mask=True
    )
    per_slice = mask.reshape(len(mask), -1).sum(axis=1)
    return int(per_slice.argmax()) if per_slice.any() else len(mask) // 2


def write_keyframe(
    frames: list[np.ndarray], pred: np.ndarray, truth: np.ndarray | None, geometry: Geometry, path: str | os.PathLike
) -> None:
    """The overlay frame through the largest atrial cross-section, as a lossless PNG."""
    frame = frames[keyframe_index(pred, truth, geometry)]
    with atomic_path(path, suffix=".png") as tmp:
        imageio.imwrite(tmp, frame, format="PNG")
