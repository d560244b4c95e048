"""Snakemake entry: the cross-validation table, per case and per fold (Dice, HD95, training minutes)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.metrics import cross_validation_tables, write_csv

with logged_step(snakemake.log[0]):
    per_case, per_fold = cross_validation_tables(snakemake.input.metrics, snakemake.input.histories)
    write_csv(per_case, snakemake.output.per_case)
    write_csv(per_fold, snakemake.output.per_fold)
    print(per_fold.to_string(), file=sys.stderr)
