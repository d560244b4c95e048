"""Snakemake entry: train the U-Net on the training split and write checkpoint, history and curve."""

import os
import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import json
from dataclasses import replace
from pathlib import Path

from laseg.checkpoint import save_checkpoint
from laseg.entry import logged_step
from laseg.plan import plan_summary, planned_training
from laseg.slices import StoredStack
from laseg.train import resume_path_for, train_model, write_history

with logged_step(snakemake.log[0]):
    print(
        f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", file=sys.stderr, flush=True
    )  # a GPU job shows its GPU
    # Read as needed, one scan at a time: the job holds the network-grid volumes, not every full scan.
    stacks = [StoredStack.of(npz, sidecar) for npz, sidecar in zip(snakemake.input.slices, snakemake.input.sidecars)]
    plan = json.loads(Path(snakemake.input.plan).read_text())
    print(plan_summary(plan), file=sys.stderr, flush=True)
    model_config, settings = planned_training(plan, snakemake.params.model, snakemake.params.train)
    # Execution-only settings come from the config, not from params: changing them does not retrain.
    settings = replace(settings, threads=snakemake.threads, device=snakemake.config["train"]["device"])
    # A job killed mid-training (OOM killer, scancel, a node failure) continues after its last epoch.
    resume_path = resume_path_for(snakemake.output.checkpoint)
    checkpoint, history = train_model(stacks, model_config, settings, plan=plan, resume_path=resume_path)
    save_checkpoint(checkpoint, snakemake.output.checkpoint)
    write_history(history, snakemake.output.history, snakemake.output.curve)
    resume_path.unlink(missing_ok=True)
