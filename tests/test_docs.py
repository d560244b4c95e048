"""The documents stay true and short: results tables agree with their files in bench/results, every result file is
cited, links resolve, and README, bench/README and bench/'s Python keep their sizes."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import REPO, load_bench_script

BENCH = REPO / "bench"
DOCS = [REPO / "README.md", REPO / "CHANGELOG.md", BENCH / "README.md", REPO / "models" / "README.md"] + sorted(
    (REPO / "docs").glob("*.md")
)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_results_tables_agree_with_their_result_files() -> None:
    stale = load_bench_script("render_tables").stale_tables()
    assert not stale, "\n".join(stale) + "\n(.venv/bin/python bench/render_tables.py rewrites them)"


def test_a_changed_figure_is_caught(tmp_path: Path, monkeypatch) -> None:
    """A Dice typed over in README's table, one digit off, makes the check fail."""
    render_tables = load_bench_script("render_tables")
    readme = (REPO / "README.md").read_text()
    table = re.search(r"<!-- results:msd_task02_heart -->\n(.*?)<!-- /results -->", readme, re.DOTALL).group(1)
    dice = re.search(r"\| (0\.\d{4}) ± ", table).group(1)
    edited = readme.replace(table, table.replace(dice, f"{float(dice) + 0.0001:.4f}", 1))
    (tmp_path / "README.md").write_text(edited)
    for doc in ("bench/README.md", "models/README.md"):
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / doc).write_text((REPO / doc).read_text())
    monkeypatch.setattr(render_tables, "REPO", tmp_path)
    assert render_tables.stale_tables() == ["README.md: table 'msd_task02_heart' differs from its result files"]


def test_sizes() -> None:
    assert lines(REPO / "README.md") <= 200
    assert lines(BENCH / "README.md") <= 250
    assert sum(lines(p) for p in BENCH.glob("*.py")) <= 2000, "bench/ keeps maintained tools only"
    assert not list(BENCH.rglob("*.patch")), "an experiment's patch belongs in git history, not in bench/"


def test_every_result_file_is_cited_by_a_doc() -> None:
    text = "\n".join(doc.read_text() for doc in DOCS) + (BENCH / "render_tables.py").read_text()
    uncited = [p.name for p in sorted((BENCH / "results").iterdir()) if p.stem not in text and p.name not in text]
    assert not uncited, f"cite these in a doc or git rm them: {uncited}"


def test_every_bench_script_has_a_usage_line_in_bench_readme() -> None:
    readme = (BENCH / "README.md").read_text()
    tools = [p.name for p in BENCH.glob("*.py") if p.stem not in ("result_files", "orientation")]
    missing = [name for name in tools if not re.search(rf"python3? bench/{name}", readme)]
    assert not missing, f"no usage line in bench/README.md for {missing}"


def test_local_links_resolve() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not re.match(r"[a-z]+:", target) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, broken
