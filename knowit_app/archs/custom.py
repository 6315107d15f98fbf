"""A user's own architecture, in KnowIt's form: ``<exp_dir>/custom_archs/<name>.py``.

KnowIt asks an architecture module for a ``Model(torch.nn.Module)`` class whose constructor takes
``task_name``, ``input_dim`` ([steps, components]) and ``output_dim`` ([steps, components], or
[1, classes]) plus hyperparameters that all have defaults, a ``forward(x)``, ``available_tasks``
and ``HP_ranges_dict`` (with a range for every hyperparameter). :func:`import_arch` checks that
and copies the file into the experiment; :func:`build` loads it from the experiment directory
the run is given (never from the process's working directory), so a job on another node builds
the same model, and a rebuilt model loads its weights into the same class.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import shutil
import tempfile
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from knowit_app.errors import ConfigError

CUSTOM_ARCHS_DIR = "custom_archs"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REQUIRED_ARGS = ("task_name", "input_dim", "output_dim")


def custom_archs_dir(exp_dir: str | Path) -> Path:
    """KnowIt's place for imported architectures inside an experiment."""
    return Path(exp_dir) / CUSTOM_ARCHS_DIR


def available(exp_dir: str | Path) -> list[str]:
    """Names of the architectures imported into ``exp_dir``."""
    root = custom_archs_dir(exp_dir)
    if not root.is_dir():
        return []
    return sorted(p.stem for p in root.glob("*.py") if _NAME.match(p.stem))


def load_module(path: Path, key: str = "arch.name") -> types.ModuleType:
    """Execute the architecture file at ``path`` as a fresh module and check it."""
    spec = importlib.util.spec_from_file_location(f"knowit_app_custom_arch_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ConfigError(key, f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module may raise anything while it loads
        raise ConfigError(key, f"{path} fails to import: {type(exc).__name__}: {exc}") from exc
    check_module(module, path, key)
    return module


def check_module(module: types.ModuleType, path: Path, key: str = "arch.name") -> None:
    """One ConfigError naming everything an architecture module lacks, KnowIt's rules."""
    import torch

    missing: list[str] = []
    cls = getattr(module, "Model", None)
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        missing.append("a class Model(torch.nn.Module)")
    if not isinstance(getattr(module, "available_tasks", None), (tuple, list)):
        missing.append("available_tasks (a tuple of task names)")
    ranges = getattr(module, "HP_ranges_dict", None)
    if not isinstance(ranges, Mapping):
        missing.append("HP_ranges_dict (a dict of hyperparameter ranges)")
        ranges = {}
    if isinstance(cls, type) and issubclass(cls, torch.nn.Module):
        params = inspect.signature(cls.__init__).parameters
        lacking = [a for a in _REQUIRED_ARGS if a not in params]
        if lacking:
            missing.append(f"Model.__init__ arguments {', '.join(lacking)}")
        hps = [n for n in _hp_names(cls) if n not in _REQUIRED_ARGS]
        no_default = [n for n in hps if params[n].default is inspect.Parameter.empty]
        if no_default:
            missing.append(f"defaults for {', '.join(no_default)}")
        no_range = [n for n in hps if n not in ranges]
        if no_range:
            missing.append(f"HP_ranges_dict entries for {', '.join(no_range)}")
        if cls.forward is torch.nn.Module.forward:
            missing.append("Model.forward(x)")
    if missing:
        raise ConfigError(key, f"{path.name} is not an architecture: it lacks "
                          + "; ".join(missing))


def _hp_names(cls: type) -> list[str]:
    params = inspect.signature(cls.__init__).parameters
    return [n for n, p in params.items() if n != "self"
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def import_arch(path: str | Path, exp_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Check the module at ``path`` and copy it to ``<exp_dir>/custom_archs/<name>.py``."""
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ConfigError("new_arch_path", f"{path} is not a .py file")
    if not _NAME.match(path.stem):
        raise ConfigError("new_arch_path", f"{path.stem!r} cannot be a module name; use "
                          "letters, digits and '_'")
    load_module(path, key="new_arch_path")
    target = custom_archs_dir(exp_dir) / path.name
    if target.exists() and not overwrite:
        raise ConfigError("overwrite", f"architecture {path.stem!r} already exists in "
                          f"{target.parent}; pass safe_mode=False to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def hp_defaults(exp_dir: str | Path, name: str) -> dict[str, Any]:
    """The imported architecture's hyperparameters and their defaults."""
    cls = load_module(_module_path(exp_dir, name)).Model
    params = inspect.signature(cls.__init__).parameters
    return {n: params[n].default for n in _hp_names(cls) if n not in _REQUIRED_ARGS}


def hp_ranges(exp_dir: str | Path, name: str) -> dict[str, Any]:
    """The module's own ``HP_ranges_dict``."""
    return dict(load_module(_module_path(exp_dir, name)).HP_ranges_dict)


def _module_path(exp_dir: str | Path | None, name: str) -> Path:
    if exp_dir is None:
        raise ConfigError("arch.name", f"{name!r} is not a built-in architecture and no "
                          "experiment directory is known to look for custom_archs in")
    path = custom_archs_dir(exp_dir) / f"{name}.py"
    if not _NAME.match(str(name)) or not path.is_file():
        have = available(exp_dir)
        raise ConfigError("arch.name", f"unknown architecture {name!r}; built-in: MLP, CNN, "
                          f"TCN, LSTM; imported into {custom_archs_dir(exp_dir)}: "
                          f"{', '.join(have) or 'none'} (KnowIt(...).import_arch(path))")
    return path


def build(exp_dir: str | Path | None, name: str, hps: Mapping[str, Any],
          input_shape: tuple[int, int], output_shape: tuple[int, int], task: str,
          num_classes: int | None) -> Any:
    """Instantiate the imported ``Model`` with KnowIt's constructor arguments."""
    module = load_module(_module_path(exp_dir, name))
    tasks = tuple(module.available_tasks)
    if task not in tasks:
        raise ConfigError("trainer.task", f"architecture {name!r} supports {', '.join(tasks)}, "
                          f"not {task!r}")
    known = [n for n in _hp_names(module.Model) if n not in _REQUIRED_ARGS]
    for key in hps:
        if key not in known:
            raise ConfigError(f"arch.arch_hps.{key}", f"unknown hyperparameter of {name!r}; "
                              f"allowed: {', '.join(known) or 'none'}")
    out = [1, int(num_classes)] if task == "classification" else [int(s) for s in output_shape]
    try:
        return module.Model(task_name=task, input_dim=[int(s) for s in input_shape],
                            output_dim=out, **dict(hps))
    except Exception as exc:  # the user's constructor decides what it refuses
        raise ConfigError("arch.arch_hps", f"{name}.Model(...) failed: "
                          f"{type(exc).__name__}: {exc}") from exc
