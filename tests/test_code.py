"""Which package code each workflow step runs, and the digest that reruns a step when that code changes."""

from __future__ import annotations

import shutil

from conftest import REPO

from laseg.code import code_digest, package_files_of


def test_a_script_runs_the_modules_it_imports_and_theirs_only():
    train = {path.name for path in package_files_of(REPO / "scripts/train.py")}
    assert {"train.py", "model.py", "io.py", "slices.py", "plan.py", "__init__.py"} <= train
    assert not {"report.py", "viewer3d.py", "synthetic.py"} & train
    postprocess = {path.name for path in package_files_of(REPO / "scripts/postprocess.py")}
    assert "postprocess.py" in postprocess and "train.py" not in postprocess


def test_the_digest_changes_with_the_code_a_script_runs_and_nothing_else(tmp_path):
    package = tmp_path / "laseg"
    shutil.copytree(REPO / "laseg", package, ignore=shutil.ignore_patterns("__pycache__"))
    script = REPO / "scripts/postprocess.py"
    before = code_digest(script, package)
    (package / "report.py").write_text((package / "report.py").read_text() + "\n# unrelated\n")
    assert code_digest(script, package) == before
    (package / "io.py").write_text((package / "io.py").read_text() + "\n# imported by postprocess\n")
    assert code_digest(script, package) != before
