"""Feature attributions: options, selection, and Captum wired to the right inputs and outputs.

The correctness tests use networks whose true attributions are known (a linear model, a
component with zero weights) and a trained model checked against its own forward pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from knowit_app.errors import ConfigError
from knowit_app.interpret.attribution import attribute, check_supported
from knowit_app.interpret.options import from_knowit_kwargs, make_options
from knowit_app.interpret.selection import contiguous_blocks, select_points

METHODS = ("DeepLift", "DeepLiftShap", "IntegratedGradients")


# --- options ----------------------------------------------------------------------------------

def test_knowit_kwargs_take_knowits_defaults_and_name():
    opts = from_knowit_kwargs({"interpreter": {"interpretation_method": "DeepLiftShap"}})
    assert (opts.set, opts.selection, opts.size, opts.multiply_by_inputs, opts.seed,
            opts.rescale_inputs) == ("valid", "random", 100, True, 123, True)
    assert opts.file_stem == "DeepLiftShap-valid-random-100-True-123"


@pytest.mark.parametrize("inner, key", [
    ({}, "interpreter.interpretation_method: missing"),
    ({"interpretation_method": "Saliency"}, "interpreter.interpretation_method: unknown"),
    ({"interpretation_method": "DeepLift", "colour": 1}, "interpreter.colour: unknown option"),
    ({"interpretation_method": "DeepLift", "size": 0}, "interpreter.size: expected an integer"),
    ({"interpretation_method": "DeepLift", "selection": "best"}, "interpreter.selection"),
    ({"interpretation_method": "DeepLift", "interpretation_set": "test"},
     "interpreter.interpretation_set"),
])
def test_bad_kwargs_are_one_line_naming_the_key(inner, key):
    with pytest.raises(ConfigError) as err:
        from_knowit_kwargs({"interpreter": inner})
    assert str(err.value).startswith(key) and "\n" not in str(err.value)


def test_command_line_strings_are_read_as_values():
    opts = make_options("integratedgradients", "eval", "all", "7", "false", "5", "no")
    assert opts.file_stem == "IntegratedGradients-eval-all-7-False-5"
    assert opts.rescale_inputs is False


# --- selection ---------------------------------------------------------------------------------

def _slices(lengths):
    """row_slice_start of rows laid out as consecutive slices of ``lengths``."""
    starts = np.cumsum([0, *lengths[:-1]])
    return np.repeat(starts, lengths)


def test_blocks_break_at_gaps_and_slice_boundaries():
    slice_start = _slices([10, 10])
    rows = np.array([0, 1, 2, 5, 6, 9, 10, 11])
    assert [rows[b].tolist() for b in contiguous_blocks(rows, slice_start)] == [
        [0, 1, 2], [5, 6], [9], [10, 11]]


def test_success_and_failure_pick_the_block_with_the_lowest_and_highest_error():
    slice_start = _slices([20, 20])
    rows = np.arange(40)
    errors = np.ones(40)
    errors[24:28] = 0.0  # the best run of 4 lies in the second slice
    errors[3:7] = 5.0  # the worst in the first
    assert rows[select_points(rows, slice_start, "success", 4, 0, errors)].tolist() == [
        24, 25, 26, 27]
    assert rows[select_points(rows, slice_start, "failure", 4, 0, errors)].tolist() == [
        3, 4, 5, 6]


def test_random_selection_is_contiguous_seeded_and_within_one_slice():
    slice_start = _slices([30, 30, 30])
    rows = np.arange(90)
    a = select_points(rows, slice_start, "random", 25, seed=7)
    assert np.array_equal(a, select_points(rows, slice_start, "random", 25, seed=7))
    assert np.all(np.diff(rows[a]) == 1) and len(set(slice_start[rows[a]])) == 1


def test_a_size_no_slice_can_hold_is_refused_with_the_longest_run():
    with pytest.raises(ConfigError, match=r"size: no run of 12 .* \(the longest has 10\)"):
        select_points(np.arange(20), _slices([10, 10]), "random", 12, 0)


# --- attributions on networks whose answer is known ----------------------------------------------

class Linear(nn.Module):
    """A custom architecture: y = w . x + b over the whole (steps, components) window."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.numel(), 1)
        with torch.no_grad():
            self.linear.weight.copy_(weight.reshape(1, -1))
            self.linear.bias.fill_(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).reshape(len(x), 1, 1)


@pytest.mark.parametrize("method", METHODS)
def test_attributions_of_a_linear_model_are_weight_times_input_minus_baseline(method):
    torch.manual_seed(0)
    weight = torch.randn(5, 3)
    x, base = torch.randn(8, 5, 3), torch.randn(6, 5, 3)
    baselines = base if method == "DeepLiftShap" else base.mean(0, keepdim=True)
    result = attribute(Linear(weight), x, baselines, method, [(0, 0)])
    expected = (weight * (x - baselines.mean(0))).numpy()
    np.testing.assert_allclose(result.values[:, 0], expected, rtol=1e-4, atol=1e-5)
    assert np.abs(result.delta).max() < 1e-4


class UnusedComponent(nn.Module):
    """A small ReLU network whose first layer ignores input component 1 (zero weights)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.first = nn.Linear(4 * 3, 16)
        self.relu = nn.ReLU()
        self.head = nn.Linear(16, 2)
        with torch.no_grad():
            self.first.weight.view(16, 4, 3)[:, :, 1] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.relu(self.first(x.flatten(1))))  # two class logits


@pytest.mark.parametrize("method", METHODS)
def test_a_component_the_model_never_uses_gets_zero_attribution(method):
    x, base = torch.randn(10, 4, 3) * 2, torch.randn(5, 4, 3)
    baselines = base if method == "DeepLiftShap" else base.mean(0, keepdim=True)
    result = attribute(UnusedComponent(), x, baselines, method, [0, 1])  # classification
    assert result.values.shape == (10, 2, 4, 3)
    assert np.all(result.values[..., 1] == 0.0)
    assert np.abs(result.values[..., [0, 2]]).sum() > 0


@pytest.mark.parametrize("method", ["DeepLift", "DeepLiftShap"])
def test_deeplift_through_an_lstm_is_refused_before_work_naming_what_works(method):
    from knowit_app.archs import build_model

    lstm = build_model({"name": "LSTM", "width": 8}, (6, 2), (1, 1), "regression", None)
    with pytest.raises(ConfigError) as err:
        check_supported(lstm, method, "LSTM")
    text = str(err.value)
    assert method in text and "LSTM" in text and "method=IntegratedGradients" in text
    check_supported(lstm, "IntegratedGradients", "LSTM")


@pytest.mark.parametrize("arch", ["MLP", "CNN", "TCN", "LSTM"])
def test_integrated_gradients_is_complete_for_every_architecture(arch):
    from knowit_app.archs import build_model

    torch.manual_seed(2)
    net = build_model({"name": arch}, (8, 3), (2, 2), "regression", None).eval()
    x, base = torch.randn(4, 8, 3), torch.zeros(1, 8, 3)
    targets = [(s, c) for s in range(2) for c in range(2)]
    result = attribute(net, x, base, "IntegratedGradients", targets)
    with torch.no_grad():
        gain = (net(x) - net(base)).reshape(4, 4).numpy()
    np.testing.assert_allclose(result.values.sum(axis=(2, 3)), gain,
                               atol=np.abs(result.delta).max() + 1e-4)
