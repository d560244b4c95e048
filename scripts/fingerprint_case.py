"""Snakemake entry: one training case's fingerprint (spacing, field of view, intensities, atrium size)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import write_json
from laseg.plan import fingerprint_case
from laseg.slices import load_slices

with logged_step(snakemake.log[0]):
    write_json(
        snakemake.output.fingerprint, fingerprint_case(load_slices(snakemake.input.slices, snakemake.input.sidecar))
    )
