"""Turning a network's probability map into one clean binary left-atrium mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from laseg.masks import bounding_box

# Foreground components are 26-connected: thin oblique structures of the atrium (pulmonary-vein
# stubs, the appendage neck) often touch their neighbours only by an edge or corner on a coarse,
# anisotropic grid, and 6-connectivity would cut them off as "small components". Background is then
# 6-connected (the consistent digital-topology pair), which is scipy's default for hole filling.
FOREGROUND_CONNECTIVITY = ndimage.generate_binary_structure(3, 3)


@dataclass(frozen=True)
class PostprocessSettings:
    """How a probability map becomes a mask; the steps run in the order of the fields.

    threshold: voxels with probability >= threshold are foreground.
    closing_radius_mm: morphological closing with an ellipsoidal ball of this radius in millimetres
        (so fewer voxels along a coarse axis); 0 switches it off. It runs before the component
        selection so that a gap it bridges joins the pieces instead of one piece being dropped.
    largest_component: keep only the largest 26-connected component.
    fill_holes: fill cavities fully enclosed in 3D. Deliberately not slice by slice: an axial ring
        that is open in 3D (around a vein ostium, the mitral annulus) encloses real background,
        and filling it in 2D would add tissue that is not blood pool.
    """

    threshold: float = 0.5
    largest_component: bool = True
    closing_radius_mm: float = 0.0
    fill_holes: bool = True


def ball_structure(radius_mm: float, spacing_zyx_mm: tuple[float, float, float]) -> np.ndarray:
    """Voxels of the grid whose centres lie within `radius_mm` of the centre voxel's centre."""
    spacing = np.asarray(spacing_zyx_mm, dtype=float)
    half_widths = np.floor(radius_mm / spacing + 1e-9).astype(int)
    offsets = np.ogrid[tuple(slice(-h, h + 1) for h in half_widths)]
    squared_mm = sum((o * s) ** 2 for o, s in zip(offsets, spacing))
    return squared_mm <= radius_mm**2 + 1e-9


def closing(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary closing that treats everything outside the array as background.

    scipy's binary_closing truncates the dilation at the array edge and then erodes with a
    background border, eating into objects that touch the edge; padding by the ball's reach
    gives the dilation room, so the erosion takes back exactly what it added.
    """
    pad = [(h, h) for h in (np.array(structure.shape) // 2)]
    padded = np.pad(mask, pad)
    closed = ndimage.binary_erosion(ndimage.binary_dilation(padded, structure), structure)
    return closed[tuple(slice(p, p + n) for (p, _), n in zip(pad, mask.shape))]


def largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n_components = ndimage.label(mask, structure=FOREGROUND_CONNECTIVITY)
    if n_components <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def postprocess_mask(
    probability: np.ndarray, spacing_zyx_mm: tuple[float, float, float], settings: PostprocessSettings
) -> np.ndarray:
    """Threshold, close, keep the largest component and fill holes: a uint8 {0, 1} mask, same shape."""
    if probability.ndim != 3:
        raise ValueError(f"expected a 3D (z, y, x) probability map, got shape {probability.shape}")
    if settings.closing_radius_mm < 0:
        raise ValueError(f"closing_radius_mm must be >= 0, got {settings.closing_radius_mm}")
    mask = np.asarray(probability) >= settings.threshold
    result = np.zeros(mask.shape, dtype=np.uint8)
    if not mask.any():
        return result

    # Nothing below adds a voxel outside the mask's bounding box (a closing by a symmetric ball
    # stays inside it; background touching the box's faces is connected to the outside, so it is no
    # hole), hence working on that crop is exact, and much faster on a 256 x 256 x 130 scan.
    box = bounding_box(mask)
    crop = mask[box]
    structure = ball_structure(settings.closing_radius_mm, spacing_zyx_mm)

    if settings.closing_radius_mm > 0 and structure.sum() > 1:
        crop = closing(crop, structure)
    if settings.largest_component:
        crop = largest_component(crop)
    if settings.fill_holes:
        crop = ndimage.binary_fill_holes(crop)

    result[box] = crop
    return result
