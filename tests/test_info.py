"""``knowit-app-info``: the tables and YAML a user reads and pastes."""

from __future__ import annotations

import re
import sys
import types

import pytest
import yaml

from knowit_app.archs import ARCH_NAMES, hp_defaults, hp_ranges
from knowit_app.cli.info import main


def test_archs_lists_every_arch_hyperparameter_default_and_range(capsys) -> None:
    assert main(["archs"]) == 0
    out = capsys.readouterr().out
    for name in ARCH_NAMES:
        assert f"{name}  (arch={name.lower()})" in out
        for hp in hp_defaults(name):
            assert hp in out
    assert re.search(r"^dropout +0\.5 +uniform 0\.0 \.\. 0\.8$", out, re.MULTILINE)
    assert "one of 32, 64, 128, 256, 512" in out


def test_archs_name_shows_one_arch_case_insensitively(capsys) -> None:
    assert main(["archs", "--name", "cnn"]) == 0
    out = capsys.readouterr().out
    assert "CNN" in out and "kernel_size" in out
    assert "MLP" not in out and "LSTM" not in out


def test_yaml_pastes_under_sweep_parameters(capsys) -> None:
    assert main(["archs", "--name", "tcn", "--yaml"]) == 0
    text = capsys.readouterr().out
    assert "  arch.dropout: {distribution: uniform, min: 0.0, max: 0.8}" in text
    params = yaml.safe_load(text)
    assert params == {f"arch.{hp}": spec for hp, spec in hp_ranges("TCN").items()}
    sweep = yaml.safe_load("method: random\nparameters:\n" + text)
    assert sweep["parameters"] == params


def test_yaml_for_all_archs_is_one_document_each(capsys) -> None:
    assert main(["archs", "--yaml"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(docs) == len(ARCH_NAMES)
    for name, doc in zip(ARCH_NAMES, docs, strict=True):
        assert all(key.startswith("arch.") for key in doc)
        assert {key.removeprefix("arch.") for key in doc} == set(hp_defaults(name))


def test_unknown_arch_is_a_one_line_error(capsys) -> None:
    assert main(["archs", "--name", "transformer"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "error: arch.name: unknown architecture 'transformer'; available: MLP, CNN, TCN, LSTM\n"
    )


def test_usage_errors_and_help_return_a_status(capsys) -> None:
    assert main([]) == 2
    assert main(["--help"]) == 0
    assert "archs" in capsys.readouterr().out


def test_datasets_table(monkeypatch, capsys) -> None:
    store = types.ModuleType("knowit_app.data.store")
    store.list_datasets = lambda exp_dir: [
        {"name": "synth_2", "source": "builtin", "components": ["x1", "x2"], "instances": 30,
         "slices": 30, "rows": 120000, "time_delta": 0.2, "exp_dir": exp_dir},
    ]
    monkeypatch.setitem(sys.modules, "knowit_app.data.store", store)
    assert main(["datasets", "--exp-dir", "somewhere"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "name", "source", "components", "instances", "slices", "rows", "time_delta"
    ]
    assert lines[2].split() == ["synth_2", "builtin", "x1,x2", "30", "30", "120000", "0.2"]


def test_datasets_none_found(monkeypatch, capsys) -> None:
    store = types.ModuleType("knowit_app.data.store")
    store.list_datasets = lambda exp_dir: []
    monkeypatch.setitem(sys.modules, "knowit_app.data.store", store)
    assert main(["datasets", "--exp-dir", "empty_dir"]) == 0
    assert "no datasets in empty_dir" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["archs", "--name"], "--name"),
    (["nonsense"], "invalid choice"),
    (["archs", "--colour", "red"], "--colour"),
])
def test_bad_arguments_are_one_line_and_return_2(argv, words, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and words in err and err.count("\n") == 1
    assert "knowit-app-info" in err and "--help)" in err


def test_key_value_words_work_like_options(monkeypatch, capsys) -> None:
    assert main(["archs", "name=tcn", "yaml=true"]) == 2  # a flag takes no value
    capsys.readouterr()
    assert main(["archs", "name=tcn"]) == 0
    by_word = capsys.readouterr().out
    assert main(["archs", "--name", "tcn"]) == 0
    assert capsys.readouterr().out == by_word and by_word.startswith("TCN")
