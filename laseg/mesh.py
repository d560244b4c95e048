"""Surface meshes of masks in world millimetres (LPS): marching cubes, Taubin smoothing, PLY and STL files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse
from skimage import measure

from laseg.io import Geometry, atomic_path
from laseg.masks import bounding_box

# ITK (and so SimpleITK, NIfTI as read here, DICOM) physical space: x to the patient's left, y to
# posterior, z to superior. 3D Slicer reads the tag in a mesh file's header and converts to its own RAS.
WORLD_SPACE = "LPS"


@dataclass(frozen=True)
class SurfaceMesh:
    """A closed triangle surface: vertices (N, 3) in world mm (LPS), faces (M, 3) counter-clockwise seen from
    outside."""

    vertices_mm: np.ndarray
    faces: np.ndarray

    @property
    def n_triangles(self) -> int:
        return len(self.faces)


def index_to_world_mm(index_zyx: np.ndarray, geometry: Geometry) -> np.ndarray:
    """(N, 3) continuous voxel indices in array (z, y, x) order -> (N, 3) world (x, y, z) mm:
    origin + direction @ (index_xyz * spacing), ITK's TransformContinuousIndexToPhysicalPoint."""
    index_xyz = np.asarray(index_zyx, dtype=float)[:, ::-1]
    direction = np.asarray(geometry.direction, dtype=float).reshape(3, 3)
    return (index_xyz * np.asarray(geometry.spacing_mm)) @ direction.T + np.asarray(geometry.origin_mm)


def enclosed_volume_mm3(mesh: SurfaceMesh) -> float:
    """Signed volume by the divergence theorem; positive when faces wind counter-clockwise seen from outside."""
    if mesh.n_triangles == 0:
        return 0.0
    v0, v1, v2 = (mesh.vertices_mm[mesh.faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6.0)


def taubin_smooth(
    vertices: np.ndarray, faces: np.ndarray, iterations: int, lam: float = 0.5, mu: float = -0.53
) -> np.ndarray:
    """Taubin's lambda|mu smoothing with the uniform Laplacian: removes the voxel staircase without the
    shrinkage plain Laplacian smoothing causes (mu < -lambda re-inflates what each lambda step shrank)."""
    if iterations <= 0 or len(faces) == 0:
        return vertices
    n = len(vertices)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adjacency.data[:] = 1.0  # shared edges appear twice; a neighbour counts once
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    mean_of_neighbours = sparse.diags(1.0 / np.maximum(degree, 1.0)) @ adjacency
    smoothed = vertices.copy()
    for _ in range(iterations):
        for factor in (lam, mu):
            smoothed = smoothed + factor * (mean_of_neighbours @ smoothed - smoothed)
    return smoothed


def surface_mesh(mask: np.ndarray, geometry: Geometry, smoothing_iterations: int = 10) -> SurfaceMesh:
    """Marching cubes at the 0.5 level of a binary mask, in world mm on the scan's own grid.

    The surface runs halfway between foreground and background voxel centres, so it encloses about
    the voxel-count volume; the array is padded so that a mask touching the edge still gives a
    closed surface. An empty mask gives an empty mesh.
    """
    expected = tuple(reversed(geometry.size))
    if mask.shape != expected:
        raise ValueError(f"mask shape {mask.shape} does not match geometry size (z,y,x) {expected}")
    foreground = np.asarray(mask) != 0
    if not foreground.any():
        return SurfaceMesh(np.empty((0, 3)), np.empty((0, 3), dtype=np.int64))
    # Marching cubes over the bounding box only: the scan is mostly background and cost is per voxel.
    box = bounding_box(foreground)
    start = np.array([s.start for s in box])
    crop = foreground[box]
    padded = np.pad(crop, 1).astype(np.float32)
    vertices_index, faces, _, _ = measure.marching_cubes(padded, level=0.5, allow_degenerate=False)
    vertices_index = vertices_index + (start - 1)
    # Smoothing in index space keeps its strength in voxels whatever the spacing; the world
    # transform is affine, so smoothing before or after it differs only by that anisotropy.
    vertices_index = taubin_smooth(vertices_index, faces, smoothing_iterations)
    # A mask touching the scan's edge closes there, on the outer face of its voxels; smoothing may push
    # those vertices a fraction of a voxel further out, beyond the scan. Keep them on it.
    vertices_index = np.clip(vertices_index, -0.5, np.array(mask.shape) - 0.5)
    vertices_mm = index_to_world_mm(vertices_index, geometry)
    mesh = SurfaceMesh(vertices_mm, faces.astype(np.int64))
    # Reversing (z, y, x) to (x, y, z) and a direction with determinant -1 each mirror the surface,
    # turning the winding inside out; the sign of the enclosed volume says which way it ended up.
    if enclosed_volume_mm3(mesh) < 0:
        mesh = SurfaceMesh(vertices_mm, mesh.faces[:, ::-1].copy())
    return mesh


def face_normals(mesh: SurfaceMesh) -> np.ndarray:
    v0, v1, v2 = (mesh.vertices_mm[mesh.faces[:, i]] for i in range(3))
    normals = np.cross(v1 - v0, v2 - v0)
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.where(lengths > 0, lengths, 1.0)


def write_mesh_ply(mesh: SurfaceMesh, rgb: tuple[float, float, float], path: str | os.PathLike) -> None:
    """Binary PLY with one vertex colour (RGB in 0..1) and the coordinate system in a header comment."""
    colour = np.asarray(rgb, dtype=float)
    if colour.shape != (3,) or colour.min() < 0 or colour.max() > 1:
        raise ValueError(f"{path}: colour must be three values in 0..1, got {rgb}")
    header = "".join(
        line + "\n"
        for line in [
            "ply",
            "format binary_little_endian 1.0",
            f"comment SPACE={WORLD_SPACE}",
            "comment laseg left-atrium surface, world millimetres",
            f"element vertex {len(mesh.vertices_mm)}",
            "property float x",
            "property float y",
            "property float z",
            "property uchar red",
            "property uchar green",
            "property uchar blue",
            f"element face {mesh.n_triangles}",
            "property list uchar int vertex_indices",
            "end_header",
        ]
    )
    vertices = np.zeros(len(mesh.vertices_mm), dtype=[("xyz", "<f4", 3), ("rgb", "u1", 3)])
    vertices["xyz"] = mesh.vertices_mm
    vertices["rgb"] = np.round(colour * 255).astype(np.uint8)
    faces = np.zeros(mesh.n_triangles, dtype=[("n", "u1"), ("abc", "<i4", 3)])
    faces["n"] = 3
    faces["abc"] = mesh.faces
    with atomic_path(path, suffix=".ply") as tmp, open(tmp, "wb") as handle:
        handle.write(header.encode("ascii"))
        handle.write(vertices.tobytes())
        handle.write(faces.tobytes())


def write_mesh_stl(mesh: SurfaceMesh, path: str | os.PathLike) -> None:
    """Binary STL (per-facet normals, millimetres); the 80-byte header names the coordinate system as Slicer does."""
    header = f"laseg left-atrium surface, mm SPACE={WORLD_SPACE}".encode("ascii").ljust(80, b" ")
    facets = np.zeros(mesh.n_triangles, dtype=[("normal", "<f4", 3), ("corners", "<f4", (3, 3)), ("attribute", "<u2")])
    if mesh.n_triangles:
        facets["normal"] = face_normals(mesh)
        facets["corners"] = mesh.vertices_mm[mesh.faces]
    with atomic_path(path, suffix=".stl") as tmp, open(tmp, "wb") as handle:
        handle.write(header)
        handle.write(np.uint32(mesh.n_triangles).tobytes())
        handle.write(facets.tobytes())


def read_mesh_ply(path: str | os.PathLike) -> SurfaceMesh:
    """Read back a PLY written by `write_mesh_ply` (the viewer's input)."""
    data = Path(path).read_bytes()
    end = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[:end].decode("ascii").splitlines()
    n_vertices = int(next(line.split()[2] for line in lines if line.startswith("element vertex")))
    n_faces = int(next(line.split()[2] for line in lines if line.startswith("element face")))
    vertex_dtype = np.dtype([("xyz", "<f4", 3), ("rgb", "u1", 3)])
    vertices = np.frombuffer(data, dtype=vertex_dtype, count=n_vertices, offset=end)
    faces = np.frombuffer(
        data, dtype=[("n", "u1"), ("abc", "<i4", 3)], count=n_faces, offset=end + n_vertices * vertex_dtype.itemsize
    )
    return SurfaceMesh(vertices["xyz"].astype(np.float64), faces["abc"].astype(np.int64))
