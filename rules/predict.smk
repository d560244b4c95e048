# Per-patient inference onto the source grid, then the switchable post-processing.


rule predict:
    input:
        slices="results/slices/{patient}.npz",
        sidecar="results/slices/{patient}.json",
        checkpoint=checkpoint_path(),
    output:
        probability="results/predict/{patient}_probability.nii.gz",
        mask="results/predict/{patient}_raw_mask.nii.gz",
    params:
        device=config["predict"]["device"],
        precision=config["predict"]["precision"],
        test_time_scales=TEST_TIME_SCALES,
    threads: 2
    log:
        "logs/predict/{patient}.log",
    benchmark:
        "benchmarks/predict/{patient}.tsv"
    conda:
        "../envs/laseg.yaml"
    script:
        "../scripts/predict.py"


rule postprocess:
    input:
        probability="results/predict/{patient}_probability.nii.gz",
    output:
        mask="results/masks/{patient}.nii.gz",
    params:
        postprocess=config["postprocess"],
    log:
        "logs/postprocess/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    script:
        "../scripts/postprocess.py"
