# The 3D second stage: its own plan and checkpoint, so a stage-2 setting never retrains the first stage.


rule plan_stage2:
    input:
        fingerprint="results/plan/fingerprint.json",
    output:
        plan="results/plan/stage2_plan.json",
    log:
        "logs/plan_stage2.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("plan_stage2"),
        preset=config["plan"]["preset"],
        # Only the keys the plan resolves: a change to another stage-2 setting must not replan (and so retrain).
        stage2={key: config["stage2"][key] for key in STAGE2_PLANNED_KEYS},
    script:
        "../scripts/plan_stage2.py"


rule train_stage2:
    input:
        slices=expand("results/slices/{patient}.npz", patient=TRAIN),
        sidecars=expand("results/slices/{patient}.json", patient=TRAIN),
        plan="results/plan/stage2_plan.json",
    output:
        checkpoint="results/model/stage2.pt",
        history="results/model/stage2_history.csv",
        curve="results/model/stage2_training_curve.png",
    log:
        "logs/train_stage2.log",
    benchmark:
        "benchmarks/train_stage2.tsv"
    conda:
        "../envs/laseg.yaml"
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        # From the inputs: one full scan plus every training case's atrium box (laseg/resources.py).
        mem_mb=lambda wildcards, input: stage2_train_memory_mb(input.sidecars, fallback_mb=4000),
        runtime=int(STAGE2_CAP_MINUTES) + 30,
    params:
        code=code_of("train_stage2"),
        # combine is predict's; enabled only decides whether this rule runs.
        stage2={key: value for key, value in config["stage2"].items() if key not in ("enabled", "combine")},
    script:
        "../scripts/train_stage2.py"
