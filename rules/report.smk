# One HTML report for the run: summary table, cohort figures, per-patient pictures, configuration, versions.


rule report:
    input:
        unpack(report_inputs),
    output:
        report="results/report.html",
    log:
        "logs/report.log",
    conda:
        "../envs/laseg.yaml"
    params:
        code=code_of("report"),
        patients=PREDICTED,
        test=TEST,
        train=TRAINED_ON,
        trained_in_this_run=not config["predict"]["checkpoint"],
        config=config,
    script:
        "../scripts/report.py"
