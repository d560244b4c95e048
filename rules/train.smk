# One U-Net for the cohort, trained on the training split's slice stacks.


rule train:
    input:
        slices=expand("results/slices/{patient}.npz", patient=TRAIN),
        sidecars=expand("results/slices/{patient}.json", patient=TRAIN),
        plan="results/plan/plan.json",
    output:
        checkpoint="results/model/model.pt",
        history="results/model/history.csv",
        curve="results/model/training_curve.png",
    log:
        "logs/train.log",
    benchmark:
        "benchmarks/train.tsv"
    conda:
        "../envs/laseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        # From the inputs: one full scan plus every training scan at the plan's grid (laseg/resources.py).
        mem_mb=lambda wildcards, input: train_memory_mb(input.sidecars, input.plan, fallback_mb=6000),
        runtime=int(TRAINING_CAP_MINUTES) + 30,
    params:
        code=code_of("train"),
        # Execution-only settings (threads, device) stay out: changing them must not retrain.
        model=config["model"],
        train={key: value for key, value in config["train"].items() if key not in ("threads", "device")},
    script:
        "../scripts/train.py"
