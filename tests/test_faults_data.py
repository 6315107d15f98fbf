"""Hostile data and checkpoints: a replaced dataset, damaged or foreign checkpoints, NaN-only
columns and silent changes at import each end in one clear line (or a note), never a traceback
or a silently different result."""

from __future__ import annotations

import logging
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import checkpoints, train_in_process

from knowit_app.cli.evaluate import eval_main, predict_main
from knowit_app.cli.import_data import main as import_main
from knowit_app.data.importer import import_dataset
from knowit_app.data.store import (
    ARRAYS_FILE,
    META_FILE,
    custom_datasets_dir,
    read_dataset,
    read_meta,
    save_dataset,
)
from knowit_app.errors import ConfigError, KnowitError
from knowit_app.evaluation.trained_model import (
    CheckpointError,
    DatasetChangedError,
    load_trained_model,
)
from knowit_app.experiment.layout import MODEL_ARGS_FILE, RESULT_FILE

ON_NM = ("data.name=nm", "data.in_components=[a]", "data.out_components=[b]",
         "data.in_chunk=[-8,0]", "data.split_method=chronological", "data.limit=null")


def series(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n).cumsum()
    return pd.DataFrame({"a": a, "b": np.roll(a, 1) + rng.normal(scale=0.1, size=n)},
                        index=pd.date_range("2024-01-01", periods=n, freq="1s"))


def write_csv(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index_label="time")
    return str(path)


def train(exp, name, *overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train_in_process(exp, name, *overrides)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in "\n".join(err), err
    return errors[0]


@pytest.fixture(scope="module")
def trained_on_nm(tmp_path_factory):
    """``nm`` imported from a CSV and ``nm1`` trained on it (one short epoch)."""
    root = tmp_path_factory.mktemp("fp")
    exp = root / "exp"
    assert import_main([write_csv(series(0), root / "first.csv"), "--name", "nm",
                        "--exp-dir", str(exp)]) == 0
    return exp, train(exp, "nm1", *ON_NM)


def test_reimporting_a_dataset_makes_eval_refuse_until_the_old_copy_is_back(trained_on_nm,
                                                                          tmp_path, capsys):
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    model_dir = exp / "models" / "nm1"
    recorded = yaml.safe_load((model_dir / MODEL_ARGS_FILE).read_text())["dataset_fingerprint"]
    assert recorded == read_meta(custom_datasets_dir(exp) / "nm")["fingerprint"]
    argv = ["model_name=nm1", f"exp_dir={exp}", "sets=valid"]
    capsys.readouterr()
    assert eval_main(argv) == 0
    before = capsys.readouterr().out

    # another file under the same name: kept aside, and the model trained on it is named
    assert import_main([write_csv(series(1), tmp_path / "second.csv"), "--name", "nm",
                        "--exp-dir", str(exp), "--overwrite"]) == 0
    out = capsys.readouterr().out
    (kept,) = (custom_datasets_dir(exp) / ".replaced").glob("*/nm")
    assert read_meta(kept)["fingerprint"] == recorded
    assert "replaced" in out and "nm1" in out and str(kept) in out

    for main in (eval_main, predict_main):
        assert main(argv if main is eval_main else argv[:2]) == 2
        line = one_error_line(capsys)
        assert "'nm'" in line and "changed" in line and str(kept) in line and "retrain" in line
    with pytest.raises(DatasetChangedError):
        load_trained_model(model_dir)
    assert not (model_dir / "predictions").exists()

    # the old data moved back: the model scores exactly as before
    shutil.rmtree(custom_datasets_dir(exp) / "nm")
    os.replace(kept, custom_datasets_dir(exp) / "nm")
    assert eval_main(argv) == 0
    assert capsys.readouterr().out == before


def test_a_dataset_file_changed_after_import_is_noticed(trained_on_nm, tmp_path, capsys):
    """The fingerprint is computed from the arrays, not trusted from meta.json: arrays swapped
    behind the app's back (meta.json untouched) make eval refuse, naming the dataset."""
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    target = custom_datasets_dir(exp) / "nm"
    altered = read_dataset(target)
    altered.values[5, 0] += 1.0
    other = save_dataset(altered, tmp_path / "altered" / "nm")
    meta_before = (target / META_FILE).read_bytes()
    shutil.copyfile(other / ARRAYS_FILE, target / ARRAYS_FILE)
    assert (target / META_FILE).read_bytes() == meta_before
    assert eval_main(["model_name=nm1", f"exp_dir={exp}", "sets=valid"]) == 2
    line = one_error_line(capsys)
    assert "'nm'" in line and "changed" in line


def test_reimporting_the_same_data_changes_nothing(trained_on_nm, tmp_path, capsys):
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    assert import_main([write_csv(series(0), tmp_path / "again.csv"), "--name", "nm",
                        "--exp-dir", str(exp), "--overwrite"]) == 0
    assert "same data" in capsys.readouterr().out
    assert load_trained_model(exp / "models" / "nm1").args["data"]["name"] == "nm"


def test_a_model_without_a_fingerprint_loads_with_one_warning(trained_on_nm, tmp_path, caplog):
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    model_dir = exp / "models" / "nm1"
    args_file = model_dir / MODEL_ARGS_FILE
    args = yaml.safe_load(args_file.read_text())
    del args["dataset_fingerprint"]  # as written before fingerprints were recorded
    args_file.write_text(yaml.safe_dump(args, sort_keys=False))
    with caplog.at_level(logging.WARNING, logger="knowit_app"):
        load_trained_model(model_dir)
        load_trained_model(model_dir)
    said = [r for r in caplog.records if "fingerprint" in r.getMessage()]
    assert len(said) == 1 and "'nm'" in said[0].getMessage()


class _Payload:
    """A pickle that would run a command when loaded without weights_only."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _empty(path):
    path.write_bytes(b"")


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _text(path):
    path.write_text("not a checkpoint at all\n")


def _payload(path):
    torch.save({"state_dict": _Payload(str(path.parent / "PWNED"))}, path)


def _no_state(path):
    torch.save({"epoch": 3}, path)


def _other_arch(path):
    state = torch.load(path, map_location="cpu", weights_only=True)
    key = next(k for k in state["state_dict"] if k.endswith("weight"))
    state["state_dict"][key] = torch.zeros(3, 3)
    torch.save(state, path)


@pytest.mark.parametrize("damage, says", [
    (_empty, "is empty or corrupt"),
    (_truncated, "is empty or corrupt"),
    (_text, "is empty or corrupt"),
    (_payload, "is not a plain checkpoint (it asks to run posix.system); it was not loaded"),
    (_no_state, "holds no state_dict"),
    (_other_arch, "does not fit the architecture"),
])
def test_a_damaged_or_foreign_checkpoint_is_one_line(trained_on_nm, tmp_path, capsys, damage,
                                                     says):
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    model_dir = exp / "models" / "nm1"
    (ckpt,) = checkpoints(model_dir)
    damage(ckpt)
    capsys.readouterr()
    for main, argv in ((eval_main, ["model_name=nm1", f"exp_dir={exp}", "sets=valid"]),
                       (predict_main, ["model_name=nm1", f"exp_dir={exp}"])):
        assert main(argv) == 2
        line = one_error_line(capsys)
        assert line.startswith(f"error: checkpoint {ckpt} ") and says in line, line
    with pytest.raises(CheckpointError):
        load_trained_model(model_dir)
    assert not (model_dir / "PWNED").exists()
    assert not (model_dir / "predictions").exists()


@pytest.mark.parametrize("text, says", [
    ("data: [unclosed\n", "is damaged (not YAML"),
    ("", "is not a training record"),
    ("just a string\n", "is not a training record"),
])
def test_a_damaged_model_args_file_is_one_line_naming_it(trained_on_nm, tmp_path, capsys,
                                                         text, says):
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    args_file = exp / "models" / "nm1" / MODEL_ARGS_FILE
    args_file.write_text(text)
    capsys.readouterr()
    for main, argv in ((eval_main, ["model_name=nm1", f"exp_dir={exp}", "sets=valid"]),
                       (predict_main, ["model_name=nm1", f"exp_dir={exp}"])):
        assert main(argv) == 2
        line = one_error_line(capsys)
        assert str(args_file) in line and says in line, line


def test_a_bad_value_in_a_models_record_names_the_record(trained_on_nm, tmp_path, capsys):
    """A key edited by hand in model_args.yaml: the line names the key and the file to fix."""
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    args_file = exp / "models" / "nm1" / MODEL_ARGS_FILE
    args = yaml.safe_load(args_file.read_text())
    args["data"]["in_chunk_renamed"] = args["data"].pop("in_chunk")
    args_file.write_text(yaml.safe_dump(args, sort_keys=False))
    capsys.readouterr()
    assert eval_main(["model_name=nm1", f"exp_dir={exp}", "sets=valid"]) == 2
    line = one_error_line(capsys)
    assert line.startswith("error: data.in_chunk_renamed:") and str(args_file) in line, line


def test_a_second_checkpoint_is_never_scored_as_the_model(trained_on_nm, tmp_path, capsys):
    """A foreign checkpoint beside the model's own: the one run_result.json names is used;
    without that record, several checkpoints are refused, not guessed at."""
    src, _ = trained_on_nm
    exp = tmp_path / "exp"
    shutil.copytree(src, exp)
    model_dir = exp / "models" / "nm1"
    (own,) = checkpoints(model_dir)
    foreign = model_dir / "bestmodel-epoch=9-valid_loss=0.0001.ckpt"
    shutil.copyfile(own, foreign)
    os.utime(foreign, (os.path.getmtime(own) + 60,) * 2)  # newer than the model's own
    assert load_trained_model(model_dir).checkpoint == own
    os.replace(own, tmp_path / "own.ckpt")  # the named one gone, only the foreign one left
    capsys.readouterr()
    assert eval_main(["model_name=nm1", f"exp_dir={exp}", "sets=valid"]) == 2
    line = one_error_line(capsys)
    assert own.name in line and "not there" in line and foreign.name in line
    os.replace(tmp_path / "own.ckpt", own)
    os.remove(model_dir / RESULT_FILE)
    assert eval_main(["model_name=nm1", f"exp_dir={exp}", "sets=valid"]) == 2
    line = one_error_line(capsys)
    assert "2 checkpoints" in line and own.name in line and foreign.name in line


def test_an_all_nan_column_is_refused_naming_it(tmp_path, capsys):
    frame = series(0, 50)
    frame["x5"] = np.nan
    csv = write_csv(frame, tmp_path / "nan.csv")
    with pytest.raises(ConfigError, match="'x5' is all NaN"):
        import_dataset(csv, "d", tmp_path / "exp")
    assert import_main([csv, "--name", "d", "--exp-dir", str(tmp_path / "exp")]) == 2
    assert "'x5' is all NaN" in one_error_line(capsys)
    assert not (tmp_path / "exp").exists()


def test_nan_that_leaves_no_prediction_point_names_the_component(tmp_path):
    from knowit_app.api import compose_config
    from knowit_app.training.run import plan_training

    frame = series(0, 200)
    frame["x5"] = 1.0
    frame.loc[frame.index[::4], "x5"] = np.nan  # a NaN in every 8-step input window
    import_dataset(frame, "holes", tmp_path / "exp")
    cfg = compose_config([f"exp_dir={tmp_path / 'exp'}", "model_name=m", "data.name=holes",
                          "data.in_components=[a,x5]", "data.out_components=[b]",
                          "data.in_chunk=[-8,0]", "data.split_method=chronological",
                          "data.limit=null"])
    with pytest.raises(ConfigError) as info:
        plan_training(cfg)
    assert info.value.key == "data.in_components"
    assert "x5" in str(info.value) and "NaN" in str(info.value)
    assert "in_chunk" not in str(info.value)


def test_import_says_when_it_sorts_rows_or_leaves_out_a_text_column(tmp_path, capsys):
    frame = series(0, 40)
    frame["c"] = frame["a"].astype(object)
    frame.iloc[7, frame.columns.get_loc("c")] = "1.2.3"  # a typo in a number column
    frame["label"] = "plant"
    shuffled = frame.iloc[::-1]
    csv = write_csv(shuffled, tmp_path / "messy.csv")
    assert import_main([csv, "--name", "messy", "--exp-dir", str(tmp_path / "exp")]) == 0
    summary, *notes = capsys.readouterr().out.splitlines()
    assert "components a, b" in summary
    text = "\n".join(notes)
    assert "not in ascending order" in text and "sorted" in text
    assert "'c'" in text and "'1.2.3'" in text
    assert "label" in text
    # a named component with text is refused, not dropped
    with pytest.raises(ConfigError, match="'c' is not numeric"):
        import_dataset(csv, "messy2", tmp_path / "exp", components=["a", "c"])


def test_every_refusal_is_a_knowit_error():
    assert issubclass(CheckpointError, KnowitError) and issubclass(DatasetChangedError,
                                                                   KnowitError)


def test_a_column_name_given_twice_is_refused(tmp_path, capsys):
    path = tmp_path / "dup.csv"
    series(0, 20).rename(columns={"b": "a"}).to_csv(path, index_label="time")
    assert import_main([str(path), "--name", "dup", "--exp-dir", str(tmp_path / "exp")]) == 2
    assert "column 'a' appears twice" in one_error_line(capsys)
    with pytest.raises(ConfigError, match="'a' appears twice"):
        import_dataset(series(0, 20).rename(columns={"b": "a"}), "dup", tmp_path / "exp")
    assert not (tmp_path / "exp").exists()
