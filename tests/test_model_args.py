"""model_args.yaml carries KnowIt's keys beside ours, and still rebuilds the model and its data."""

from __future__ import annotations

import numpy as np
import pytest

from knowit_app.archs import build_model
from knowit_app.config.compose import compose
from knowit_app.data.prepared import prepare
from knowit_app.errors import ConfigError
from knowit_app.experiment.model_record import save_model_args
from knowit_app.training.model_args import read_model_args, write_model_args


def written(tmp_path, *overrides: str) -> tuple[dict, object]:
    cfg = compose([f"exp_dir={tmp_path}", *overrides])
    prepared = prepare(cfg.data, str(cfg.trainer.task), tmp_path)
    write_model_args(tmp_path, cfg, prepared, "valid_loss", "min")
    return read_model_args(tmp_path), prepared


def test_knowits_keys_with_knowits_meanings(tmp_path):
    import yaml

    args, prepared = written(tmp_path, "data.limit=12")
    on_disk = yaml.safe_load((tmp_path / "model_args.yaml").read_text())
    data, arch, trainer, dyn = (on_disk[k] for k in ("data", "arch", "trainer", "data_dynamics"))
    assert (data["task"], data["min_slice"], data["batch_sampling_mode"], data["slide_stride"],
            data["variable_sequence_length_limit"]) == ("regression", None, "independent", 1, None)
    assert arch["task"] == "regression" and arch["arch_hps"]["width"] == arch["width"]
    assert "name" not in arch["arch_hps"]
    assert trainer["rescale_logged_output_metrics"] is True and trainer["return_final"] is False
    assert trainer["logger_status"] is False and trainer["custom_pl_model_kwargs"] is None
    assert trainer["optional_pl_kwargs"]["precision"] == trainer["precision"]
    sizes = prepared.split_sizes()
    assert (dyn["train_size"], dyn["valid_size"], dyn["eval_size"]) == \
        (sizes["train"], sizes["valid"], sizes["eval"])
    assert dyn["split_sizes"] == sizes and dyn["class_counts"] is None


def test_the_record_rebuilds_the_model_and_the_data(tmp_path):
    args, prepared = written(tmp_path, "data.limit=12")
    assert "task" not in args["arch"] and "arch_hps" not in args["arch"]
    net = build_model(args["arch"], tuple(args["data_dynamics"]["in_shape"]),
                      tuple(args["data_dynamics"]["out_shape"]), "regression", None)
    assert sum(p.numel() for p in net.parameters()) > 0
    again = prepare(args["data"], "regression", tmp_path)
    assert again.split_sizes() == prepared.split_sizes()


def test_class_counts_count_every_row_of_each_class(tmp_path):
    _, prepared = written(tmp_path, "data=synth_c", "trainer=classification", "data.limit=9")
    counts = prepared.dynamics()["class_counts"]
    from knowit_app.data.bundled import load_builtin

    y1 = load_builtin("synth_c").values[:, 4]
    assert counts == {0: int(np.sum(y1 == 0)), 1: int(np.sum(y1 == 1))}


def test_an_older_record_without_knowits_keys_still_reads(tmp_path):
    cfg = compose([f"exp_dir={tmp_path}", "data.limit=12"])
    from omegaconf import OmegaConf

    record = {k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "arch", "trainer")}
    record["data"].pop("min_slice")  # older versions had no min_slice either
    save_model_args(tmp_path, record)
    args = read_model_args(tmp_path)
    assert prepare(args["data"], "regression", tmp_path).split_sizes()["train"] > 0


@pytest.mark.parametrize("key, value", [("batch_sampling_mode", "sliding-window"),
                                        ("slide_stride", 4), ("task", "vl_regression")])
def test_knowit_data_options_we_do_not_have_are_refused(tmp_path, key, value):
    cfg = compose([f"exp_dir={tmp_path}", "data.limit=12"])
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg.data, resolve=True)
    data[key] = value
    with pytest.raises(ConfigError) as info:
        prepare(data, "regression", tmp_path)
    assert info.value.key == f"data.{key}"
