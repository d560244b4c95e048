"""The two masks' colours, everywhere they are drawn: contours in videos and montages, point clouds, meshes,
the 3D viewer. Green is the prediction, red the expert reference."""

from __future__ import annotations

PREDICTION_RGB = (0.1, 0.8, 0.2)
REFERENCE_RGB = (0.9, 0.1, 0.1)
TEXT_RGB = (1.0, 1.0, 1.0)


def rgb8(rgb: tuple[float, float, float]) -> tuple[int, int, int]:
    """0..1 floats as 8-bit channel values."""
    return tuple(round(255 * c) for c in rgb)  # type: ignore[return-value]
