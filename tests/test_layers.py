"""Layers import downwards only (STYLE.md "Habits to add"; issue 8 deliverable 9).

The command line (emrr.cli) <- the checker (emrr.conformance) <- the report engine (emrr.rules);
the simulator (emrr.sim) stands beside the engine and neither imports the other; all of them may
import the common layer (emrr.errors, emrr.yamlio, emrr.contract), which imports nothing of ours
but itself. Imports made inside functions count. No module uses another module's private name.

Why not import-linter: it finds a package's modules by walking the package's folder, and our
sub-packages live beside ``emrr/`` (pyproject's package-dir maps sim/ to emrr.sim), so it would
see none of them. The imports are read here with ``ast`` instead, from the files the installed
package maps.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

# package -> the packages of ours it may import (itself always allowed)
COMMON = {"emrr.errors", "emrr.yamlio", "emrr.contract"}
ALLOWED = {
    "emrr.errors": set(),
    "emrr.contract": set(),
    "emrr.yamlio": {"emrr.errors"},
    "emrr.sim": COMMON,
    "emrr.rules": COMMON,
    "emrr.conformance": COMMON | {"emrr.rules"},
    "emrr.memory": set(),
    "emrr.pictures": COMMON | {"emrr.rules"},  # summary pages: aggregates of event logs and report runs
    "emrr.sweep": COMMON | {"emrr.sim", "emrr.rules", "emrr.conformance", "emrr.pictures"},  # Dask tasks
    "emrr.cli": COMMON | {"emrr.memory", "emrr.sim", "emrr.rules", "emrr.conformance", "emrr.pictures", "emrr.sweep",
                          "emrr"},
    "emrr.__main__": {"emrr.cli"},
    "emrr": set(),
}
LIBRARY = ("emrr.sim", "emrr.rules", "emrr.conformance")


def modules() -> dict[str, Path]:
    """Every module of the installed package, by dotted name, from where the package maps it."""
    found: dict[str, Path] = {}
    for package in ("emrr", *LIBRARY):
        spec = importlib.util.find_spec(package)
        folder = Path(next(iter(spec.submodule_search_locations)))
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def owner(module: str) -> str | None:
    """The layer a module of ours belongs to (None for a module not ours)."""
    if module != "emrr" and not module.startswith("emrr."):
        return None
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return module


def imports(path: Path, name: str) -> list[tuple[str, int, list[str]]]:
    """(module imported, line, names taken from it) for every import in the file, functions included."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            out.append((base, node.lineno, [alias.name for alias in node.names]))
    return out


MODULES = modules()


def test_every_package_is_found():
    """The walk sees the sub-packages the pyproject maps (else the test below checks nothing)."""
    for package in LIBRARY:
        assert any(m.startswith(package + ".") for m in MODULES), package
    assert "emrr.cli" in MODULES and "emrr.yamlio" in MODULES


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_downwards_only(name):
    layer = owner(name)
    wrong = []
    for module, line, taken in imports(MODULES[name], name):
        target = owner(module)
        if target is None or target == layer:
            continue
        if target == "emrr" and taken:  # `from emrr import yamlio`: the layer is the module taken
            targets = {owner(f"emrr.{t}") for t in taken}
        else:
            targets = {target}
        for t in targets:
            if t != layer and t not in ALLOWED[layer]:
                wrong.append(f"{MODULES[name].name}:{line} imports {module} ({t}); {layer} may import "
                             f"{', '.join(sorted(ALLOWED[layer])) or 'nothing of ours'}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_private_name_used_across_modules(name):
    """A name with a leading underscore belongs to its module (review B7: scenario._line_index,
    schedule._add_months, eventlog._kind were used elsewhere)."""
    private = lambda t: t.startswith("_") and not t.startswith("__")  # noqa: E731
    found = imports(MODULES[name], name)
    wrong = [f"line {line}: from {module} import {t}" for module, line, taken in found
             if owner(module) is not None and module != name for t in taken if private(t)]
    # `from emrr.rules import schedule` ... `schedule._add_months(...)`: a private name through a module
    bound = {t for module, _, taken in found if owner(module) is not None for t in taken
             if f"{module}.{t}" in MODULES}
    for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound \
                and private(node.attr):
            wrong.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not wrong, "\n".join(wrong)


def test_installed_under_one_namespace():
    """sim, rules and conformance install as emrr.sim, emrr.rules, emrr.conformance: nothing named
    plainly `rules` or `conformance` (PyPI has such packages) is put in the user's environment."""
    import tomllib

    data = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))
    packages = data["tool"]["setuptools"]["packages"]
    assert all(p == "emrr" or p.startswith("emrr.") for p in packages), packages
    for package in LIBRARY:
        assert importlib.util.find_spec(package) is not None
