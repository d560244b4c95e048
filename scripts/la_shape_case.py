"""Snakemake entry: LA diameters, maximal diameter, surface area and sphericity of one patient's mask (and label)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import InputError, read_volume, write_json
from laseg.shape import shape_row

with logged_step(snakemake.log[0]):
    mask, geometry = read_volume(snakemake.input.mask)
    truth = None
    if snakemake.input.label:
        truth, label_geometry = read_volume(snakemake.input.label[0])
        if not label_geometry.matches(geometry):
            raise InputError(f"{snakemake.input.label[0]}: label grid differs from the mask {snakemake.input.mask}")
    row = shape_row(snakemake.wildcards.patient, mask, truth, geometry, snakemake.params.smoothing_iterations)
    write_json(snakemake.output.measures, row)
    print(row, file=sys.stderr)
