"""Snakemake entry: the plan (every setting train and predict use, with its reason) from the fingerprint."""

import json
import sys
from pathlib import Path

sys.path.insert(0, f"{snakemake.scriptdir}/..")  # the laseg package beside the workflow

from laseg.entry import logged_step
from laseg.io import write_json
from laseg.plan import make_plan, plan_summary

with logged_step(snakemake.log[0]):
    plan = make_plan(
        json.loads(Path(snakemake.input.fingerprint).read_text()), snakemake.params.explicit, snakemake.params.preset
    )
    print(plan_summary(plan), file=sys.stderr)
    write_json(snakemake.output.plan, plan)
