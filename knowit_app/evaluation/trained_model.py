"""Rebuild a trained model from ``model_args.yaml`` and its checkpoint, and score it.

Checkpoints hold only tensors and plain values, so they load with
``torch.load(path, weights_only=True)``; no pickled objects, no code from the checkpoint runs.
"""

from __future__ import annotations

import logging
import pickle
import re
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from knowit_app.archs import build_model
from knowit_app.data.prepared import PreparedData, prepare
from knowit_app.data.store import custom_datasets_dir, dataset_fingerprint, replaced_copy
from knowit_app.errors import ConfigError, KnowitError
from knowit_app.experiment.layout import MODEL_ARGS_FILE
from knowit_app.experiment.model_record import model_checkpoint
from knowit_app.training.model_args import read_model_args

log = logging.getLogger("knowit_app")
_WARNED_NO_FINGERPRINT: set[Path] = set()


class CheckpointError(KnowitError):
    """A checkpoint file that cannot be loaded as a plain one (empty, cut short, foreign)."""


class DatasetChangedError(KnowitError):
    """The model's dataset is no longer the data it was trained on."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning checkpoint's contents, loaded with ``weights_only=True``.

    Every checkpoint read for a trained model comes through here, so an empty, truncated or
    foreign file (a pickle that would run code) gives one line naming it, never a traceback.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty or corrupt")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*pickle protocol.*")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        what = re.search(r"GLOBAL (\S+)", str(exc))  # the callable a payload would run
        if what is None:  # a damaged or foreign byte stream, not a refused object
            raise CheckpointError(f"checkpoint {path} is empty or corrupt") from exc
        raise CheckpointError(f"checkpoint {path} is not a plain checkpoint (it asks to run "
                              f"{what.group(1)}); it was not loaded (a checkpoint holds only "
                              "tensors and plain values)") from exc
    except (PermissionError, FileNotFoundError, IsADirectoryError) as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror}") from exc
    except (OSError, EOFError, RuntimeError, ValueError, KeyError, IndexError, TypeError,
            zipfile.BadZipFile) as exc:  # a cut-short zip fails in a seek (EINVAL), among others
        raise CheckpointError(f"checkpoint {path} is empty or corrupt") from exc
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise CheckpointError(f"checkpoint {path} holds no state_dict; it is not a checkpoint "
                              "knowit-app wrote")
    return data


def check_dataset(args: dict[str, Any], model_dir: Path) -> None:
    """Refuse a model whose dataset changed since training (re-imported under its name).

    Models trained before fingerprints were recorded load as before, with one warning.
    """
    name = str(args["data"]["name"])
    recorded = args.get("dataset_fingerprint")
    if not recorded:
        if model_dir.resolve() not in _WARNED_NO_FINGERPRINT:
            _WARNED_NO_FINGERPRINT.add(model_dir.resolve())
            log.warning("%s records no dataset fingerprint (trained by an older version); "
                        "cannot check that dataset %r is unchanged since",
                        model_dir / MODEL_ARGS_FILE, name)
        return
    now = dataset_fingerprint(name, args["exp_dir"])
    if now == recorded:
        return
    kept = replaced_copy(name, args["exp_dir"], str(recorded))
    how = (f"move {kept} back to {custom_datasets_dir(args['exp_dir']) / name}" if kept
           else f"re-import the data it was trained on as {name!r}")
    raise DatasetChangedError(
        f"{model_dir} was trained on dataset {name!r} as it was then, but {name!r} has changed "
        f"since (fingerprint {_short(recorded)} then, {_short(now)} now); {how}, or retrain "
        "the model")


def _short(fp: object) -> str:
    return str(fp).removeprefix("sha256:")[:12] or "(empty)"


@contextmanager
def from_record(model_dir: Path) -> Iterator[None]:
    """A value of a model's record the app refuses names the record too: the key alone would
    send the user to the command line, while the fix is in the file (or a retrain)."""
    try:
        yield
    except ConfigError as exc:
        if exc.key == "data.name":  # the dataset is missing or damaged: fixed by re-importing
            raise
        raise ConfigError(exc.key, f"{exc.detail} (read from {Path(model_dir) / MODEL_ARGS_FILE})"
                          ) from exc


@dataclass
class TrainedModel:
    """A rebuilt network (in eval mode) with the arguments it was trained with."""

    network: nn.Module
    args: dict[str, Any]
    checkpoint: Path

    @property
    def task(self) -> str:
        return self.args["trainer"]["task"]

    def prepare_data(self) -> PreparedData:
        """The model's data, windowed, split and scaled exactly as in training."""
        with from_record(self.checkpoint.parent):
            return prepare(self.args["data"], self.task, self.args["exp_dir"])

    def score(self, split: str = "valid", prepared: PreparedData | None = None) -> float:
        """Mean loss over a whole split (``train``, ``valid`` or ``eval``), as training logs it."""
        from knowit_app.evaluation.scores import score_split

        return score_split(self, prepared or self.prepare_data(), split, perf=False)["loss"]


def load_trained_model(model_dir: str | Path) -> TrainedModel:
    """Rebuild the network of a model (or sweep run) directory from its files."""
    from knowit_app.experiment.model_dir import recover

    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise KnowitError(f"no model directory {model_dir}")
    recover(model_dir)  # finish a consolidation or overwrite a kill interrupted
    ckpt = model_checkpoint(model_dir)
    missing = [name for name, absent in (("bestmodel-*.ckpt", ckpt is None),
                                         (MODEL_ARGS_FILE, not (model_dir / MODEL_ARGS_FILE)
                                          .is_file())) if absent]
    if missing:
        raise KnowitError(f"{model_dir} holds no trained model (no {' and no '.join(missing)})")
    args = read_model_args(model_dir)
    # The exp dir holding models/ is where the model's data and custom archs are now (the one
    # recorded at training may have been moved or copied since).
    exp_dir = next((d.parent for d in model_dir.resolve().parents if d.name == "models"), None)
    if exp_dir is not None:
        args["exp_dir"] = str(exp_dir)
    check_dataset(args, model_dir)
    arch = args["arch"]
    if str(arch.get("name", "")).upper() == "MLP" and "output_bias" not in arch:
        arch["output_bias"] = True  # trained before the MLP head lost its bias (see schema)
    dyn = args["data_dynamics"]
    classes = dyn.get("class_set")
    with from_record(model_dir):
        network = build_model(args["arch"], tuple(dyn["in_shape"]), tuple(dyn["out_shape"]),
                              args["trainer"]["task"], len(classes) if classes else None,
                              exp_dir=exp_dir)
    state = load_checkpoint(ckpt)["state_dict"]
    prefix = "model."
    try:
        network.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                 if k.startswith(prefix)})
    except RuntimeError as exc:  # missing, unexpected or differently shaped weights
        detail = " ".join(str(exc).split())[:200]
        raise CheckpointError(f"checkpoint {ckpt} does not fit the architecture in "
                              f"{MODEL_ARGS_FILE} ({detail})") from exc
    network.eval()
    return TrainedModel(network, args, ckpt)
