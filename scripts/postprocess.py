"""Snakemake entry: threshold and clean one patient's probability map into the final mask."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import read_volume, write_volume
from laseg.postprocess import PostprocessSettings, postprocess_mask

with logged_step(snakemake.log[0]):
    probability, geometry = read_volume(snakemake.input.probability)
    settings = PostprocessSettings(**snakemake.params.postprocess)
    mask = postprocess_mask(probability, geometry.spacing_zyx_mm, settings)
    write_volume(mask, geometry, snakemake.output.mask)
    print(f"{settings}: {int(mask.sum())} voxels", file=sys.stderr)
