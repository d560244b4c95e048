"""Which package code a workflow step runs: a digest the rules take as a parameter, so that editing a module
reruns exactly the jobs whose scripts import it (Snakemake tracks the scripts, not the package they import)."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = "laseg"
PACKAGE_DIR = Path(__file__).resolve().parent


def _imported_modules(source_path: Path) -> set[str]:
    """laseg modules named by any import in a file (top-level or inside functions), e.g. {"laseg.train"}."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source_path.read_bytes(), filename=str(source_path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            names.add(node.module)
            # `from laseg import train` names a module too.
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _module_file(name: str, package_dir: Path) -> Path | None:
    parts = name.split(".")[1:]
    if not parts:
        return package_dir / "__init__.py"
    path = package_dir.joinpath(*parts).with_suffix(".py")
    return path if path.is_file() else None


def package_files_of(script: Path, package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """The package's source files a script runs: its laseg imports, theirs, and so on (plus __init__)."""
    found: set[Path] = {package_dir / "__init__.py"}
    queue = [script]
    while queue:
        for name in _imported_modules(queue.pop()):
            path = _module_file(name, package_dir)
            if path is not None and path not in found:
                found.add(path)
                queue.append(path)
    return sorted(found)


def code_digest(script: Path, package_dir: Path = PACKAGE_DIR) -> str:
    """A short digest of the package code a script runs; it changes when any of those files changes."""
    digest = hashlib.sha256()
    for path in package_files_of(script, package_dir):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]
