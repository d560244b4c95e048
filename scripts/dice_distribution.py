"""Snakemake entry: the per-patient Dice and HD95 distribution of the scored patients."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

import pandas as pd

from laseg.entry import logged_step
from laseg.plots import plot_dice_distribution

with logged_step(snakemake.log[0]):
    plot_dice_distribution(pd.read_csv(snakemake.input.per_patient), snakemake.output.plot)
