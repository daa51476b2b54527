"""The package's import graph follows its layers (glacier_movement/__init__.py): every module
imports only modules of lower layers, at module top, and nothing but the command line imports it."""

from __future__ import annotations

import ast
from pathlib import Path

import glacier_movement

PACKAGE = Path(glacier_movement.__file__).parent


def _module(path: Path) -> str:
    """The layer of ``path``: its module, or the package folder it lies in (every folder, e.g.
    models/, evaluation/ or cli/, is one layer)."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported package module, imported at module top) for every package import in ``path``."""
    base = path.relative_to(PACKAGE).parent.parts  # () for the package, ("models",) inside models
    return _imports_in(path.read_text(), base)


def _imports_in(source: str, base: tuple[str, ...]) -> list[tuple[str, bool]]:
    """:func:`_imports` of a module's ``source`` text, the module sitting in package folder
    ``base`` (relative imports resolve from there)."""
    tree = ast.parse(source)
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            pkg = list(base[: len(base) - (node.level - 1)]) if node.level > 1 else list(base)
            names = [node.module] if node.module else [a.name for a in node.names]
            for name in names:
                full = [*pkg, *name.split(".")]
                target = full[0]
                # a module file, or a package folder (models/, evaluation/, ...): one layer each
                if target != "__init__" and (
                    (PACKAGE / f"{target}.py").exists() or (PACKAGE / target).is_dir()
                ):
                    out.append((target, id(node) in top))
        elif isinstance(node, ast.Import | ast.ImportFrom) and not getattr(node, "level", 0):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            out += [
                (m.split(".")[1], id(node) in top)
                for m in mods
                if m.startswith("glacier_movement.")
            ]
    return out


def _graph() -> dict[str, set[tuple[str, bool]]]:
    graph: dict[str, set[tuple[str, bool]]] = {}
    for path in PACKAGE.rglob("*.py"):
        mod = _module(path)
        if mod == "__init__":
            continue
        graph.setdefault(mod, set()).update((t, top) for t, top in _imports(path) if t != mod)
    return graph


def test_every_module_has_a_layer():
    assert set(_graph()) == set(glacier_movement.LAYERS)


def test_modules_import_only_lower_layers():
    rank = {m: i for i, m in enumerate(glacier_movement.LAYERS)}
    upward = sorted(
        f"{mod} imports {target}"
        for mod, targets in _graph().items()
        for target, _ in targets
        if rank[target] >= rank[mod]
    )
    assert upward == []


def test_package_imports_are_at_module_top():
    local = sorted(
        f"{m} imports {t} inside a function"
        for m, ts in _graph().items()
        for t, top in ts
        if not top
    )
    assert local == []


def test_only_the_command_line_imports_the_command_layer():
    users = sorted(m for m, ts in _graph().items() if any(t == "cli" for t, _ in ts))
    assert users == ["__main__"]


def test_the_checker_sees_an_upward_import(tmp_path):
    """The graph reader finds relative imports in both forms (a test that can fail)."""
    src = tmp_path / "x.py"
    src.write_text(
        "from . import report, io\nfrom .training import fit\n\ndef f():\n    from .cli import main\n"
    )
    # read as a module at the package's top level; nothing is written into the package
    found = sorted(_imports_in(src.read_text(), base=()))
    assert found == [("cli", False), ("io", True), ("report", True), ("training", True)]
    # read as a module of a folder: its own folder, the package above and absolute imports
    inside = (
        "from . import metrics\nfrom ..cli.reproduce import Job\nfrom .. import io\n"
        "from glacier_movement.report import tables\n"
    )
    found = sorted(_imports_in(inside, base=("evaluation",)))
    assert found == [("cli", True), ("evaluation", True), ("io", True), ("report", True)]
