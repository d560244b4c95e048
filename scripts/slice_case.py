"""Snakemake entry: check one patient's scan (and label) and write its lossless slice stack."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.slices import load_checked_case, save_slices

with logged_step(snakemake.log[0]):
    label = snakemake.input.label[0] if snakemake.input.label else None
    stack = load_checked_case(snakemake.wildcards.patient, snakemake.input.image, label)
    save_slices(stack, snakemake.output.slices, snakemake.output.sidecar)
    print(
        f"{stack.patient}: {stack.image.shape[0]} slices of {stack.image.shape[1:]}, labelled={label is not None}",
        file=sys.stderr,
    )
