"""The package's shape: lower layers never import upper ones, and modules stay small.

Two checks of the import rule: every module is parsed (an import inside a function counts too,
so a lazy import cannot hide a dependency), and each layer is imported in a fresh interpreter
to see what it really drags in. Each test reports every violation at once, not the first.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "knowit_app"
PLUGIN = ROOT / "hydra_plugins" / "knowit_wandb_sweeper"

# What each layer may never import (knowit_app.<name>; a top-level module counts as a layer).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "experiment": ("sweeps", "training", "report", "cli", "evaluation", "data", "archs", "api",
                   "app"),
    "config": ("sweeps", "training", "report", "cli", "evaluation"),
    "data": ("training", "sweeps", "report", "cli", "evaluation"),
    "archs": ("training", "sweeps", "report", "cli", "evaluation"),
    "training": ("sweeps", "report", "cli"),
    "report": ("cli", "sweeps"),
}
HEAVY = ("torch", "wandb", "lightning")  # what the Hydra plugin must not import when discovered
MAX_LINES = 400
MAX_TOP_MODULES = 6
# The files a run leaves behind: each named as a literal in exactly one module.
RUN_FILES = ("run_result.json", "metrics.csv", "sweep_config.yaml", "sweep_state.json",
             "error.txt", "model_args.yaml")


def modules(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> str | None:
    """``knowit_app.<layer>...`` -> ``<layer>``; None outside the package."""
    parts = name.split(".")
    return parts[1] if parts[0] == "knowit_app" and len(parts) > 1 else None


def _type_checking_lines(tree: ast.Module) -> set[int]:
    """Lines inside ``if TYPE_CHECKING:`` blocks (imports there are for annotations only)."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports_of(path: Path) -> list[tuple[int, str, bool]]:
    """(line, imported module, only for type checking) for every import in ``path``."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    typing_only = _type_checking_lines(tree)
    found: list[tuple[int, str, bool]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package[:len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from knowit_app import sweeps` imports the subpackage knowit_app.sweeps.
            names = [f"{base}.{alias.name}" for alias in node.names] or [base]
        elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
              and node.args and isinstance(node.args[0], ast.Constant)):
            names = [str(node.args[0].value)]
        found += [(node.lineno, name, node.lineno in typing_only) for name in names]
    return found


def _violation(layer: str, name: str) -> str | None:
    """The forbidden layer ``name`` belongs to, if ``layer`` may not import it."""
    target = layer_of(name)
    return target if target in FORBIDDEN.get(layer, ()) else None


def test_no_layer_imports_an_upper_layer_in_its_source() -> None:
    problems = []
    for path in modules(PACKAGE):
        layer = layer_of(module_name(path))
        if layer not in FORBIDDEN:
            continue
        for line, name, typing_only in imports_of(path):
            target = _violation(layer, name)
            if target:
                note = " (under TYPE_CHECKING)" if typing_only else ""
                problems.append(f"{path.relative_to(ROOT)}:{line}: {layer}/ imports {name} "
                                f"({target}/ is above it){note}")
    assert not problems, "lower layers import upper ones:\n" + "\n".join(problems)


def test_the_hydra_plugin_source_imports_nothing_heavy_at_import_time() -> None:
    """Hydra imports every plugin to discover it, for every command: torch, wandb and lightning
    may only be imported inside the functions that run a sweep."""
    problems = []
    for path in modules(PLUGIN):
        tree = ast.parse(path.read_text(), str(path))
        typing_only = _type_checking_lines(tree)
        top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom | ast.If
                                                         | ast.Try)]
        for stmt in top_level:
            for node in ast.walk(stmt):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    names = [node.module or ""]
                else:
                    continue
                heavy = [n for n in names if n.split(".")[0] in HEAVY]
                if heavy and node.lineno not in typing_only:
                    problems.append(f"{path.relative_to(ROOT)}:{node.lineno}: imports "
                                    f"{', '.join(heavy)} at import time")
    assert not problems, "\n".join(problems)


_IMPORT_LAYER = """
import importlib, json, pkgutil, sys
root = importlib.import_module(sys.argv[1])
names = [sys.argv[1]]
if hasattr(root, "__path__"):
    names += [m.name for m in pkgutil.walk_packages(root.__path__, sys.argv[1] + ".")]
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except Exception as exc:  # reported, not hidden: a layer that cannot import is a finding
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"modules": sorted(sys.modules), "failed": failed}))
"""


def _import_in_fresh_interpreter(name: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _IMPORT_LAYER, name], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_importing_a_layer_loads_no_upper_layer(layer: str) -> None:
    """Every module of the layer, imported in a fresh interpreter, leaves no module of a layer
    above it in ``sys.modules`` (knowit_app/__init__.py included: it runs first)."""
    result = _import_in_fresh_interpreter(f"knowit_app.{layer}")
    loaded = sorted(m for m in result["modules"] if _violation(layer, m))
    problems = [f"cannot import {n}: {why}" for n, why in result["failed"].items()]
    problems += [f"importing knowit_app.{layer} loads {m}" for m in loaded]
    assert not problems, f"{layer}/ drags in upper layers:\n" + "\n".join(problems)


def test_discovering_the_hydra_plugin_loads_nothing_heavy() -> None:
    result = _import_in_fresh_interpreter("hydra_plugins.knowit_wandb_sweeper")
    heavy = sorted({m.split(".")[0] for m in result["modules"]} & set(HEAVY))
    assert not result["failed"], result["failed"]
    assert not heavy, f"importing the Hydra plugin loads {', '.join(heavy)}"


def test_no_module_is_over_400_lines() -> None:
    long = [f"{p.relative_to(ROOT)}: {n} lines"
            for p in modules(PACKAGE) + modules(PLUGIN)
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines:\n" + "\n".join(long)


def test_at_most_six_modules_sit_directly_in_the_package() -> None:
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_MODULES, f"{len(top)} modules in knowit_app/: {', '.join(top)}"


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def names_the_file(value: object, file_name: str) -> bool:
    """Any string literal that holds ``file_name``: a path, and a message too (messages name
    the file through the owner's constant, so renaming it is a one-module change)."""
    return isinstance(value, str) and file_name in value


@pytest.mark.parametrize("file_name", RUN_FILES)
def test_each_run_file_is_named_in_one_module(file_name: str) -> None:
    """One module owns each file a run leaves behind; every other reader goes through it."""
    owners = []
    for path in modules(PACKAGE) + modules(PLUGIN):
        tree = ast.parse(path.read_text(), str(path))
        docs = _docstrings(tree)
        lines = sorted({node.lineno for node in ast.walk(tree)
                        if isinstance(node, ast.Constant) and id(node) not in docs
                        and names_the_file(node.value, file_name)})
        if lines:
            owners.append(f"{path.relative_to(ROOT)}:{','.join(map(str, lines))}")
    assert len(owners) == 1, f"{file_name} is named in {len(owners)} modules: {owners}"
