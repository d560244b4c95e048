# One U-Net for the cohort, trained on the training split's slice stacks.


rule train:
    input:
        slices=expand("results/slices/{patient}.npz", patient=TRAIN),
        sidecars=expand("results/slices/{patient}.json", patient=TRAIN),
    output:
        checkpoint="results/model/model.pt",
        history="results/model/history.csv",
        curve="results/model/training_curve.png",
    params:
        model=config["model"],
        train=config["train"],
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        mem_mb=6000,
        runtime=int(config["train"]["budget_minutes"]) + 30,
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/train.tsv"
    conda:
        "../envs/laseg.yaml"
    script:
        "../scripts/train.py"
