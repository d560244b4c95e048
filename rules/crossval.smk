# k-fold cross-validation: the same train/predict/postprocess/evaluate steps, once per fold.


use rule train as train_fold with:
    input:
        unpack(fold_training_inputs),
    output:
        checkpoint="results/cv/fold_{fold}/model.pt",
        history="results/cv/fold_{fold}/history.csv",
        curve="results/cv/fold_{fold}/training_curve.png",
    log:
        "logs/cv/train_fold_{fold}.log",
    benchmark:
        "benchmarks/cv/train_fold_{fold}.tsv"


use rule predict as predict_fold with:
    input:
        slices="results/slices/{patient}.npz",
        sidecar="results/slices/{patient}.json",
        checkpoint="results/cv/fold_{fold}/model.pt",
        stage2=fold_stage2_checkpoint,
    output:
        probability="results/cv/fold_{fold}/predict/{patient}_probability.nii.gz",
        mask="results/cv/fold_{fold}/predict/{patient}_raw_mask.nii.gz",
        qc="results/cv/fold_{fold}/predict/{patient}_qc.json",
    log:
        "logs/cv/predict_fold_{fold}/{patient}.log",
    benchmark:
        "benchmarks/cv/predict_fold_{fold}/{patient}.tsv"


use rule postprocess as postprocess_fold with:
    input:
        probability="results/cv/fold_{fold}/predict/{patient}_probability.nii.gz",
    output:
        mask="results/cv/fold_{fold}/masks/{patient}.nii.gz",
    log:
        "logs/cv/postprocess_fold_{fold}/{patient}.log",


use rule evaluate_case as evaluate_fold with:
    input:
        mask="results/cv/fold_{fold}/masks/{patient}.nii.gz",
        label=case_label,
        qc="results/cv/fold_{fold}/predict/{patient}_qc.json",
        raw_mask="results/cv/fold_{fold}/predict/{patient}_raw_mask.nii.gz",
    output:
        metrics="results/cv/fold_{fold}/metrics/{patient}.json",
    log:
        "logs/cv/evaluate_fold_{fold}/{patient}.log",


rule aggregate_cv:
    input:
        metrics=cv_case_metrics(),
        histories=expand("results/cv/fold_{fold}/history.csv", fold=range(len(FOLDS))),
    output:
        per_case="results/cv/per_case.csv",
        per_fold="results/cv/per_fold.csv",
    log:
        "logs/cv/aggregate_cv.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("aggregate_cv"),
    script:
        "../scripts/aggregate_cv.py"


use rule fingerprint as fingerprint_fold with:
    input:
        cases=fold_fingerprint_inputs,
    output:
        fingerprint="results/cv/fold_{fold}/fingerprint.json",
    log:
        "logs/cv/fingerprint_fold_{fold}.log",


use rule plan as plan_fold with:
    input:
        fingerprint="results/cv/fold_{fold}/fingerprint.json",
    output:
        plan="results/cv/fold_{fold}/plan.json",
    log:
        "logs/cv/plan_fold_{fold}.log",


use rule plan_stage2 as plan_stage2_fold with:
    input:
        fingerprint="results/cv/fold_{fold}/fingerprint.json",
    output:
        plan="results/cv/fold_{fold}/stage2_plan.json",
    log:
        "logs/cv/plan_stage2_fold_{fold}.log",


use rule train_stage2 as train_stage2_fold with:
    input:
        unpack(fold_stage2_inputs),
    output:
        checkpoint="results/cv/fold_{fold}/stage2.pt",
        history="results/cv/fold_{fold}/stage2_history.csv",
        curve="results/cv/fold_{fold}/stage2_training_curve.png",
    log:
        "logs/cv/train_stage2_fold_{fold}.log",
    benchmark:
        "benchmarks/cv/train_stage2_fold_{fold}.tsv"
