"""Renders the results tables of README.md, bench/README.md and models/README.md from the result files in
bench/results: each table sits between `<!-- results:<name> -->` and `<!-- /results -->`, and each row reads its
figures from the file it links to, so that no number in those tables is typed by hand.

    .venv/bin/python bench/render_tables.py           # rewrite the tables in place
    .venv/bin/python bench/render_tables.py --check   # exit 1 naming each table that differs from its files
A new result (today's `full`, say) is a row in CV_ROWS below, then a run of this script.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
MSD_DEFAULT = "benchmark-2026-12-07-msd_task02_heart-5fold-default-logit-upsampling-amd"
MSD_SEED1 = "benchmark-2026-12-07-msd_task02_heart-5fold-default-seed1-amd"
LA_DEFAULT = "benchmark-2026-12-07-la2018_lge_dev-5fold-default-logit-upsampling-amd"
FULL_PENDING = ("pending", "`full`: first stage + 3D second stage", "5 folds being measured")
# (kind, label, result file stem or note[, table row name]); kinds: cv (a run_benchmark.py result),
# published (a row of a run_benchmark.py result's table), pending (no result yet).
CV_ROWS = {
    "msd_task02_heart": [
        ("cv", "default (two 2.5D U-Nets, axial + coronal)", MSD_DEFAULT),
        FULL_PENDING,
        ("cv", "default + 3D second stage, fold 0 only", "benchmark-2026-12-08-msd_task02_heart-fold0-stage2-dev-amd"),
        (
            "cv",
            "default, fold 0 only, the same first-stage networks",
            "benchmark-2026-12-08-msd_task02_heart-fold0-stage1-dev-amd",
        ),
        ("published", "nnU-Net v1 2D, published", MSD_DEFAULT, "nnU-Net v1 2D"),
        ("published", "nnU-Net v1 3D full-res, published", MSD_DEFAULT, "nnU-Net v1 3D full-res"),
    ],
    "la2018_lge_dev": [
        ("cv", "default (two 2.5D U-Nets, axial + coronal)", LA_DEFAULT),
        FULL_PENDING,
        ("published", "3D V-Net (UA-MT paper), published, its own 80/20 split", LA_DEFAULT, "3D V-Net"),
    ],
}
LINK_PREFIX = {"README.md": "bench/results/", "bench/README.md": "results/", "models/README.md": "../bench/results/"}


def link(stem: str, doc: str) -> str:
    date = re.search(r"\d{4}-\d{2}-\d{2}", stem)
    return f"[{date.group(0) if date else stem}]({LINK_PREFIX[doc]}{stem}.json)"


def load(stem: str) -> dict:
    return json.loads((RESULTS / f"{stem}.json").read_text())


def machine(result: dict, row: dict) -> str:
    """The CPU, its cores and the training precision `auto` chose there (bf16 only with AMX)."""
    m = result["machine"]
    precision = row["settings"]["train"].get("precision", "auto")
    precision = ("bf16" if m.get("amx_bf16") else "fp32") if precision == "auto" else precision
    return f"{m['cpu']}{' with AMX' if m.get('amx_bf16') else ' without AMX'}, {m['cores']} cores, {precision}"


def published_cell(result: dict, name: str, column: int) -> str:
    for line in result["table_markdown"].splitlines():
        if line.startswith(f"| {name}"):
            return line.strip("|").split("|")[column].strip()
    raise SystemExit(f"no row '{name}' in the table of {result['date']} {result['dataset']}")


def cv_table(dataset: str, doc: str, prefix: str = "") -> list[str]:
    lines = [
        "| setting | Dice, mean ± sd | HD95 mm | LA volume bias mL | train min / fold | s / volume | machine | file |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for kind, label, source, *name in CV_ROWS[dataset]:
        if kind == "pending":
            lines.append(f"| {label} | {source} | | | | | | |")
        elif kind == "published":
            result = load(source)
            cost = published_cell(result, name[0], 6)
            days = re.search(r"= (\d+ days) extrapolated", cost)
            train, where = "–", "published"
            if days:  # nnU-Net's schedule timed here by the former bench/nnunet_cost.py
                cost_machine = load("nnunet_cost")["machine"]
                train = f"{days.group(1)} (extrapolated)"
                where = f"published; cost: {cost_machine['cpu_model']}, {cost_machine['logical_cpus']} cores"
            lines.append(
                f"| {label} | {published_cell(result, name[0], 1)} | – | – | {train} | – | {where} "
                f"| {link(source, doc)} |"
            )
        else:
            result = load(source)
            row = result["rows"][0]
            minutes = row["train_minutes_per_fold"]
            lines.append(
                f"| {prefix}{label} | {row['dice_mean']:.4f} ± {row['dice_sd']:.4f} | {row['hd95_mm']:.2f} | "
                f"{row['volume_bias_ml']:+.1f} | {min(minutes):.1f}-{max(minutes):.1f} | "
                f"{row['inference_s_per_volume']:.1f} | {machine(result, row)} | {link(source, doc)} |"
            )
    return lines


def cv_detail_table(doc: str) -> list[str]:
    lines = [
        "| run | Dice per fold | LA volume bias mL (95% limits) | epochs run / planned per network | peak RSS MB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for stem in (MSD_DEFAULT, MSD_SEED1, LA_DEFAULT):
        row = load(stem)["rows"][0]
        low, high = row["volume_limits_of_agreement_ml"]
        epochs = "; ".join(
            f"{'/'.join(str(n) for n in row['epochs_run_per_fold'][str(k)].values())} of "
            f"{row['planned_epochs_per_fold'][str(k)]}"
            for k in row["folds"]
        )
        lines.append(
            f"| [{stem}]({LINK_PREFIX[doc]}{stem}.json) | {', '.join(f'{d:.4f}' for d in row['dice_per_fold'])} | "
            f"{row['volume_bias_ml']:+.1f} ({low:+.1f} to {high:+.1f}) | {epochs} | {row['peak_rss_mb_train']:.0f} |"
        )
    return lines


def held_out_table(doc: str) -> list[str]:
    stem = "shipped-model-2026-12-07-logit-upsampling"
    scores = load(stem)["scores"]["models/la_unet.pt"]
    lines = [
        f"| held-out scan ({link(stem, doc)}) | Dice, post-processed | axial network alone | coronal network alone |",
        "| --- | --- | --- | --- |",
    ]
    for case, s in scores.items():
        lines.append(f"| {case} | {s['dice']:.4f} | {s['dice_axial']:.4f} | {s['dice_coronal']:.4f} |")
    return lines


TABLES = {
    "README.md": {
        "msd_task02_heart": lambda: cv_table("msd_task02_heart", "README.md"),
        "la2018_lge_dev": lambda: cv_table("la2018_lge_dev", "README.md"),
    },
    "bench/README.md": {"cv_detail": lambda: cv_detail_table("bench/README.md")},
    "models/README.md": {
        "recipe_cv": lambda: (
            cv_table("msd_task02_heart", "models/README.md", "MSD Task02: ")[:3]
            + cv_table("la2018_lge_dev", "models/README.md", "LA2018: ")[2:3]
        ),
        "held_out": lambda: held_out_table("models/README.md"),
    },
}
MARKED = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results -->)", re.DOTALL)


def rendered(doc: str) -> tuple[str, str]:
    """The document as it is and as it should be; a marker naming no table here is an error."""
    text = (REPO / doc).read_text()

    def fill(match: re.Match) -> str:
        if match.group(2) not in TABLES[doc]:
            raise SystemExit(f"{doc}: no table '{match.group(2)}' in bench/render_tables.py")
        return match.group(1) + "\n".join(TABLES[doc][match.group(2)]()) + "\n" + match.group(4)

    return text, MARKED.sub(fill, text)


def stale_tables() -> list[str]:
    """Each table that is missing from its document or differs from what its result files say."""
    stale = []
    for doc, tables in TABLES.items():
        text, new = rendered(doc)
        present = {m.group(2) for m in MARKED.finditer(text)}
        stale += [f"{doc}: table '{name}' has no markers" for name in tables if name not in present]
        stale += [
            f"{doc}: table '{old.group(2)}' differs from its result files"
            for old, fresh in zip(MARKED.finditer(text), MARKED.finditer(new))
            if old.group(3) != fresh.group(3)
        ]
    return stale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a table is stale")
    if parser.parse_args().check:
        stale = stale_tables()
        raise SystemExit("\n".join(stale) + "\nrun: .venv/bin/python bench/render_tables.py" if stale else 0)
    for doc in TABLES:
        text, new = rendered(doc)
        if new != text:
            (REPO / doc).write_text(new)
            print(f"rewrote the tables of {doc}")


if __name__ == "__main__":
    main()
