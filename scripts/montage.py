"""Snakemake entry: one patient's montage of axial slices through the LA with both contours."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import InputError, read_volume
from laseg.montage import write_montage

with logged_step(snakemake.log[0]):
    image, geometry = read_volume(snakemake.input.image)
    pred, pred_geometry = read_volume(snakemake.input.mask)
    if not pred_geometry.matches(geometry):
        raise InputError(f"{snakemake.input.mask}: mask grid differs from the scan {snakemake.input.image}")
    truth = read_volume(snakemake.input.label[0])[0] if snakemake.input.label else None
    shown = write_montage(
        image, pred, truth, geometry, snakemake.wildcards.patient, snakemake.output.montage, snakemake.params.n_slices
    )
    print(f"canonical slices shown: {shown}", file=sys.stderr)
