"""Offline 3D views of predicted and reference LA surfaces: a self-contained WebGL HTML page and a PNG render."""

from __future__ import annotations

import base64
import html
import json
import os
from dataclasses import dataclass

import numpy as np

from laseg.colours import PREDICTION_RGB, REFERENCE_RGB  # noqa: F401 (the viewer's surface colours)
from laseg.io import atomic_path
from laseg.mesh import SurfaceMesh, face_normals
from laseg.templating import template_text

MAX_WEBGL1_VERTICES = 65535  # Uint16 element indices: WebGL 1 without extensions


@dataclass(frozen=True)
class ViewedSurface:
    name: str  # "prediction" or "reference"
    mesh: SurfaceMesh
    rgb: tuple[float, float, float]
    volume_ml: float  # from the voxel count, as in the metrics table


def decimate(mesh: SurfaceMesh, max_triangles: int) -> SurfaceMesh:
    """Quadric-error decimation to at most max_triangles (open3d); smaller meshes come back unchanged."""
    if mesh.n_triangles <= max_triangles:
        return mesh
    import open3d as o3d  # heavy, and needs libusb at import: only load it when decimating

    full = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(mesh.vertices_mm), o3d.utility.Vector3iVector(mesh.faces.astype(np.int32))
    )
    reduced = full.simplify_quadric_decimation(target_number_of_triangles=int(max_triangles))
    reduced.remove_unreferenced_vertices()
    return SurfaceMesh(np.asarray(reduced.vertices, dtype=np.float64), np.asarray(reduced.triangles, dtype=np.int64))


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def viewer_payload(surfaces: list[ViewedSurface]) -> dict:
    """What the page draws: per surface its name, colour, volume and little-endian base64 geometry."""
    items = []
    for surface in surfaces:
        if len(surface.mesh.vertices_mm) > MAX_WEBGL1_VERTICES:
            raise ValueError(
                f"{surface.name}: {len(surface.mesh.vertices_mm)} vertices, more than WebGL 1 can index; decimate first"
            )
        items.append(
            {
                "name": surface.name,
                "rgb": [float(c) for c in surface.rgb],
                "volume_ml": None if np.isnan(surface.volume_ml) else round(float(surface.volume_ml), 2),
                "triangles": surface.mesh.n_triangles,
                "positions": _b64(surface.mesh.vertices_mm.astype("<f4")),
                "indices": _b64(surface.mesh.faces.astype("<u2")),
            }
        )
    return {"surfaces": items}


def viewer_html(surfaces: list[ViewedSurface], title: str, subtitle: str) -> str:
    """One offline HTML page (no network, no libraries): rotate, zoom, pan, standard views, toggles."""
    data = json.dumps(viewer_payload(surfaces)).replace("<", "\\u003c")
    # The page, its style and its script are package files (laseg/templates), inlined here: one offline file.
    page, style, script = (template_text(f"viewer3d.{kind}") for kind in ("html", "css", "js"))
    return (
        page.replace("__STYLE__", style)
        .replace("__SCRIPT__", script)
        .replace("__TITLE__", html.escape(title))
        .replace("__SUBTITLE__", html.escape(subtitle))
        .replace("__DATA__", data)
    )


def write_viewer_html(surfaces: list[ViewedSurface], title: str, subtitle: str, path: str | os.PathLike) -> None:
    with atomic_path(path, suffix=".html") as tmp:
        tmp.write_text(viewer_html(surfaces, title, subtitle), encoding="utf-8")


# Views as rows of the world-to-screen rotation: screen right, screen up, towards the viewer, each a
# world LPS direction. Anterior: the patient faces us, so their left is on our right.
STANDARD_VIEWS = {
    "anterior": ((1, 0, 0), (0, 0, 1), (0, -1, 0)),
    "posterior": ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
    "left": ((0, 1, 0), (0, 0, 1), (1, 0, 0)),
    "right": ((0, -1, 0), (0, 0, 1), (-1, 0, 0)),
    "superior": ((-1, 0, 0), (0, -1, 0), (0, 0, 1)),
    "inferior": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
}


def render_png(
    surfaces: list[ViewedSurface],
    title: str,
    path: str | os.PathLike,
    views: tuple[str, ...] = ("anterior", "posterior"),
) -> None:
    """A static shaded render (matplotlib) from standard views, axes in world mm, for the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    azimuth_elevation = {
        "anterior": (-90, 0),
        "posterior": (90, 0),
        "left": (0, 0),
        "right": (180, 0),
        "superior": (-90, 90),
        "inferior": (-90, -90),
    }
    shown = [s for s in surfaces if s.mesh.n_triangles]
    fig = plt.figure(figsize=(5.0 * len(views), 5.0))
    everything = np.concatenate([s.mesh.vertices_mm for s in shown]) if shown else np.zeros((1, 3))
    low, high = everything.min(axis=0), everything.max(axis=0)
    centre, half = (low + high) / 2, max(float((high - low).max()) / 2, 1.0) * 1.05
    for column, view in enumerate(views):
        ax = fig.add_subplot(1, len(views), column + 1, projection="3d")
        polygons, colours = [], []
        for surface in shown:
            # The reference is drawn translucent so the prediction inside it stays visible.
            alpha = 0.35 if surface.name == "reference" and len(shown) > 1 else 1.0
            mesh = surface.mesh
            normals = face_normals(mesh)
            azimuth, elevation = np.radians(azimuth_elevation[view])
            towards_viewer = np.array(
                [np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth), np.sin(elevation)]
            )
            shade = 0.35 + 0.65 * np.abs(normals @ towards_viewer)
            rgba = np.column_stack([np.clip(np.outer(shade, surface.rgb), 0, 1), np.full(len(shade), alpha)])
            polygons.append(mesh.vertices_mm[mesh.faces])
            colours.append(rgba)
        if polygons:
            collection = Poly3DCollection(
                np.concatenate(polygons), facecolors=np.concatenate(colours), edgecolors="none", linewidths=0
            )
            ax.add_collection3d(collection)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1), zoom=1.3)  # the default leaves a wide empty frame around the box
        ax.view_init(elev=azimuth_elevation[view][1], azim=azimuth_elevation[view][0])
        ax.set_proj_type("ortho")
        labels = ("x: right → left (mm)", "y: anterior → posterior (mm)", "z: inferior → superior (mm)")
        # The axis along the line of sight collapses to a point: unlabelled, it stays out of the way.
        depth_axis = {"anterior": 1, "posterior": 1, "left": 0, "right": 0, "superior": 2, "inferior": 2}[view]
        for axis, (label_setter, ticks_setter, label) in enumerate(
            zip((ax.set_xlabel, ax.set_ylabel, ax.set_zlabel), (ax.set_xticks, ax.set_yticks, ax.set_zticks), labels)
        ):
            if axis == depth_axis:
                ticks_setter([])
            else:
                label_setter(label, labelpad=8)
        ax.tick_params(labelsize=8)
        ax.set_title(f"{view} view", fontsize=11)
    handles = [
        Line2D(
            [], [], color=s.rgb, lw=6, label=f"{s.name}" + ("" if np.isnan(s.volume_ml) else f" ({s.volume_ml:.1f} mL)")
        )
        for s in surfaces
    ]
    if not shown:
        fig.text(0.5, 0.5, "empty segmentation: no surface", ha="center", fontsize=14)
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=11)
    fig.suptitle(title, fontsize=13)
    fig.subplots_adjust(left=0.03, right=0.95, top=0.88, bottom=0.13, wspace=0.2)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
