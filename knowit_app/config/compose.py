"""Compose the app config from the shipped ``conf/``: the one place that does it.

``knowit-app --help``, the Python API (:func:`knowit_app.api.compose_config`) and the sweep
spec (each swept config-group option) all compose here, so they see exactly what the Hydra app
would compose from the same overrides.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from omegaconf import DictConfig, open_dict

CONF_MODULE = "knowit_app.conf"
PRIMARY_CONFIG = "config"
# Groups a sweep cannot choose between runs (the sweep file itself; Hydra's own settings).
NOT_SWEEPABLE_GROUPS = ("sweep",)


def compose(overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    """The app config composed with ``overrides``, without the ``hydra`` node.

    Hydra's public ``hydra.compose`` needs the process-wide ``GlobalHydra`` initialised, and
    ``initialize_config_module`` refuses to run while an app (a sweeper inside ``knowit-app -m``)
    holds it. There is no public equivalent that composes without touching that global state,
    so this uses Hydra's config loader directly (``hydra._internal``, the only such use here);
    it is what ``hydra.compose`` calls underneath.
    """
    from hydra import version
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode

    from knowit_app.config.schema import register_schemas

    register_schemas()
    version.setbase("1.3")  # what the app's @hydra.main declares
    loader = ConfigLoaderImpl(create_config_search_path(f"pkg://{CONF_MODULE}"))
    cfg = loader.load_configuration(PRIMARY_CONFIG, list(overrides), RunMode.RUN,
                                    from_shell=False)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


@cache
def option_config(group: str, option: str) -> DictConfig:
    """The app config with ``<group>=<option>``: the fields that option has (cached, read-only)."""
    return compose([f"{group}={option}"])


def _walk(node: Traversable, prefix: str, groups: dict[str, list[str]]) -> None:
    for entry in sorted(node.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            group = f"{prefix}{entry.name}"
            options = sorted(f.name[:-5] for f in entry.iterdir() if f.name.endswith(".yaml"))
            if options:
                groups[group] = options
            _walk(entry, f"{group}/", groups)


def config_groups() -> dict[str, list[str]]:
    """Each config group under ``conf/`` (``hydra/launcher`` included) and its options."""
    groups: dict[str, list[str]] = {}
    _walk(resources.files(CONF_MODULE), "", groups)
    return dict(sorted(groups.items()))


def sweepable_groups() -> dict[str, list[str]]:
    """The groups a sweep may choose between (``arch: {values: [mlp, cnn]}``): top-level ones."""
    return {group: options for group, options in config_groups().items()
            if "/" not in group and group not in NOT_SWEEPABLE_GROUPS}
