# Metrics and plausibility QC per segmented patient (Dice etc. where a label exists, volume, size and shape
# always) and their aggregation.


rule evaluate_case:
    input:
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
        qc="results/predict/{patient}_qc.json",
        # Plausibility QC (laseg/qc.py) counts the components before post-processing.
        raw_mask="results/predict/{patient}_raw_mask.nii.gz",
    output:
        metrics="results/metrics/cases/{patient}.json",
    log:
        "logs/evaluate_case/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("evaluate_case"),
        review_above=config["qc"]["review_above"],
    script:
        "../scripts/evaluate_case.py"


rule aggregate_metrics:
    input:
        expand("results/metrics/cases/{patient}.json", patient=PREDICTED),
    output:
        per_patient="results/metrics/per_patient.csv",
        summary="results/metrics/summary.csv",
    log:
        "logs/aggregate_metrics.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("aggregate_metrics"),
        test=TEST,
        train=TRAINED_ON,
    script:
        "../scripts/aggregate_metrics.py"


rule la_volume_index:
    input:
        per_patient="results/metrics/per_patient.csv",
        patients=[PATIENTS_TSV] if PATIENTS_TSV else [],
    output:
        table="results/clinical/la_volume_index.csv",
    log:
        "logs/la_volume_index.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("la_volume_index"),
        upper_limits_ml_m2=config["clinical"]["lavi_upper_limits_ml_m2"],
    script:
        "../scripts/la_volume_index.py"


rule la_shape_case:
    input:
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
    output:
        measures="results/clinical/shape/{patient}.json",
    log:
        "logs/la_shape_case/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("la_shape_case"),
        # Lengths and area are measured on the surface the mesh files hold, smoothed alike.
        smoothing_iterations=config["mesh"]["smoothing_iterations"],
    script:
        "../scripts/la_shape_case.py"


rule la_shape:
    input:
        cases=expand("results/clinical/shape/{patient}.json", patient=PREDICTED),
        per_patient="results/metrics/per_patient.csv",
    output:
        table="results/clinical/la_shape.csv",
        agreement="results/clinical/la_shape_agreement.csv",
    log:
        "logs/la_shape.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("la_shape"),
    script:
        "../scripts/la_shape.py"


rule volume_agreement:
    input:
        per_patient="results/metrics/per_patient.csv",
    output:
        bland_altman="results/plots/bland_altman.png",
        scatter="results/plots/volume_scatter.png",
        stats="results/metrics/volume_agreement.json",
    log:
        "logs/volume_agreement.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("volume_agreement"),
    script:
        "../scripts/volume_agreement.py"


rule dice_distribution:
    input:
        per_patient="results/metrics/per_patient.csv",
    output:
        plot="results/plots/dice_distribution.png",
    log:
        "logs/dice_distribution.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("dice_distribution"),
    script:
        "../scripts/dice_distribution.py"
