"""The workflow on a real single-node SLURM cluster, against a local run of the same configuration.

tests/slurm/start_cluster.sh brings up munged, slurmctld and slurmd (one node: this machine, one GPU
declared in gres.conf); the pipeline then runs with `--profile profiles/slurm`, its train job is
cancelled with scancel half-way, and a rerun must redo only the unfinished work. The cluster tests
skip when SLURM is not installed, and fail instead when LASEG_REQUIRE_SLURM=1 (as in CI).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import REPO, SNAKEMAKE
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from laseg.io import read_volume

PROFILE = REPO / "profiles" / "slurm"
START = REPO / "tests" / "slurm" / "start_cluster.sh"
STOP = REPO / "tests" / "slurm" / "stop_cluster.sh"
CONDA_ENV = REPO / "envs" / "laseg.yaml"
CLUSTER_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "scontrol", "sinfo")
# What a machine without SLURM lacks; hidden from PATH for the dry run.
SLURM_COMMANDS = {
    *CLUSTER_TOOLS,
    *[
        "sacct",
        "sacctmgr",
        "salloc",
        "sattach",
        "sbcast",
        "scrontab",
        "sdiag",
        "sprio",
        "sreport",
        "srun",
        "sshare",
        "sstat",
        "strigger",
        "sview",
    ],
    *["slurmdbd", "slurmstepd"],
}

TEST_PATIENT = "syn_001"
# Tiny but complete. The epoch limit binds (the budget is far away), so training is bit-for-bit
# reproducible on CPU with the same thread count and the SLURM run must equal the local one.
CONFIG = {
    "synthetic": {"n_patients": 4, "shape_zyx": [64, 112, 112]},
    "split": {"test": [TEST_PATIENT]},
    "train": {
        "max_epochs": 4,  # the cancel lands after the first epoch, with three to go
        "iterations_per_epoch": 5,
        "batch_size": 8,
        "patch_px": 64,
        "budget_minutes": 30,
        "threads": 2,
        "device": "cpu",  # both runs on CPU even on a machine with a real GPU: compared bit for bit
    },
    "predict": {"device": "cpu"},
}

# What the runs make: the SLURM run the core of the pipeline plus one video and one point cloud (every
# rule kind: data, GPU training, inference, metrics, visuals), the local reference what is compared.
# Explicit targets keep the SLURM run at 15 jobs, each of which pays two Snakemake start-ups.
SLURM_TARGETS = [
    "results/metrics/per_patient.csv",
    f"results/videos/{TEST_PATIENT}.mp4",
    f"results/pointclouds/{TEST_PATIENT}_pred.ply",
]
LOCAL_TARGETS = ["results/metrics/per_patient.csv"]

slurm = pytest.mark.slurm


# --- is there a cluster to start? -----------------------------------------------------------------


def cluster_unavailable(path: str | None = None) -> str | None:
    """Why this machine cannot host the test cluster, or None when it can."""
    missing = [tool for tool in CLUSTER_TOOLS if shutil.which(tool, path=path) is None]
    if missing:
        return f"SLURM is not installed here (no {', '.join(missing)}); CI installs it: apt-get install slurm-wlm munge"
    if os.geteuid() != 0:
        return "the SLURM test cluster must be started as root (slurmd runs jobs as their users)"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip with the reason; but fail when the environment demands the cluster tests (CI)."""
    if os.environ.get("LASEG_REQUIRE_SLURM") == "1":
        pytest.fail(f"LASEG_REQUIRE_SLURM=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def test_missing_slurm_skips_but_fails_when_required(monkeypatch, tmp_path):
    reason = cluster_unavailable(path=str(tmp_path))  # an empty PATH: no SLURM at all
    assert reason is not None and "slurm-wlm munge" in reason
    monkeypatch.delenv("LASEG_REQUIRE_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        skip_or_fail(reason)
    monkeypatch.setenv("LASEG_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="LASEG_REQUIRE_SLURM=1 but SLURM is not installed"):
        skip_or_fail(reason)


# --- the profile and the conda environment, no cluster needed --------------------------------------


def _path_without_slurm(tmp_path: Path) -> str:
    """A PATH holding everything on the current PATH except SLURM's commands (links in one folder)."""
    folder = tmp_path / "bin_without_slurm"
    folder.mkdir()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = folder / entry.name
            if entry.name in SLURM_COMMANDS or target.exists() or target.is_symlink():
                continue
            if entry.is_file() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    return str(folder)


def test_dry_run_with_slurm_profile_works_without_slurm(tmp_path):
    path = _path_without_slurm(tmp_path)
    assert shutil.which("sbatch", path=path) is None and shutil.which("sinfo", path=path) is None
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    result = subprocess.run(
        _command(tmp_path, [], "-n", "--profile", str(PROFILE)),
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PATH": path}, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    train, slice_job = (
        re.search(rf"rule {rule}:\n(?:    .*\n)*?    resources: (.*)\n", output) for rule in ("train", "slice_case")
    )
    assert train and slice_job, output[-4000:]
    # mem_mb: the rule's fallback, since a dry run has no inputs to size it from (laseg/resources.py).
    assert {"gpu=1", "slurm_partition=gpu", "mem_mb=6000"} <= set(train.group(1).split(", ")), train.group(1)
    assert {"mem_mb=4000", "runtime=30"} <= set(slice_job.group(1).split(", ")), slice_job.group(1)
    assert "gpu" not in slice_job.group(1), slice_job.group(1)
    # Cross-validation's train jobs are train jobs too, and so are the second stage's: GPU partition, memory from
    # the rule (its fallback in a dry run), runtime from its own cap.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**CONFIG, "cv": {"folds": 2}, "stage2": {"enabled": True}}))
    result = subprocess.run(
        _command(tmp_path, [], "-n", "--profile", str(PROFILE)),
        cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PATH": path}, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    train_fold = re.search(r"rule train_fold:\n(?:    .*\n)*?    resources: (.*)\n", output)
    assert result.returncode == 0 and train_fold, output[-4000:]
    assert {"gpu=1", "slurm_partition=gpu", "mem_mb=6000"} <= set(train_fold.group(1).split(", ")), train_fold.group(1)
    for rule in ("train_stage2", "train_stage2_fold"):
        stage2 = re.search(rf"rule {rule}:\n(?:    .*\n)*?    resources: (.*)\n", output)
        assert stage2, (rule, output[-4000:])
        assert {"gpu=1", "slurm_partition=gpu", "mem_mb=4000", "runtime=75"} <= set(stage2.group(1).split(", ")), rule


def test_slurm_profile_is_not_loaded_implicitly_and_names_its_executor():
    assert not (REPO / "profiles" / "default").exists()  # snakemake would load it for every run
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["slurm-status-command"] == "squeue"  # works without an accounting database
    assert profile["jobs"] >= 1 and profile["latency-wait"] >= 30


def _pyproject_dependencies() -> list[Requirement]:
    import tomllib

    return [Requirement(r) for r in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]]


def _conda_pip_pins() -> list[Requirement]:
    env = yaml.safe_load(CONDA_ENV.read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "envs/laseg.yaml needs exactly one pip: list"
    return [Requirement(r) for r in pip_lists[0]]


def test_conda_env_pins_the_same_packages_as_pyproject_within_its_ranges():
    wanted = {canonicalize_name(r.name): r for r in _pyproject_dependencies()}
    pinned = {canonicalize_name(r.name): r for r in _conda_pip_pins()}
    only_pyproject, only_env = sorted(set(wanted) - set(pinned)), sorted(set(pinned) - set(wanted))
    assert not only_pyproject and not only_env, (
        f"only in pyproject: {only_pyproject}; only in envs/laseg.yaml: {only_env}"
    )
    for name, pin in pinned.items():
        specs = list(pin.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"envs/laseg.yaml: {pin} is not pinned with =="
        assert wanted[name].specifier.contains(specs[0].version, prereleases=True), (
            f"envs/laseg.yaml pins {pin}, outside pyproject's {wanted[name]}"
        )
    python = [
        d
        for d in yaml.safe_load(CONDA_ENV.read_text())["dependencies"]
        if isinstance(d, str) and d.startswith("python")
    ]
    assert python == ["python=3.11"], python


def test_every_rule_runs_in_the_conda_env():
    """With --software-deployment-method conda a rule without `conda:` would silently use the submit host's Python."""
    without = []
    for smk in sorted((REPO / "rules").glob("*.smk")):
        blocks = re.split(r"^(?=(?:rule|checkpoint|use rule) )", smk.read_text(), flags=re.MULTILINE)
        for block in blocks:
            header = re.match(r"(rule|checkpoint) (\w+)", block)
            if header and not re.search(r'^    conda:\n        "\.\./envs/laseg\.yaml"', block, re.MULTILINE):
                without.append(f"{smk.name}: {header.group(2)}")
    assert not without, f'rules without conda: "../envs/laseg.yaml": {without}'


# --- the cluster -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = cluster_unavailable()
    if reason:
        skip_or_fail(reason)
    state = tmp_path_factory.mktemp("slurm_cluster")
    started = subprocess.run(["bash", str(START), str(state)], capture_output=True, text=True, check=False)
    try:
        if started.returncode == 3:  # this machine cannot host it (e.g. a real cluster's slurm.conf)
            skip_or_fail(started.stderr.strip())
        assert started.returncode == 0, (
            f"start_cluster.sh failed:\n{started.stdout}\n{started.stderr}\n{_tail_logs(state)}"
        )
        yield state
    finally:
        subprocess.run(["bash", str(STOP), str(state)], capture_output=True, text=True, check=False)


def _tail_logs(state: Path) -> str:
    return "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in sorted((state / "log").glob("*.log")))


def _command(workdir: Path, targets: list[str], *args: str) -> list[str]:
    config = ["--configfile", str(workdir / "config.yaml")]  # last: --configfile takes every word up to the next option
    return [str(SNAKEMAKE), *targets, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), *args, *config]


def _slurm_args() -> list[str]:
    # The profile as shipped; only the first status check comes sooner than its 10 s.
    return ["--profile", str(PROFILE), "--slurm-init-seconds-before-status-checks", "2"]


def _job_stats(output: str) -> dict[str, int]:
    table = output.split("Job stats:", 1)[1] if "Job stats:" in output else ""
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def _squeue() -> list[dict[str, str]]:
    """Every job slurmctld still knows (MinJobAge keeps finished ones for an hour)."""
    out = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i|%T|%k|%j|%P"], capture_output=True, text=True, check=True
    ).stdout
    return [
        dict(zip(["id", "state", "comment", "name", "partition"], line.split("|"))) for line in out.splitlines() if line
    ]


def _snapshot(workdir: Path) -> dict[str, int]:
    """Every result file and its mtime; the train job's resume state is its working file, not a result."""
    return {
        str(p.relative_to(workdir)): p.stat().st_mtime_ns
        for folder in ("results", "resources")
        for p in (workdir / folder).rglob("*")
        if p.is_file() and not p.name.endswith(".resume")
    }


def _slurm_logs(workdir: Path) -> dict[str, list[Path]]:
    """rule -> its SLURM job logs (.snakemake/slurm_logs/rule_<rule>/<wildcards>/<jobid>.log)."""
    logs: dict[str, list[Path]] = {}
    for folder in sorted((workdir / ".snakemake" / "slurm_logs").glob("rule_*")):
        logs[folder.name.removeprefix("rule_")] = sorted(folder.rglob("*.log"))
    return logs


def _cancel_train_once_running(first: subprocess.Popen, workdir: Path) -> str | None:
    """scancel the train job mid-training, once its first epoch is done (and saved); its SLURM id, or None."""
    deadline = time.monotonic() + 240
    log = workdir / "logs" / "train.log"
    while first.poll() is None and time.monotonic() < deadline:
        train = [j for j in _squeue() if j["comment"] == "rule_train" and j["state"] == "RUNNING"]
        if train and log.exists() and "axial: [" in log.read_text():
            subprocess.run(["scancel", train[0]["id"]], check=True)
            return train[0]["id"]
        time.sleep(0.2)
    return None


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """A local reference run (in the background) and the SLURM run: cancelled in train, then resumed."""
    started = time.monotonic()
    local_dir, slurm_dir = tmp_path_factory.mktemp("local_run"), tmp_path_factory.mktemp("slurm_run")
    for workdir in (local_dir, slurm_dir):
        (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    local_command = _command(local_dir, LOCAL_TARGETS, "--cores", "2", "--profile", str(REPO / "profiles" / "local"))
    processes: list[subprocess.Popen] = []
    # Logs go to files, not pipes: nobody reads them while the runs go on.
    with open(local_dir / "local_run.log", "w") as local_log, open(slurm_dir / "first_run.log", "w") as first_log:
        try:
            local = subprocess.Popen(local_command, cwd=local_dir, env=env, stdout=local_log, stderr=subprocess.STDOUT)
            processes.append(local)
            first = subprocess.Popen(
                _command(slurm_dir, SLURM_TARGETS, *_slurm_args()),
                cwd=slurm_dir, env=env, stdout=first_log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(first)
            cancelled = _cancel_train_once_running(first, slurm_dir)
            first_rc = first.wait(timeout=300)
            first_output = (slurm_dir / "first_run.log").read_text()
            assert cancelled, f"the train job was never seen running (rc {first_rc}):\n{first_output[-4000:]}"
            after_cancel = _snapshot(slurm_dir)
            logs_after_cancel = {rule: set(paths) for rule, paths in _slurm_logs(slurm_dir).items()}

            second = subprocess.run(
                _command(slurm_dir, SLURM_TARGETS, *_slurm_args(), "--rerun-incomplete"),
                cwd=slurm_dir, env=env, capture_output=True, text=True, timeout=600, check=False,
            )  # fmt: skip
            second_output = second.stdout + second.stderr
            assert second.returncode == 0, f"rerun after scancel failed:\n{second_output[-6000:]}"
            local.wait(timeout=600)
            local_output = (local_dir / "local_run.log").read_text()
            assert local.returncode == 0, f"local reference run failed:\n{local_output[-6000:]}"
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
    return SimpleNamespace(
        local=local_dir,
        slurm=slurm_dir,
        cancelled=cancelled,
        first_rc=first_rc,
        first_output=first_output,
        second_output=second_output,
        after_cancel=after_cancel,
        logs_after_cancel=logs_after_cancel,
        seconds=time.monotonic() - started,
    )


@slurm
def test_every_job_went_through_sbatch_with_its_own_slurm_log(runs):
    ran = _job_stats(runs.first_output)
    reran = _job_stats(runs.second_output)
    assert ran and reran, runs.first_output[-3000:]
    logs = _slurm_logs(runs.slurm)
    remote_rules = {*ran, *reran}
    assert set(logs) == remote_rules, f"SLURM logs for {sorted(logs)}, jobs of {sorted(remote_rules)}"
    assert {
        "synthesize_case",
        "slice_case",
        "train",
        "predict",
        "postprocess",
        "evaluate_case",
        "aggregate_metrics",
        "overlay_video",
        "point_cloud_prediction",
    } <= remote_rules, remote_rules
    # The first run got as far as the cancelled train job; the rerun did the rest: one log per job.
    for rule in remote_rules:
        assert len(logs[rule]) <= ran.get(rule, 0) + reran.get(rule, 0), (rule, logs[rule])
        assert all(log.stat().st_size > 0 for log in logs[rule]), rule
    assert len(logs["slice_case"]) == ran["slice_case"] == CONFIG["synthetic"]["n_patients"]
    # slurmctld saw them all as batch jobs of these runs, under the profile's job-name prefix.
    jobs = [j for j in _squeue() if j["name"].startswith("laseg_")]
    completed = [j for j in jobs if j["state"] == "COMPLETED"]
    assert len(completed) == sum(len(paths) for paths in logs.values()) - 1, jobs  # all but the cancelled one
    log_ids = {p.stem for paths in logs.values() for p in paths}
    assert {j["id"] for j in jobs} == log_ids


@slurm
def test_train_job_ran_in_the_gpu_partition_and_was_given_the_gpu(runs):
    trains = [j for j in _squeue() if j["comment"] == "rule_train"]
    assert [j["partition"] for j in trains] == ["gpu", "gpu"], trains  # cancelled + rerun
    details = subprocess.run(
        ["scontrol", "show", "job", trains[-1]["id"]], capture_output=True, text=True, check=True
    ).stdout
    assert re.search(r"TresPerJob=gres:gpu:1\b", details), details
    assert "CUDA_VISIBLE_DEVICES=0\n" in (runs.slurm / "logs" / "train.log").read_text()
    others = [j for j in _squeue() if j["comment"].startswith("rule_slice_case")]
    assert others and all(j["partition"] == "cpu" for j in others), others  # the cluster's default partition


@slurm
def test_cancelled_train_job_reruns_without_redoing_finished_jobs(runs):
    first = next(j for j in _squeue() if j["id"] == runs.cancelled)
    assert first["state"] == "CANCELLED" and runs.first_rc != 0, first
    assert "CANCELLED" in runs.first_output
    assert "results/model/model.pt" not in runs.after_cancel  # written atomically: no half checkpoint
    for patient in ("syn_000", "syn_002", "syn_003"):
        assert f"results/slices/{patient}.npz" in runs.after_cancel
    reran = _job_stats(runs.second_output)
    assert reran.get("train") == 1 and "slice_case" not in reran and "synthesize_case" not in reran, reran
    # Nothing that existed after the cancel was written again, and no finished job got a new SLURM job.
    after = _snapshot(runs.slurm)
    rewritten = [path for path, mtime in runs.after_cancel.items() if after.get(path) != mtime]
    assert not rewritten, rewritten
    logs = _slurm_logs(runs.slurm)
    for rule in ("synthesize_case", "slice_case"):
        assert set(logs[rule]) == runs.logs_after_cancel[rule]
    assert len(logs["train"]) == 2 and len(runs.logs_after_cancel["train"]) == 1
    # The second train job went on from the first one's last finished epoch (and ends with the same weights as
    # the uninterrupted local run: test_slurm_results_equal_the_local_run).
    train_log = (runs.slurm / "logs" / "train.log").read_text()
    assert "resuming axial from epoch" in train_log or "resuming: axial network already trained" in train_log


@slurm
def test_slurm_results_equal_the_local_run(runs):
    local = pd.read_csv(runs.local / "results/metrics/per_patient.csv")
    remote = pd.read_csv(runs.slurm / "results/metrics/per_patient.csv")
    assert local["patient"].tolist() == [TEST_PATIENT]
    pd.testing.assert_frame_equal(remote, local, check_exact=True)
    weights = [
        torch.load(run / "results/model/model.pt", map_location="cpu", weights_only=False)["state_dict"]
        for run in (runs.local, runs.slurm)
    ]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    masks = [read_volume(run / f"results/masks/{TEST_PATIENT}.nii.gz")[0] for run in (runs.local, runs.slurm)]
    assert masks[0].any() and np.array_equal(masks[0], masks[1])
    outside_slurm = os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")  # a local job keeps the caller's setting
    assert f"CUDA_VISIBLE_DEVICES={outside_slurm}\n" in (runs.local / "logs/train.log").read_text()
    print(f"SLURM test runs took {runs.seconds:.0f} s; dice {remote['dice'].iloc[0]:.10f} in both")
