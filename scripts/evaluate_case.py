"""Snakemake entry: metrics and plausibility QC of one patient's final mask (against its label when there is one)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import json
from pathlib import Path

from laseg.entry import logged_step
from laseg.io import Geometry, InputError, read_volume, write_json
from laseg.metrics import evaluate_case
from laseg.qc import quality_columns


def same_grid_volume(path: str, reference: str, geometry: Geometry):
    volume, own = read_volume(path)
    if not own.matches(geometry):
        raise InputError(f"{path}: grid differs from the mask {reference}")
    return volume


with logged_step(snakemake.log[0]):
    inputs = snakemake.input
    mask, geometry = read_volume(inputs.mask)
    truth = same_grid_volume(inputs.label[0], inputs.mask, geometry) if inputs.label else None
    row = evaluate_case(snakemake.wildcards.patient, mask, truth, geometry.spacing_zyx_mm)
    raw_mask = same_grid_volume(inputs.raw_mask, inputs.mask, geometry)
    predict_qc = json.loads(Path(inputs.qc).read_text())
    # predict copied the model's training volume range from its checkpoint (predict jobs before 2026-12-08 did not).
    recorded = predict_qc.get("training_la_volume_ml")
    training_range = (float(recorded[0]), float(recorded[1])) if recorded else None
    if training_range is None:
        print("LA volume not checked: the model's plan records no training LA volume range", file=sys.stderr)
    review_above = snakemake.params.review_above
    row.update(quality_columns(mask, raw_mask, geometry.spacing_zyx_mm, training_range, predict_qc, review_above))
    write_json(snakemake.output.metrics, row)
    print(row, file=sys.stderr)
