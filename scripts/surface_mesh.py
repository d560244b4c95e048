"""Snakemake entry: the smoothed marching-cubes surface of one mask in world mm (LPS), as PLY and STL."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import read_volume
from laseg.mesh import enclosed_volume_mm3, surface_mesh, write_mesh_ply, write_mesh_stl

with logged_step(snakemake.log[0]):
    mask, geometry = read_volume(snakemake.input.mask)
    mesh = surface_mesh(mask, geometry, snakemake.params.smoothing_iterations)
    write_mesh_ply(mesh, tuple(snakemake.params.rgb), snakemake.output.ply)
    write_mesh_stl(mesh, snakemake.output.stl)
    voxel_ml = int((mask != 0).sum()) * geometry.voxel_volume_mm3 / 1000.0
    print(
        f"{mesh.n_triangles} triangles, encloses {enclosed_volume_mm3(mesh) / 1000.0:.2f} mL "
        f"(voxels: {voxel_ml:.2f} mL)",
        file=sys.stderr,
    )
