# Left-atrium segmentation of 3D cardiac MRI: NIfTI scans -> U-Net -> masks, metrics, visuals, 3D models, report.
from snakemake.utils import min_version

min_version("9.0")


configfile: f"{workflow.basedir}/config/config.yaml"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/plan.smk"
include: "rules/train.smk"
include: "rules/stage2.smk"
include: "rules/predict.smk"
include: "rules/evaluate.smk"
include: "rules/visualize.smk"
include: "rules/report.smk"
include: "rules/crossval.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
