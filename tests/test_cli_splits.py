"""``knowit-app-info splits``: KnowIt's split of KnowIt's synth_2, without training.

The pinned figures are KnowIt 1.0.1's own, measured with its data pipeline on its synth_2
(x1..x4 -> x5, in_chunk [-32, 0], out_chunk [0, 0], [0.6, 0.2, 0.2], seed 123). Other seeds,
chunks and methods are checked against ``knowit_split``, KnowIt's rule restated in the tests.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from knowit_oracle import knowit_split

from knowit_app.cli.info import main
from knowit_app.cli.splits import split_summary
from knowit_app.data.bundled import load_builtin
from knowit_app.data.points import prediction_points

KNOWIT_INSTANCE_RANDOM = {
    "train": (72_083, {3, 4, 5, 7, 8, 9, 11, 12, 14, 16, 18, 20, 21, 23, 24, 26, 27, 29}),
    "valid": (24_344, {0, 1, 10, 15, 22, 25}),
    "eval": (23_685, {2, 6, 13, 17, 19, 28}),
}


def run_json(capsys, *overrides: str) -> dict:
    assert main(["splits", *overrides, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_synth_2_preset_gives_knowits_instance_random_split(capsys, tmp_path):
    got = run_json(capsys, f"exp_dir={tmp_path}")
    assert set(got) == {"train", "valid", "eval"}
    assert {k: (v["points"], set(v["instances"])) for k, v in got.items()} == \
        KNOWIT_INSTANCE_RANDOM
    assert list(tmp_path.iterdir()) == [], "inspecting splits writes nothing"


def test_chronological_gives_knowits_counts(capsys):
    got = run_json(capsys, "data.split_method=chronological")
    assert {k: v["points"] for k, v in got.items()} == \
        {"train": 72_067, "valid": 24_023, "eval": 24_022}
    # Time order within each instance: the splits cut through instances, train holds all 30.
    assert len(got["train"]["instances"]) == 30


def _sets(ds, rows_by_split):
    return {k: set(np.asarray(v).tolist()) for k, v in rows_by_split.items()}


@pytest.mark.parametrize("method, seed, in_chunk, portions", [
    ("instance-random", 7, [-32, 0], [0.6, 0.2, 0.2]),
    ("slice-random", 2024, [-5, 5], [0.5, 0.3, 0.2]),
    ("random", 1, [-32, -10], [0.6, 0.2, 0.2]),
    ("instance-chronological", 123, [0, 8], [0.7, 0.2, 0.1]),
    ("chronological", 5, [-3, 3], [0.8, 0.1, 0.1]),
])
def test_other_seeds_chunks_and_methods_follow_knowits_rule(method, seed, in_chunk, portions):
    overrides = [f"data.split_method={method}", f"data.seed={seed}",
                 f"data.in_chunk=[{in_chunk[0]},{in_chunk[1]}]",
                 f"data.split_portions=[{portions[0]},{portions[1]},{portions[2]}]"]
    _, got = split_summary(overrides)
    ds = load_builtin("synth_2")
    points = prediction_points(ds, in_chunk, [0, 0], np.arange(4), np.array([4]))
    want = knowit_split(ds, points, method, portions, None, seed)
    assert {k: v["points"] for k, v in got.items()} == {k: len(v) for k, v in want.items()}
    inst_of = {k: {int(ds.slice_instance[np.searchsorted(ds.slice_starts, r, "right") - 1])
                   for r in rows} for k, rows in want.items()}
    assert {k: set(v["instances"]) for k, v in got.items()} == inst_of


def test_slice_methods_list_slices_and_text_output(capsys):
    got = run_json(capsys, "data=synth_c", "trainer=classification",
                   "data.split_method=slice-random")
    assert all("slices" in v for v in got.values())
    assert got["valid"]["slices"][0][0].startswith("subject_")
    assert sum(len(v["slices"]) for v in got.values()) == 15
    assert main(["splits", "data.split_method=instance-chronological"]) == 0
    text = capsys.readouterr().out
    assert "synth_2: x1, x2, x3, x4 -> x5" in text and "120,112 prediction points" in text
    assert "train" in text and "18 instances: 0, 1, 2" in text


def test_bad_overrides_are_one_line_errors(capsys):
    assert main(["splits", "data.split_method=sideways"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: data.split_method:") and err.count("\n") == 1
    assert main(["splits", "data.no_such_key=1"]) == 2
    err = capsys.readouterr().err  # worded as knowit-app words it, with where to see the keys
    assert err.startswith("error: data.no_such_key:") and "knowit-app --help" in err
    assert err.count("\n") == 1
    assert main(["splits", "arch=mpl"]) == 2
    assert capsys.readouterr().err.startswith("error: arch: no option 'mpl'; available:")
