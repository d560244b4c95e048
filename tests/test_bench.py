"""The benchmark's bookkeeping: a 5-fold run split over sessions and merged must give the figures of one run; every
maintained bench/ script imports and has a main."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, load_bench_script

# A 5-fold run kept in the repository: its per-case records are the ground truth for the merge.
WHOLE_RUN = REPO / "bench" / "results" / "benchmark-2026-12-04-msd_task02_heart-5fold-default-2x-amd.json"


def load_run_benchmark():
    return load_bench_script("run_benchmark")


def fold_subset(result: dict, folds: list[int]) -> dict:
    """The result file a run of only these folds would have written (inference time kept: it is not per fold)."""
    rows = []
    for row in result["rows"]:
        index = [row["folds"].index(k) for k in folds]
        subset = {
            **row,
            "folds": folds,
            "dice_per_fold": [row["dice_per_fold"][i] for i in index],
            "train_minutes_per_fold": [row["train_minutes_per_fold"][i] for i in index],
            "per_case": [case for case in row["per_case"] if case["fold"] in folds],
        }
        for key in ("planned_epochs_per_fold", "epochs_run_per_fold", "plans", "history_per_fold"):
            subset[key] = {str(k): row[key][str(k)] for k in folds}
        rows.append(subset)
    return {**result, "rows": rows}


def test_merging_two_halves_of_a_run_gives_back_the_whole_run(tmp_path: Path) -> None:
    run_benchmark = load_run_benchmark()
    whole = json.loads(WHOLE_RUN.read_text())
    halves = []
    for name, folds in (("a", [0, 1]), ("b", [2, 3, 4])):
        halves.append(tmp_path / f"{name}.json")
        halves[-1].write_text(json.dumps(fold_subset(whole, folds)))
    # Given in the later folds' order first: the merge sorts by fold.
    merged = run_benchmark.merge_results(halves[::-1])["rows"][0]
    expected = whole["rows"][0]
    for key in ("folds", "dice_per_fold", "train_minutes_per_fold", "peak_rss_mb_train"):
        assert merged[key] == expected[key], key
    for key in ("dice_mean", "dice_sd", "hd95_mm", "volume_bias_ml", "inference_s_per_volume"):
        assert merged[key] == pytest.approx(expected[key], abs=1e-12), key
    assert merged["volume_limits_of_agreement_ml"] == pytest.approx(expected["volume_limits_of_agreement_ml"])
    table = run_benchmark.markdown_table([merged], None, whole["dataset"], whole["budget_minutes"])
    assert f"{expected['dice_mean']:.4f} ± {expected['dice_sd']:.4f}" in table


def test_merge_refuses_a_fold_given_twice_and_compare_counts_cases(tmp_path: Path) -> None:
    run_benchmark = load_run_benchmark()
    whole = json.loads(WHOLE_RUN.read_text())
    half = tmp_path / "a.json"
    half.write_text(json.dumps(fold_subset(whole, [0, 1])))
    with pytest.raises(SystemExit, match="more than one file"):
        run_benchmark.merge_results([half, half])
    # One case made worse by 0.01: compare sees it, and the others equal (not better).
    row = whole["rows"][0]
    worse = {**row, "per_case": [{**c, "dice": c["dice"] - 0.01 * (i == 0)} for i, c in enumerate(row["per_case"])]}
    line = run_benchmark.compare_per_case(row, worse)
    assert f"better on 0 of {len(row['per_case'])} cases" in line
    assert "(-0.0100 to +0.0000)" in line


def with_train_setting(result: dict, key: str, value: object) -> dict:
    rows = [
        {**row, "settings": {**row["settings"], "train": {**row["settings"]["train"], key: value}}}
        for row in result["rows"]
    ]
    return {**result, "rows": rows}


def test_merge_takes_parts_run_on_other_thread_counts_but_not_other_training(tmp_path: Path) -> None:
    run_benchmark = load_run_benchmark()
    whole = json.loads(WHOLE_RUN.read_text())
    one_thread, two_threads = tmp_path / "a.json", tmp_path / "b.json"
    one_thread.write_text(json.dumps(with_train_setting(fold_subset(whole, [0, 1]), "threads", 1)))
    two_threads.write_text(json.dumps(with_train_setting(fold_subset(whole, [2, 3, 4]), "threads", 2)))
    merged = run_benchmark.merge_results([one_thread, two_threads])["rows"][0]
    assert merged["settings"]["train"]["threads"] == [1, 2]  # the result file says both ran
    assert merged["dice_mean"] == pytest.approx(whole["rows"][0]["dice_mean"], abs=1e-12)
    other_rate = tmp_path / "c.json"
    other_rate.write_text(json.dumps(with_train_setting(fold_subset(whole, [2, 3, 4]), "learning_rate", 0.0015)))
    with pytest.raises(SystemExit, match="different settings"):
        run_benchmark.merge_results([one_thread, other_rate])


def test_merge_keeps_each_parts_workflow_wall_clock_and_marks_untimed_parts(tmp_path: Path) -> None:
    run_benchmark = load_run_benchmark()
    whole = json.loads(WHOLE_RUN.read_text())  # written before the whole call was timed
    fold0 = fold_subset(whole, [0])
    fold0["rows"][0]["workflow_wall_minutes"] = {"0": 17.25}
    timed, untimed = tmp_path / "a.json", tmp_path / "b.json"
    timed.write_text(json.dumps(fold0))
    untimed.write_text(json.dumps(fold_subset(whole, [1, 2, 3, 4])))
    merged = run_benchmark.merge_results([untimed, timed])["rows"][0]
    assert merged["workflow_wall_minutes"] == {"1 2 3 4": None, "0": 17.25}
    table = run_benchmark.markdown_table([merged], None, whole["dataset"], whole["budget_minutes"])
    assert "folds 1 2 3 4: not timed; folds 0: 17.2 min" in table


def test_anatomical_dataset_changes_only_the_direction_and_keeps_what_it_wrote(tmp_path):
    """bench/orientation.py: the copy has the same voxels, spacing and origin, the dataset's anatomical direction
    (a rotation: never a mirror, which no scanner writes), and a second call rewrites nothing (Snakemake would
    re-slice a rewritten scan)."""
    from laseg.io import read_volume
    from laseg.synthetic import synthesize_case, write_case

    orientation = load_bench_script("orientation")
    source = tmp_path / "msd"
    for folder in ("imagesTr", "labelsTr"):
        (source / folder).mkdir(parents=True)
    case = synthesize_case(seed=3, patient_index=0, shape_zyx=(24, 40, 48))
    write_case(case, source / "imagesTr" / "la_001.nii.gz", source / "labelsTr" / "la_001.nii.gz")
    training = [{"image": "./imagesTr/la_001.nii.gz", "label": "./labelsTr/la_001.nii.gz"}]
    (source / "dataset.json").write_text(json.dumps({"name": "one", "training": training, "test": []}))

    target = orientation.anatomical_dataset(source, "msd_task02_heart", tmp_path / "anatomical")
    direction = orientation.ANATOMICAL_DIRECTION["msd_task02_heart"]
    for folder in ("imagesTr", "labelsTr"):
        original, stored = read_volume(source / folder / "la_001.nii.gz")
        copy, geometry = read_volume(target / folder / "la_001.nii.gz")
        assert np.array_equal(copy, original)
        assert geometry.spacing_mm == stored.spacing_mm and geometry.origin_mm == stored.origin_mm
        assert np.allclose(geometry.direction, direction) and not np.allclose(stored.direction, direction)
    assert json.loads((target / "dataset.json").read_text())["training"] == training
    for rotation in orientation.ANATOMICAL_DIRECTION.values():
        assert np.linalg.det(np.reshape(rotation, (3, 3))) == pytest.approx(1.0)
    written = (target / "imagesTr" / "la_001.nii.gz").stat().st_mtime_ns
    orientation.anatomical_dataset(source, "msd_task02_heart", target)
    assert (target / "imagesTr" / "la_001.nii.gz").stat().st_mtime_ns == written
    # A source that changed after its copy was written is copied again: a stale copy would be scored as the scan.
    newer = written + 10**9
    os.utime(source / "imagesTr" / "la_001.nii.gz", ns=(newer, newer))
    orientation.anatomical_dataset(source, "msd_task02_heart", target)
    assert (target / "imagesTr" / "la_001.nii.gz").stat().st_mtime_ns > written


@pytest.mark.parametrize(
    "name", sorted(p.stem for p in (REPO / "bench").glob("*.py") if p.stem not in ("result_files", "orientation"))
)
def test_every_bench_script_imports_and_has_a_main(name: str) -> None:
    """The smoke test of the tools that need real data or minutes: their imports resolve (a helper they use was not
    deleted or renamed) and each has the entry its usage line runs."""
    module = load_bench_script(name)
    assert callable(getattr(module, "main", None)), f"bench/{name}.py has no main()"
    assert f"bench/{name}.py" in (module.__doc__ or ""), f"bench/{name}.py's docstring has no usage line"
