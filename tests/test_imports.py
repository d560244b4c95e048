"""No import cycle among laseg's modules: each module's imports, read from its source, point one way only.

Imports inside functions count (they run on the first call and form a cycle all the same: laseg.io once imported
laseg.dicom inside `read_image` while laseg.dicom imported laseg.io at its top). Imports under
`if TYPE_CHECKING:` do not: they never run, and a type checker resolves such cycles itself.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from conftest import REPO

PACKAGE = "laseg"


def _type_checking_only(tree: ast.Module) -> set[int]:
    """Ids of the import nodes under `if TYPE_CHECKING:` (or `if typing.TYPE_CHECKING:`)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return skipped


def imported_modules(path: Path, module: str, modules: set[str]) -> set[str]:
    """The package's modules that `module` (in file `path`) imports at run time, anywhere in the file."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    skipped = _type_checking_only(tree)
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from .io import x`, `from . import io`
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base] if base else parent)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}  # `from laseg import io` names a module
    return {name for name in found if name in modules and name != module}


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    files = {f"{PACKAGE}.{p.stem}" if p.stem != "__init__" else PACKAGE: p for p in package_dir.glob("*.py")}
    return {module: imported_modules(path, module, set(files)) for module, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as its modules in order, first repeated at the end; None when there is none."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" once every import below it is explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == "open":
                return [*path[path.index(imported) :], imported]
            if imported not in state and (cycle := visit(imported)):
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_laseg_has_no_import_cycle():
    graph = import_graph(REPO / PACKAGE)
    assert "laseg.dicom" in graph["laseg.io"], "the reader registry in laseg.io reads DICOM series"
    cycle = find_cycle(graph)
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_the_cycle_laseg_io_and_laseg_dicom_once_had_is_found_in_a_function_but_not_under_type_checking(tmp_path):
    package = tmp_path / PACKAGE
    shutil.copytree(REPO / PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    dicom = package / "dicom.py"
    original = dicom.read_text()
    dicom.write_text(original + "\n\ndef _late():\n    from laseg.io import InputError\n\n    return InputError\n")
    cycle = find_cycle(import_graph(package))
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"laseg.dicom", "laseg.io"}, cycle
    guarded = "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from laseg.io import Geometry\n"
    dicom.write_text(original + guarded)
    assert find_cycle(import_graph(package)) is None
    (package / "errors.py").write_text((package / "errors.py").read_text() + "\nfrom . import io\n")
    assert find_cycle(import_graph(package)) is not None
