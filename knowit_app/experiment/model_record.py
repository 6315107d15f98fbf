"""A trained model's own record: ``model_args.yaml`` (what training resolved) and which
checkpoint holds its weights. Read and written only here."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from knowit_app.errors import KnowitError
from knowit_app.experiment.io import write_text_atomically
from knowit_app.experiment.layout import CHECKPOINT_PREFIX, MODEL_ARGS_FILE, RESULT_FILE
from knowit_app.experiment.runs import RunResult


def save_model_args(out_dir: Path, args: Mapping[str, Any]) -> Path:
    """Write ``model_args.yaml`` (what training resolved; see training/model_args.py)."""
    text = yaml.safe_dump(dict(args), sort_keys=False)
    return write_text_atomically(Path(out_dir) / MODEL_ARGS_FILE, text)


def read_model_args(model_dir: Path,
                    sections: tuple[str, ...] = ("data", "arch", "trainer")) -> dict[str, Any]:
    """Read a model's ``model_args.yaml`` as plain Python values; KnowitError naming the file
    when it is not YAML or not a record of a training: not a mapping, or without one of
    ``sections`` (a reader that only looks values up, as the report does, asks for none)."""
    path = Path(model_dir) / MODEL_ARGS_FILE
    try:
        args = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise KnowitError(f"{path} is damaged (not YAML{at}); restore it or retrain the "
                          "model") from exc
    if not isinstance(args, dict):
        raise KnowitError(f"{path} is not a training record (not a mapping); restore it or "
                          "retrain the model")
    lacking = [k for k in sections if not isinstance(args.get(k), dict)]
    if lacking:
        raise KnowitError(f"{path} is not a training record (no {', '.join(lacking)} "
                          "section); restore it or retrain the model")
    return args


def model_checkpoint(model_dir: Path) -> Path | None:
    """The checkpoint of a model or run directory: the one its ``run_result.json`` names, else
    the only one; None when there is none. Several with none named is a KnowitError listing
    them: guessing could score someone else's weights as this model."""
    model_dir = Path(model_dir)
    found = sorted(model_dir.glob(f"{CHECKPOINT_PREFIX}*.ckpt"))
    try:
        named = RunResult.read(model_dir).best_checkpoint
    except (OSError, ValueError, TypeError):
        named = None
    if named and model_dir / str(named) in found:
        return model_dir / str(named)
    if named and found:
        raise KnowitError(f"{model_dir / RESULT_FILE} names checkpoint {named}, which is not "
                          f"there (found: {', '.join(p.name for p in found)}); restore it or "
                          "retrain the model")
    if len(found) > 1:
        raise KnowitError(f"{model_dir} holds {len(found)} checkpoints "
                          f"({', '.join(p.name for p in found)}) and no {RESULT_FILE} naming "
                          "the model's own; remove the others")
    return found[0] if found else None
