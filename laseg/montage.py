"""A one-page montage per patient: evenly spaced axial slices through the LA with both contours and a legend."""

from __future__ import annotations

import os

import numpy as np

from laseg.io import Geometry, atomic_path, canonical_spacing_zyx_mm
from laseg.masks import bounding_box, per_slice_dice
from laseg.visualize import canonical_overlay_inputs, slice_caption

PREDICTION_COLOUR = "#00e000"
REFERENCE_COLOUR = "#ff2020"
MARGIN_MM = 15.0  # scan shown around the atrium, for context
COLUMNS = 4


def montage_slices(la_per_slice: np.ndarray, n: int) -> list[int]:
    """Up to n slice indices spread evenly from the first to the last slice with LA (the centre
    slices of the scan when there is none), each slice at most once."""
    present = np.flatnonzero(la_per_slice)
    if present.size:
        first, last = int(present[0]), int(present[-1])
    else:
        middle = len(la_per_slice) // 2
        first, last = max(0, middle - n // 2), min(len(la_per_slice) - 1, middle + n // 2)
    return sorted(set(np.rint(np.linspace(first, last, num=max(1, n))).astype(int).tolist()))


def la_crop(la: np.ndarray, spacing_yx_mm: tuple[float, float], margin_mm: float = MARGIN_MM) -> tuple[slice, slice]:
    """In-plane rows and columns around every LA voxel of every slice, plus a margin; the whole slice if none."""
    if not la.any():
        return slice(0, la.shape[1]), slice(0, la.shape[2])
    box = bounding_box(la)
    crop = []
    for axis, spacing in zip((1, 2), spacing_yx_mm):
        pad = int(np.ceil(margin_mm / spacing))
        crop.append(slice(max(0, box[axis].start - pad), min(la.shape[axis], box[axis].stop + pad)))
    return crop[0], crop[1]


def write_montage(
    image: np.ndarray,
    pred: np.ndarray,
    truth: np.ndarray | None,
    geometry: Geometry,
    patient: str,
    path: str | os.PathLike,
    n_slices: int = 12,
) -> list[int]:
    """Draw the montage PNG (radiological view: patient's right on the left); returns the canonical slices shown."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    grey, pred_c, truth_c = canonical_overlay_inputs(image, pred, truth, geometry)
    la = pred_c.astype(bool) | (truth_c.astype(bool) if truth_c is not None else False)
    _, spacing_y, spacing_x = canonical_spacing_zyx_mm(geometry)
    rows_crop, cols_crop = la_crop(la, (spacing_y, spacing_x))
    shown = montage_slices(la.reshape(len(la), -1).any(axis=1), n_slices)
    dice = per_slice_dice(pred_c, truth_c) if truth_c is not None else None

    height_mm = (rows_crop.stop - rows_crop.start) * spacing_y
    width_mm = (cols_crop.stop - cols_crop.start) * spacing_x
    n_rows = int(np.ceil(len(shown) / COLUMNS))
    n_cols = min(COLUMNS, len(shown))
    tile_in = 2.9
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(tile_in * n_cols, (tile_in * height_mm / width_mm + 0.3) * n_rows + 1.0),
        squeeze=False,
        layout="constrained",
    )
    # Pixel centres at (index + 0.5) * spacing, so contours and image share millimetre coordinates.
    extent = (0.0, width_mm, height_mm, 0.0)
    for ax, k in zip(axes.ravel(), shown):
        ax.imshow(grey[k, rows_crop, cols_crop], cmap="gray", vmin=0, vmax=255, extent=extent, interpolation="bilinear")
        y = (np.arange(rows_crop.stop - rows_crop.start) + 0.5) * spacing_y
        x = (np.arange(cols_crop.stop - cols_crop.start) + 0.5) * spacing_x
        if truth_c is not None and truth_c[k, rows_crop, cols_crop].any():
            ax.contour(x, y, truth_c[k, rows_crop, cols_crop], levels=[0.5], colors=REFERENCE_COLOUR, linewidths=1.4)
        if pred_c[k, rows_crop, cols_crop].any():
            ax.contour(x, y, pred_c[k, rows_crop, cols_crop], levels=[0.5], colors=PREDICTION_COLOUR, linewidths=1.4)
        ax.set_title(slice_caption(k, len(grey), None if dice is None else float(dice[k])), fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[len(shown) :]:
        ax.axis("off")
    # A 10 mm scale bar on the first tile: the crop changes from patient to patient.
    first = axes.ravel()[0]
    first.plot(
        [0.05 * width_mm, 0.05 * width_mm + 10.0], [0.94 * height_mm] * 2, color="white", lw=3, solid_capstyle="butt"
    )
    first.text(0.05 * width_mm + 5.0, 0.90 * height_mm, "10 mm", color="white", ha="center", va="bottom", fontsize=8)
    handles = [Line2D([], [], color=PREDICTION_COLOUR, lw=2, label="prediction")]
    if truth_c is not None:
        handles.append(Line2D([], [], color=REFERENCE_COLOUR, lw=2, label="reference (expert label)"))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False, fontsize=10)
    fig.suptitle(f"{patient}: axial slices through the left atrium (patient's right on the left)", fontsize=11)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return shown
