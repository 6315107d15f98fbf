"""Where a start may write: checked while Hydra builds its run dir, before it creates it.

Hydra resolves ``hydra.run.dir`` / ``hydra.sweep.dir`` and then creates that directory (and
writes ``.hydra/`` and the log into it) before the task runs. A name with ``../`` would make it
create folders outside the experiment directory, and an ``exp_dir`` that is a file or not
writable would end in an OS traceback. So ``conf/config.yaml`` builds both dirs with the
resolvers below, which check every name and the experiment directory first.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from omegaconf import OmegaConf

from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import MODELS_DIR, STAGING_DIR, SWEEPS_DIR, check_name


class StartRefused(BaseException):
    """A bad name or ``exp_dir`` found while Hydra builds its run dir.

    A BaseException on purpose: OmegaConf wraps any Exception a resolver raises, and Hydra
    prints any Exception with a traceback and exit status 1. This one passes both untouched to
    ``knowit_app.app.main``, which prints its ConfigError as one line and exits with status 2.
    """

    def __init__(self, error: ConfigError) -> None:
        super().__init__(str(error))
        self.error = error


def first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (what creating ``path`` would write in)."""
    path = Path(path)
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def check_writable_dir(key: str, path: str | Path) -> Path:
    """``path`` made absolute, if it is (or can be created as) a directory this user may write.

    Raises a one-line ConfigError naming ``key`` otherwise: a file in the way, or no write
    permission where the first missing folder would be created.
    """
    if not str(path).strip():
        raise ConfigError(key, "is empty; give a directory (the default is outputs)")
    target = Path(path).expanduser().absolute()
    try:  # Path.resolve stopped raising on a loop in Python 3.13; stat still does (ELOOP)
        target.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(key, f"{target} is a symlink loop; choose a directory") from None
    base = first_existing(target)
    if not base.is_dir():
        what = "is a file" if base == target else f"lies under {base}, which is a file"
        raise ConfigError(key, f"{target} {what}, not a directory; choose a directory")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(key, f"no permission to write in {base}; choose a directory you "
                               "can write to")
    return target


# Run dir -> the outermost folder Hydra makes to create it, noted when the dir is first
# resolved (before Hydra creates it), so a refused start removes what it made and no more.
_CREATED: dict[Path, Path] = {}


def first_created(run_dir: str | Path) -> Path | None:
    """The outermost folder that creating ``run_dir`` made (None if not known)."""
    return _CREATED.get(Path(run_dir).resolve())


def _note_created(path: Path) -> None:
    path = path.resolve()
    base = first_existing(path)
    if path in _CREATED or base == path:
        return
    missing = path
    while missing.parent != base:
        missing = missing.parent
    _CREATED[path] = missing


def run_dir(exp_dir: str, model_name: str, stamp: str) -> str:
    """``<exp_dir>/models/.staging/<model_name>-<stamp>``, once the names are known safe."""
    try:
        check_name("model_name", str(model_name))
        check_writable_dir("exp_dir", str(exp_dir))  # a file here is named as exp_dir
        staging = check_writable_dir("exp_dir", Path(str(exp_dir)) / MODELS_DIR / STAGING_DIR)
    except ConfigError as exc:
        raise StartRefused(exc) from None
    path = staging / f"{model_name}-{stamp}"
    _note_created(path)
    return str(path)


def sweep_dir(exp_dir: str, model_name: str, sweep_name: str) -> str:
    """``<exp_dir>/models/<model_name>/sweeps/<sweep_name>``, once the names are known safe."""
    try:
        check_name("model_name", str(model_name))
        check_name("sweep.name", str(sweep_name))
        check_writable_dir("exp_dir", str(exp_dir))
        return str(check_writable_dir("exp_dir", Path(str(exp_dir)) / MODELS_DIR
                                      / str(model_name) / SWEEPS_DIR / str(sweep_name)))
    except ConfigError as exc:
        raise StartRefused(exc) from None


def array_parallelism(parallel: object) -> int:
    """A Slurm array's concurrency from ``hydra.sweeper.parallel``: the number, or for ``auto``
    (one job per batch with a Slurm launcher) no limit of ours (256)."""
    text = str(parallel).strip()
    return int(text) if text.isdigit() and int(text) > 0 else 256


def register_resolvers() -> None:
    """Make ``${knowit.run_dir:...}``, ``${knowit.sweep_dir:...}`` and
    ``${knowit.array_parallelism:...}`` known (idempotent)."""
    for name, fn in (("knowit.run_dir", run_dir), ("knowit.sweep_dir", sweep_dir),
                     ("knowit.array_parallelism", array_parallelism)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)
