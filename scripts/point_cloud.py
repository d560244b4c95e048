"""Snakemake entry: the surface of one mask as a coloured PLY point cloud in world millimetres."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import read_volume
from laseg.visualize import surface_points_world_mm, write_point_cloud

with logged_step(snakemake.log[0]):
    mask, geometry = read_volume(snakemake.input.mask)
    points = surface_points_world_mm(mask, geometry)
    write_point_cloud(points, tuple(snakemake.params.rgb), snakemake.output.cloud)
    print(f"{len(points)} surface points", file=sys.stderr)
