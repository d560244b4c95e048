"""Snakemake entry: train the stage-2 3D U-Net on the training cases' atrium boxes; write checkpoint and history."""

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.checkpoint import save_checkpoint
from laseg.entry import logged_step
from laseg.model import select_device
from laseg.plan import plan_summary, planned_stage2
from laseg.slices import StoredStack
from laseg.stage2 import train_stage2
from laseg.train import resume_path_for, write_history

with logged_step(snakemake.log[0]):
    print(f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')}", file=sys.stderr, flush=True)
    stacks = [StoredStack.of(npz, sidecar) for npz, sidecar in zip(snakemake.input.slices, snakemake.input.sidecars)]
    plan = json.loads(Path(snakemake.input.plan).read_text())
    print(plan_summary(plan), file=sys.stderr, flush=True)
    # The plan's amount of training for the kind of device that trains (a GPU trains longer); execution-only
    # settings come from the config, not from params: changing them does not retrain.
    device = snakemake.config["train"]["device"]
    config, settings = planned_stage2(plan, snakemake.params.stage2, select_device(device).type)
    settings = replace(settings, threads=snakemake.threads, device=device)
    resume_path = resume_path_for(snakemake.output.checkpoint)
    checkpoint, history = train_stage2(stacks, config, settings, plan=plan, resume_path=resume_path)
    save_checkpoint(checkpoint, snakemake.output.checkpoint)
    write_history(history, snakemake.output.history, snakemake.output.curve)
    resume_path.unlink(missing_ok=True)
