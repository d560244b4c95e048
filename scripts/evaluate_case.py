"""Snakemake entry: metrics of one patient's final mask (against its label when there is one)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import json
from pathlib import Path

from laseg.entry import logged_step
from laseg.io import InputError, read_volume, write_json
from laseg.metrics import evaluate_case, quality_flag

with logged_step(snakemake.log[0]):
    mask, geometry = read_volume(snakemake.input.mask)
    truth = None
    if snakemake.input.label:
        truth, label_geometry = read_volume(snakemake.input.label[0])
        if not label_geometry.matches(geometry):
            raise InputError(f"{snakemake.input.label[0]}: label grid differs from the mask {snakemake.input.mask}")
    row = evaluate_case(snakemake.wildcards.patient, mask, truth, geometry.spacing_zyx_mm)
    row.update(quality_flag(json.loads(Path(snakemake.input.qc).read_text()), snakemake.params.review_above))
    write_json(snakemake.output.metrics, row)
    print(row, file=sys.stderr)
