"""Snakemake entry: segment one patient, writing probability and raw mask on the source grid."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from dataclasses import replace

import numpy as np
import torch

from laseg.entry import logged_step
from laseg.io import write_json, write_volume
from laseg.model import select_precision
from laseg.plan import training_volume_range_ml
from laseg.predict import load_model, predict_stack, view_disagreement
from laseg.slices import load_slices
from laseg.stage2 import load_stage2

with logged_step(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    net, model_config, checkpoint = load_model(snakemake.input.checkpoint, snakemake.params.device)
    stack = load_slices(snakemake.input.slices, snakemake.input.sidecar)
    precision = select_precision(snakemake.params.precision, next(net.parameters()).device)
    stage2 = None
    if snakemake.input.stage2:  # the 3D second stage refines the first inside the atrium's box
        stage2_net, stage2_config, _ = load_stage2(snakemake.input.stage2[0], snakemake.params.device)
        stage2 = (stage2_net, replace(stage2_config, combine=snakemake.params.stage2_combine))
    view_masks, stage2_report = {}, {}
    probability = predict_stack(
        net,
        model_config,
        stack,
        snakemake.params.test_time_scales,
        precision,
        view_masks=view_masks,
        stage2=stage2,
        stage2_report=stage2_report,
    )
    write_volume(probability, stack.source_geometry, snakemake.output.probability)
    write_volume((probability >= 0.5).astype(np.uint8), stack.source_geometry, snakemake.output.mask)
    qc = {
        "view_disagreement": view_disagreement(view_masks),
        "views": list(view_masks),
        # What evaluate_case judges the volume against: the model's training atria (None: its plan lacks them).
        "training_la_volume_ml": training_volume_range_ml(checkpoint.get("plan")),
        **stage2_report,
    }
    write_json(snakemake.output.qc, qc)
