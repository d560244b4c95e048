"""Snakemake entry: write one deterministic synthetic patient (image and label) in MSD layout."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.synthetic import synthesize_case, write_case

with logged_step(snakemake.log[0]):
    index = int(snakemake.wildcards.patient.rsplit("_", 1)[1])
    case = synthesize_case(snakemake.params.seed, index, tuple(snakemake.params.shape_zyx))
    write_case(case, snakemake.output.image, snakemake.output.label)
    print(
        f"{snakemake.wildcards.patient}: size {case.geometry.size}, spacing {case.geometry.spacing_mm}", file=sys.stderr
    )
