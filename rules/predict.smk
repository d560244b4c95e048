# Per-patient inference onto the source grid, then the switchable post-processing.


rule predict:
    input:
        slices="results/slices/{patient}.npz",
        sidecar="results/slices/{patient}.json",
        checkpoint=checkpoint_path(),
        stage2=stage2_checkpoint(),
    output:
        probability="results/predict/{patient}_probability.nii.gz",
        mask="results/predict/{patient}_raw_mask.nii.gz",
        qc="results/predict/{patient}_qc.json",
    log:
        "logs/predict/{patient}.log",
    benchmark:
        "benchmarks/predict/{patient}.tsv"
    conda:
        "../envs/laseg.yaml"
    threads: 2
    resources:
        mem_mb=lambda wildcards, input: predict_memory_mb(input.sidecar, fallback_mb=4000),
    params:
        code=code_of("predict"),
        device=config["predict"]["device"],
        precision=config["predict"]["precision"],
        test_time_scales=TEST_TIME_SCALES,
        stage2_combine=config["stage2"]["combine"],
    script:
        "../scripts/predict.py"


rule postprocess:
    input:
        probability="results/predict/{patient}_probability.nii.gz",
    output:
        mask="results/masks/{patient}.nii.gz",
    log:
        "logs/postprocess/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("postprocess"),
        postprocess=config["postprocess"],
    script:
        "../scripts/postprocess.py"


rule dicom_seg:
    input:
        mask="results/masks/{patient}.nii.gz",
        series=case_image,
    output:
        seg="results/dicom_seg/{patient}.dcm",
    log:
        "logs/dicom_seg/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("dicom_seg"),
    script:
        "../scripts/dicom_seg.py"
