"""What a training leaves in its offline W&B run: history per epoch and the summary.

Lightning's ``WandbLogger`` does the logging, attached to the run the app started; this reads
the run's ``.wandb`` file back (W&B's record log of protobuf records) to check what ``wandb
sync`` would upload: one ``train_loss`` and one ``valid_loss`` per epoch against ``epoch``,
and ``best_valid_loss`` in the summary.
"""

from __future__ import annotations

import json
import struct
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from knowit_app.api import compose_config
from knowit_app.training.run import plan_training
from knowit_app.training.wandb_run import fit_tracked

BLOCK = 32 * 1024
FILE_HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
RECORD_HEADER = struct.Struct("<IHB")  # crc32, length, type (1 full, 2 first, 3 middle, 4 last)

pytestmark = pytest.mark.slow  # a real two-epoch training with a real offline W&B run


def wandb_records(path: Path) -> list:
    """The protobuf records of a ``.wandb`` file (a LevelDB-style log of 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    ident, _, _ = FILE_HEADER.unpack_from(data)
    assert ident == b":W&B", path
    records, pending, pos = [], b"", FILE_HEADER.size
    while pos + RECORD_HEADER.size <= len(data):
        room = BLOCK - pos % BLOCK
        if room < RECORD_HEADER.size:  # block trailer: zero padding
            pos += room
            continue
        _, length, kind = RECORD_HEADER.unpack_from(data, pos)
        if kind == 0:
            break
        pos += RECORD_HEADER.size
        pending += data[pos:pos + length]
        pos += length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def history_and_summary(run_dir: Path) -> tuple[list[dict], dict]:
    """History rows and the final summary of one offline run directory."""
    history, summary = [], {}
    for record in wandb_records(next(run_dir.glob("*.wandb"))):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({_key(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "summary":
            summary.update({_key(i): json.loads(i.value_json) for i in record.summary.update})
    return history, summary


def written_out(run_dir: Path) -> Path:
    """The run's ``.wandb`` file as ``wandb sync`` finds it once the process has ended.

    ``run.finish()`` returns when the run is finished, but W&B's service, a separate process,
    may write the file's last block a moment later (seen in CI: the header records only). The
    end of the process shuts the service down, which writes every file out; ``teardown`` does
    the same here.
    """
    import wandb

    wandb.teardown()
    path = next(run_dir.glob("*.wandb"))
    assert wandb_records(path)[-1].WhichOneof("record_type") == "exit", path
    return path


def test_an_offline_run_has_each_epoch_and_the_best_score(tmp_path):
    cfg = compose_config([f"exp_dir={tmp_path}", "model_name=w", "data.limit=5",
                          "arch.width=16", "data.batch_size=256", "trainer.max_epochs=2",
                          "wandb.mode=offline", f"wandb.dir={tmp_path / 'runs'}"])
    result = fit_tracked(plan_training(cfg), tmp_path / "run", "w-run")
    (run_dir,) = (tmp_path / "runs" / "wandb").glob("offline-run-*")
    written_out(run_dir)
    history, summary = history_and_summary(run_dir)

    per_epoch: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in history:
        assert "epoch" in row, row  # every row carries the step metric
        for key in ("train_loss", "valid_loss"):
            if key in row:
                per_epoch[key][row["epoch"]].append(row[key])
    for key in ("train_loss", "valid_loss"):
        assert {e: len(v) for e, v in per_epoch[key].items()} == {0: 1, 1: 1}, key
    valid = [per_epoch["valid_loss"][e][0] for e in (0, 1)]
    assert result.best_score == pytest.approx(min(valid))
    assert summary["best_valid_loss"] == pytest.approx(result.best_score)
    assert summary["valid_loss"] == pytest.approx(valid[-1]) and summary["epoch"] == 1
    # The package list W&B keeps per run (the app writes it once per process, W&B used to
    # re-read every package's metadata per run): saved now, so `wandb sync` uploads it.
    records = wandb_records(next(run_dir.glob("*.wandb")))
    saved = [(f.path, f.policy) for r in records if r.WhichOneof("record_type") == "files"
             for f in r.files.files]
    assert ("requirements.txt", 0) in saved  # 0: FilesItem.NOW
    packages = (run_dir / "files" / "requirements.txt").read_text().splitlines()
    assert any(p.startswith("torch==2.") for p in packages)
    assert any(p.startswith("lightning==") for p in packages)


def test_a_failing_finish_never_hides_the_training_error(tmp_path, monkeypatch, caplog):
    """A requeue kills W&B's service: ``finish`` then fails, but the error that ended the
    training is what the job must see (and record in error.txt)."""
    import knowit_app.training.run as run_module
    import knowit_app.training.wandb_run as wandb_run

    started = []
    real_start = wandb_run.start_wandb_run

    def start(cfg, name):
        run, owned = real_start(cfg, name)
        started.append(run)

        def lost(*args, **kwargs):
            raise ConnectionResetError("Connection lost")

        monkeypatch.setattr(run, "finish", lost)
        return run, owned

    def fails(*args, **kwargs):
        raise ValueError("the training's own error")

    monkeypatch.setattr(wandb_run, "start_wandb_run", start)
    monkeypatch.setattr(run_module, "execute", fails)
    cfg = compose_config([f"exp_dir={tmp_path}", "model_name=w", "wandb.mode=offline",
                          f"wandb.dir={tmp_path / 'runs'}"])
    try:
        with caplog.at_level("WARNING", logger="knowit_app.training"), \
                pytest.raises(ValueError, match="the training's own error"):
            fit_tracked(SimpleNamespace(cfg=cfg), tmp_path / "run", "w-fails")
    finally:
        monkeypatch.undo()
        for run in started:
            run.finish(exit_code=1)
    assert len(started) == 1
    assert "W&B run not finished cleanly: Connection lost" in caplog.text


def test_wandb_disabled_by_the_environment_still_trains(tmp_path, monkeypatch):
    """``WANDB_MODE=disabled`` (a user's or a cluster's) wins over ``wandb.mode=offline``: W&B
    hands back a run without a directory, and the training goes on without it."""
    import wandb

    wandb.teardown()  # W&B reads its environment once per process; an earlier test set it up
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = compose_config([f"exp_dir={tmp_path}", "model_name=w", "data.limit=2",
                          "arch.width=16", "trainer.max_epochs=1", "wandb.mode=offline",
                          f"wandb.dir={tmp_path / 'runs'}"])
    result = fit_tracked(plan_training(cfg), tmp_path / "run", "w-run")
    assert result.state == "finished" and result.best_score is not None
    assert not list((tmp_path / "runs").glob("wandb/offline-run-*"))
