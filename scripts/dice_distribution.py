"""Snakemake entry: the per-patient Dice and HD95 distribution of the scored patients."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.metrics import read_patient_table
from laseg.plots import plot_dice_distribution

with logged_step(snakemake.log[0]):
    plot_dice_distribution(read_patient_table(snakemake.input.per_patient), snakemake.output.plot)
