# The data's fingerprint (per training case, then the cohort) and the plan that train follows.


rule fingerprint_case:
    input:
        slices="results/slices/{patient}.npz",
        sidecar="results/slices/{patient}.json",
    output:
        fingerprint="results/plan/cases/{patient}.json",
    log:
        "logs/fingerprint_case/{patient}.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("fingerprint_case"),
    script:
        "../scripts/fingerprint_case.py"


rule fingerprint:
    input:
        cases=expand("results/plan/cases/{patient}.json", patient=TRAIN),
    output:
        fingerprint="results/plan/fingerprint.json",
    log:
        "logs/fingerprint.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("fingerprint"),
    script:
        "../scripts/fingerprint.py"


rule plan:
    input:
        fingerprint="results/plan/fingerprint.json",
    output:
        plan="results/plan/plan.json",
    log:
        "logs/plan.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("plan"),
        preset=config["plan"]["preset"],
        explicit=EXPLICIT_SETTINGS,
    script:
        "../scripts/plan.py"
