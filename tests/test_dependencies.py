"""Every third-party package the library imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imported_top_levels() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "monitor").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n != "monitor" and n not in sys.stdlib_module_names}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        specs.extend(extra)
    names: set[str] = set()
    for spec in specs:
        names.add(re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0])
        extras = re.search(r"\[([^\]]+)\]", spec)  # dask[distributed] brings distributed
        if extras:
            names.update(e.strip() for e in extras.group(1).split(","))
    return {n.lower().replace("_", "-") for n in names}


def test_every_imported_package_is_declared_with_a_range() -> None:
    dists = packages_distributions()
    declared = _declared()
    missing = []
    for name in sorted(_imported_top_levels()):
        candidates = {d.lower().replace("_", "-") for d in dists.get(name, [name])}
        if not candidates & declared:
            missing.append(f"{name} ({', '.join(sorted(candidates))})")
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_scipy_is_declared_with_an_upper_bound() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    scipy = [d for d in deps if d.startswith("scipy")]
    assert scipy and "<" in scipy[0] and ">=" in scipy[0]
