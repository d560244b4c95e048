# Metrics per segmented patient (Dice etc. where a label exists, volume always) and their aggregation.


rule evaluate_case:
    input:
        mask="results/masks/{patient}.nii.gz",
        label=case_label,
    output:
        metrics="results/metrics/cases/{patient}.json",
    log:
        "logs/evaluate_case/{patient}.log",
    script:
        "../scripts/evaluate_case.py"


rule aggregate_metrics:
    input:
        expand("results/metrics/cases/{patient}.json", patient=PREDICTED),
    output:
        per_patient="results/metrics/per_patient.csv",
        summary="results/metrics/summary.csv",
    params:
        test=TEST,
    log:
        "logs/aggregate_metrics.log",
    script:
        "../scripts/aggregate_metrics.py"
