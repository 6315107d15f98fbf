"""A Python API that mirrors KnowIt's, built on the same core as the Hydra app.

``KnowIt(exp_dir).train_model(model_name, kwargs={'data': ..., 'arch': ..., 'trainer': ...})``
accepts KnowIt's keyword names (including the W&B sweep tutorial's exact dicts), turns them into
the app's config by composing ``conf/`` with Hydra and merging the kwargs onto it (so the same
schemas check them), and trains with the same plan/execute functions as ``knowit-app``.
"""

from __future__ import annotations

import logging
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from knowit_app.config.compose import compose
from knowit_app.config.knowit_kwargs import knowit_kwargs_to_overrides
from knowit_app.errors import ConfigError
from knowit_app.experiment.layout import ExperimentLayout

log = logging.getLogger("knowit_app")


def compose_config(overrides: list[str], extra: Mapping[str, Any] | None = None) -> DictConfig:
    """Compose ``conf/`` as the app would, then merge ``extra`` (type-checked by the schemas)."""
    cfg = compose(overrides)
    if extra:
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.create(dict(extra)))
        except Exception as exc:  # omegaconf's validation errors carry the full key path
            key = getattr(exc, "full_key", "") or "kwargs"
            raise ConfigError(str(key), str(exc).splitlines()[0]) from exc
    return cfg


DEVICES = ("cpu", "gpu", "cuda", "mps")  # KnowIt's 'cpu'/'gpu', and Lightning's own names


def check_device(device: str) -> str:
    """KnowIt's ``device`` argument as Lightning's accelerator name (the same words)."""
    if device not in DEVICES:
        raise ConfigError("device", f"unknown device {device!r}; allowed: {', '.join(DEVICES)}")
    return device


def check_device_available(device: str) -> None:
    """Refuse a device this machine lacks, naming the ones it has (before any work)."""
    from knowit_app.config.checks import available_accelerators

    here = set(available_accelerators())
    gpus = here & {"cuda", "mps"}
    usable = [d for d in DEVICES if d == "cpu" or d in here or (d == "gpu" and gpus)]
    if device not in usable:
        raise ConfigError("device", f"{device!r} is not available on this machine; "
                          f"available here: {', '.join(usable)}")


class KnowIt:
    """KnowIt's entry point: one object per experiment directory."""

    def __init__(self, custom_exp_dir: str | Path | None = None, *, safe_mode: bool = True,
                 overwrite: bool = False) -> None:
        self.exp_dir = Path(custom_exp_dir if custom_exp_dir is not None else "outputs")
        self.layout = ExperimentLayout(self.exp_dir)
        self.safe_mode = safe_mode
        self.overwrite = overwrite
        self.device: str | None = None  # KnowIt's global_device; see global_args

    def config_for(self, model_name: str, kwargs: Mapping[str, Any]) -> DictConfig:
        """The app config that KnowIt-style ``kwargs`` stand for (nothing is trained)."""
        overrides, extra = knowit_kwargs_to_overrides(kwargs)
        base = {"model_name": model_name, "exp_dir": str(self.exp_dir)}
        custom_hps = None
        if "arch=custom" in overrides:  # a custom arch's own hyperparameters: no schema to merge
            custom_hps = extra["arch"].pop("arch_hps", {})
        cfg = compose_config(overrides, {**base, **extra})
        if custom_hps:
            OmegaConf.set_struct(cfg.arch.arch_hps, False)
            cfg.arch.arch_hps = OmegaConf.merge(cfg.arch.arch_hps, custom_hps)
        return cfg

    def _overwrites(self, safe_mode: bool | None) -> bool:
        """Whether a call may replace what is there: its own ``safe_mode`` if given, else the
        object's ``overwrite`` or ``safe_mode=False``."""
        if safe_mode is not None:
            return not safe_mode
        return self.overwrite or not self.safe_mode

    def train_model(self, model_name: str, kwargs: Mapping[str, Any],
                    sweep_kwargs: Mapping[str, Any] | None = None, *,
                    device: str | None = None, safe_mode: bool | None = None,
                    overwrite: bool | None = None, **ignored: Any) -> Any:
        """Train ``model_name`` into ``<exp_dir>/models/<model_name>/`` and return its result.

        With ``sweep_kwargs`` (``sweep_name``, ``run_name``, ``log_to_local``) the run goes to
        ``models/<model>/sweeps/<sweep>/<run>/`` instead, as in KnowIt's sweep tutorial.
        ``device`` ('cpu', 'gpu', 'cuda', 'mps') picks the accelerator; without it,
        ``kwargs['trainer']['accelerator']``, then :meth:`global_args`'s device, then the
        trainer config's. ``safe_mode=False``, as in KnowIt, lets the training replace an
        existing model (``safe_mode=True`` protects it even under ``KnowIt(overwrite=True)``).
        """
        from knowit_app.config.checks import check_accelerator_available
        from knowit_app.experiment.model_dir import discard_staging, publish, refuse_existing
        from knowit_app.training.run import plan_training
        from knowit_app.training.wandb_run import fit_tracked

        for name in ignored:
            warnings.warn(f"train_model: argument {name!r} has no effect in knowit-app",
                          stacklevel=2)
        if overwrite is None:
            overwrite = self._overwrites(safe_mode)
        if device is None and "accelerator" not in (kwargs.get("trainer") or {}):
            device = self.device
        cfg = self.config_for(model_name, kwargs)
        cfg.overwrite = bool(overwrite)
        if device is not None:
            cfg.trainer.accelerator = check_device(device)
            check_device_available(device)
        check_accelerator_available(cfg.trainer.accelerator)
        model_dir = self.layout.model_dir(model_name)
        if sweep_kwargs is not None:
            return self._train_sweep_run(cfg, model_name, sweep_kwargs)
        refuse_existing(model_dir, cfg.overwrite)
        plan = plan_training(cfg)
        self.layout.staging_dir.mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix=f"{model_name}-{time.strftime('%Y%m%d-%H%M%S')}-",
                                       dir=self.layout.staging_dir))
        result = fit_tracked(plan, staged, model_name)
        kept = publish(staged, model_dir, cfg.overwrite)
        discard_staging(staged, self.layout.staging_dir)
        if kept is not None:
            log.warning("the model that was in %s is kept in %s", model_dir, kept)
        return result

    def _train_sweep_run(self, cfg: DictConfig, model_name: str,
                         sweep_kwargs: Mapping[str, Any]) -> Any:
        from knowit_app.training.run import plan_training
        from knowit_app.training.wandb_run import fit_tracked

        missing = {"sweep_name", "run_name"} - set(sweep_kwargs)
        if missing:
            raise ConfigError("sweep_kwargs", f"missing {', '.join(sorted(missing))}; "
                              "give sweep_name, run_name and log_to_local")
        run_dir = self.layout.run_dir(model_name, str(sweep_kwargs["sweep_name"]),
                                      str(sweep_kwargs["run_name"]))
        plan = plan_training(cfg)
        if sweep_kwargs.get("log_to_local", True):
            return fit_tracked(plan, run_dir, run_dir.name)
        with tempfile.TemporaryDirectory(prefix="knowit-run-") as scratch:
            return fit_tracked(plan, Path(scratch), run_dir.name)

    def available_datasets(self) -> dict[str, list[str]]:
        """KnowIt's shape: ``{'defaults': [built-in names], 'custom': [imported names]}``
        (``knowit-app-info datasets`` shows each one's components, instances and size)."""
        from knowit_app.data.store import dataset_names

        return dataset_names(self.exp_dir)

    def available_archs(self) -> dict[str, list[str]]:
        """KnowIt's shape: ``{'defaults': [built-in names], 'custom': [names imported into
        custom_archs/]}``, each a valid ``arch`` ``'name'`` (see :meth:`import_arch`)."""
        from knowit_app.archs import ARCH_NAMES, custom

        return {"defaults": list(ARCH_NAMES), "custom": list(custom.available(self.exp_dir))}

    def import_arch(self, new_arch_path: str | Path, *, safe_mode: bool | None = None) -> Path:
        """Check a KnowIt architecture module and copy it to ``<exp_dir>/custom_archs/``; train
        it with ``kwargs={'arch': {'name': <module>, 'arch_hps': {...}}}`` or, from the
        command line, ``arch=custom arch.name=<module>``."""
        from knowit_app.archs.custom import import_arch

        return import_arch(new_arch_path, self.exp_dir, overwrite=self._overwrites(safe_mode))

    def global_args(self, *, device: str | None = None, safe_mode: bool | None = None,
                    and_viz: bool | None = None, verbose: bool = False) -> dict[str, Any]:
        """KnowIt's global settings. ``device`` ('cpu', 'gpu' or 'cuda') is the accelerator of
        later trainings that name none themselves; unset, the trainer config's (cpu) is used."""
        if device is not None:
            self.device = check_device(device)  # a bad name is refused now, not later
        if safe_mode is not None:
            self.safe_mode = bool(safe_mode)
        if and_viz is not None:
            self.and_viz = bool(and_viz)
        return {"global_device": self.device or "cpu",
                "global_and_viz": getattr(self, "and_viz", False),
                "global_safe_mode": self.safe_mode}

    def summarize_dataset(self, name: str) -> dict[str, Any]:
        """KnowIt's dataset summary: name, components, instances and time_delta."""
        import datetime as dt

        from knowit_app.data.store import load_dataset

        ds = load_dataset(name, self.exp_dir)
        return {"dataset_name": ds.name, "components": list(ds.components),
                "instances": list(ds.instance_names),
                "time_delta": dt.timedelta(seconds=ds.time_delta)}

    def train_model_from_yaml(self, model_name: str, config_path: str | Path,
                              device: str | None = None, **more: Any) -> Any:
        """Train from a YAML file of KnowIt kwargs (``data``, ``arch``, ``trainer``), such as a
        model's ``model_args.yaml``; keys KnowIt writes there that are not inputs are skipped."""
        import yaml

        path = Path(config_path)
        if not path.is_file():
            raise ConfigError("config_path", f"file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, Mapping):
            raise ConfigError("config_path", f"{path} does not hold a mapping")
        kwargs = {k: loaded[k] for k in ("data", "arch", "trainer") if k in loaded}
        return self.train_model(model_name, kwargs, device=device, **more)

    def run_model_eval(self, model_name: str, device: str | None = None,
                       **ignored: Any) -> Any:
        """KnowIt's name for scoring a trained model on train, valid and eval (on the CPU,
        whatever ``device`` says: scoring, predictions and attributions always run there)."""
        if device is not None:
            check_device(device)
        return self.evaluate_model(model_name)

    def generate_predictions(self, model_name: str, kwargs: Mapping[str, Any], *,
                             device: str | None = None, safe_mode: bool | None = None,
                             and_viz: bool | None = None) -> Any:
        """KnowIt's ``kwargs={'predictor': {'prediction_set': 'eval'}}``: write the model's
        predictions on that set (``predictions/<set>.parquet`` and a figure)."""
        if device is not None:
            check_device(device)  # predictions run on the CPU (see run_model_eval)
        predictor = dict(kwargs.get("predictor") or {})
        if "prediction_set" not in predictor:
            raise ConfigError("predictor.prediction_set", "missing; give train, valid or eval")
        unknown = sorted(set(predictor) - {"prediction_set", "rescale_outputs"})
        if unknown:
            raise ConfigError(f"predictor.{unknown[0]}", "unknown option; allowed: "
                              "prediction_set, rescale_outputs")
        return self.write_predictions(model_name, str(predictor["prediction_set"]))

    def import_dataset(self, kwargs: Mapping[str, Any], *,
                       safe_mode: bool | None = None) -> Path:
        """Import a DataFrame or a .pickle/.csv/.parquet/.json file as a dataset, as KnowIt does.

        KnowIt's ``{'data_import': {'raw_data': ..., 'meta': None, 'base_nan_filler': None,
        'nan_filled_components': None}}`` works unchanged (metadata from ``meta`` or
        ``raw_data.attrs``); the app's own options (``name``, ``time_column``,
        ``instance_column``, ``components``, ``time_delta``, ``overwrite``) may be added.
        ``safe_mode=False`` (or ``overwrite``) replaces an existing import.
        """
        from knowit_app.data.importer import import_dataset

        args = dict(kwargs.get("data_import", kwargs))
        meta = args.pop("meta", None)
        if meta is None and args.get("meta_data") is not None:
            meta = args.pop("meta_data")
        args.pop("meta_data", None)
        source = args.pop("raw_data", args.pop("source", None))
        if source is None:
            raise ConfigError("data_import.raw_data", "missing; give a DataFrame or a path to "
                              "a .pickle, .csv, .parquet or .json file")
        allowed = {"name", "time_column", "instance_column", "components", "time_delta",
                   "base_nan_filler", "nan_filled_components", "overwrite"}
        unknown = sorted(set(args) - allowed)
        if unknown:
            raise ConfigError(f"data_import.{unknown[0]}",
                              f"unknown option; allowed: raw_data, meta, "
                              f"{', '.join(sorted(allowed))}")
        if "overwrite" not in args:
            args["overwrite"] = self._overwrites(safe_mode)
        return import_dataset(source if not isinstance(source, Path) else str(source),
                              args.pop("name", None), self.exp_dir, meta=meta, **args)

    def import_knowit_dataset(self, knowit_exp_dir: str | Path, name: str,
                              new_name: str | None = None, *, overwrite: bool = False) -> Path:
        """Copy dataset ``name`` from a KnowIt experiment dir's ``custom_datasets`` into this
        experiment (its meta pickle is read without running code)."""
        from knowit_app.data.importer import import_knowit_dataset

        return import_knowit_dataset(knowit_exp_dir, name, self.exp_dir, new_name=new_name,
                                     overwrite=overwrite or self.overwrite)

    def consolidate_sweep(self, model_name: str, sweep_name: str,
                          selection_by_min: bool | None = None, safe_mode: bool | None = None,
                          wipe_after: bool = False, *, run: str | None = None) -> Any:
        """Copy the sweep's best run (or ``run``) into the model directory, atomically.

        KnowIt's arguments: ``selection_by_min`` overrides the sweep's ``metric.goal`` (None:
        the goal the sweep ran with); ``safe_mode`` is accepted and changes nothing, since a
        replaced model is always kept in ``.replaced/``; ``wipe_after`` is refused with a
        warning, since finished runs are never deleted here.
        """
        from knowit_app.experiment.consolidate import consolidate_sweep

        del safe_mode  # the swap never deletes: the old model moves to .replaced/<time>/
        if selection_by_min is not None and not isinstance(selection_by_min, bool):
            raise ConfigError("selection_by_min", f"expected True, False or None, got "
                              f"{selection_by_min!r}; a run is picked with run=...")
        goal = None if selection_by_min is None else (
            "minimize" if selection_by_min else "maximize")
        result = consolidate_sweep(self.exp_dir, model_name, sweep_name, run=run, goal=goal)
        if wipe_after:
            log.warning("wipe_after: the sweep's runs are kept in %s (this app never deletes "
                        "finished runs); remove that folder yourself if you no longer need it",
                        self.layout.sweep_dir(model_name, sweep_name))
        log.info("consolidated run %s (%s=%.5g) into %s", result.run, result.monitor,
                 result.score, result.model_dir)
        if result.replaced is not None:
            log.warning("the model that was in %s is kept in %s", result.model_dir,
                        result.replaced)
        return result

    def evaluate_model(self, model_name: str, sweep_name: str | None = None,
                       run_name: str | None = None, sets: Any = None) -> Any:
        """Score the model (or a sweep run) on train/valid/eval; see knowit_app.evaluation."""
        from knowit_app.evaluation.forward import find_model_dir
        from knowit_app.evaluation.scores import evaluate_model

        return evaluate_model(find_model_dir(self.exp_dir, model_name, sweep_name, run_name),
                              sets)

    def write_predictions(self, model_name: str, split: str = "eval",
                          sweep_name: str | None = None, run_name: str | None = None) -> Any:
        """Write ``predictions/<split>.parquet`` and ``.png`` for the model (or a sweep run)."""
        from knowit_app.evaluation.forward import find_model_dir
        from knowit_app.evaluation.predictions import write_predictions

        return write_predictions(find_model_dir(self.exp_dir, model_name, sweep_name, run_name),
                                 split)

    def interpret_model(self, model_name: str, kwargs: Mapping[str, Any],
                        sweep_name: str | None = None, run_name: str | None = None, *,
                        device: str | None = None, safe_mode: bool | None = None,
                        and_viz: bool | None = None) -> Any:
        """KnowIt's ``interpret_model``: ``kwargs={'interpreter': {'interpretation_method':
        ..., 'interpretation_set': 'valid', 'selection': 'random', 'size': 100,
        'multiply_by_inputs': True, 'seed': 123, 'rescale_inputs': True}}`` (defaults shown).

        Writes ``interpretations/<Method>-<set>-<selection>-<size>-<multiply>-<seed>.npz`` and
        ``.json`` and the pictures in ``visualizations/``; returns knowit_app.interpret's result.
        KnowIt's ``device``, ``safe_mode`` and ``and_viz`` are accepted: attributions run on the
        CPU, the pictures are always drawn, and a file of the same name (the same options,
        hence the same result) is replaced atomically.
        """
        from knowit_app.evaluation.forward import find_model_dir
        from knowit_app.interpret.options import from_knowit_kwargs
        from knowit_app.interpret.run import interpret_model

        if device is not None:
            check_device(device)  # attributions run on the CPU (see run_model_eval)
        options = from_knowit_kwargs(kwargs)
        return interpret_model(find_model_dir(self.exp_dir, model_name, sweep_name, run_name),
                               options)
