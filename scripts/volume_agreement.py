"""Snakemake entry: Bland-Altman and predicted-vs-reference plots of LA volume over the labelled patients."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import write_json
from laseg.metrics import read_patient_table
from laseg.plots import labelled_volumes, plot_bland_altman, plot_volume_scatter

with logged_step(snakemake.log[0]):
    volumes = labelled_volumes(read_patient_table(snakemake.input.per_patient))
    stats = plot_bland_altman(volumes, snakemake.output.bland_altman)
    plot_volume_scatter(volumes, snakemake.output.scatter)
    write_json(snakemake.output.stats, {**stats, "patients": list(volumes["patient"])})
    print(stats, file=sys.stderr)
