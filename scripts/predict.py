"""Snakemake entry: segment one patient, writing probability and raw mask on the source grid."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import numpy as np
import torch

from laseg.entry import logged_step
from laseg.io import write_json, write_volume
from laseg.model import select_precision
from laseg.predict import load_model, predict_stack, view_disagreement
from laseg.slices import load_slices

with logged_step(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    net, model_config, _ = load_model(snakemake.input.checkpoint, snakemake.params.device)
    stack = load_slices(snakemake.input.slices, snakemake.input.sidecar)
    precision = select_precision(snakemake.params.precision, next(net.parameters()).device)
    view_masks = {}
    probability = predict_stack(
        net, model_config, stack, snakemake.params.test_time_scales, precision, view_masks=view_masks
    )
    write_volume(probability, stack.source_geometry, snakemake.output.probability)
    write_volume((probability >= 0.5).astype(np.uint8), stack.source_geometry, snakemake.output.mask)
    write_json(snakemake.output.qc, {"view_disagreement": view_disagreement(view_masks), "views": list(view_masks)})
