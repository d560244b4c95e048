"""Snakemake entry: train the U-Net on the training split and write checkpoint, history and curve."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # noqa: F821 - the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.model import ModelConfig
from laseg.slices import load_slices
from laseg.train import TrainSettings, save_checkpoint, train_model, write_history

with logged_step(snakemake.log[0]):  # noqa: F821
    stacks = [load_slices(npz, sidecar) for npz, sidecar in zip(snakemake.input.slices, snakemake.input.sidecars)]  # noqa: F821
    settings = TrainSettings(**{**snakemake.params.train, "threads": snakemake.threads})  # noqa: F821
    checkpoint, history = train_model(stacks, ModelConfig(**snakemake.params.model), settings)  # noqa: F821
    save_checkpoint(checkpoint, snakemake.output.checkpoint)  # noqa: F821
    write_history(history, snakemake.output.history, snakemake.output.curve)  # noqa: F821
