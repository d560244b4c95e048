"""Snakemake entry: the cross-validation table, per case and per fold (Dice, HD95, training minutes)."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # noqa: F821 - the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.metrics import cross_validation_tables, write_csv

with logged_step(snakemake.log[0]):  # noqa: F821
    per_case, per_fold = cross_validation_tables(snakemake.input.metrics, snakemake.input.histories)  # noqa: F821
    write_csv(per_case, snakemake.output.per_case)  # noqa: F821
    write_csv(per_fold, snakemake.output.per_fold)  # noqa: F821
    print(per_fold.to_string(), file=sys.stderr)
