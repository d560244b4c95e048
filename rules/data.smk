# Input data: the synthetic cohort (when chosen) and every patient's checked, lossless slice stack.


rule synthesize_case:
    output:
        image=f"{SYNTHETIC_DIR}/imagesTr/{{patient}}.nii.gz",
        label=f"{SYNTHETIC_DIR}/labelsTr/{{patient}}.nii.gz",
    log:
        "logs/synthesize_case/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("synthesize_case"),
        seed=config["synthetic"]["seed"],
        shape_zyx=config["synthetic"]["shape_zyx"],
    script:
        "../scripts/synthesize_case.py"


rule slice_case:
    input:
        unpack(case_inputs),
    output:
        slices="results/slices/{patient}.npz",
        sidecar="results/slices/{patient}.json",
    log:
        "logs/slice_case/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("slice_case"),
    script:
        "../scripts/slice_case.py"
