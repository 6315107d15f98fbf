"""Built-in datasets generated in code, so that nothing needs downloading.

KnowIt ships synth_2 and synth_c as files; ours have the same shape and purpose (a regression
and a classification toy problem) and are generated deterministically from fixed seeds. Bump
``GENERATOR_VERSION`` whenever a generator's output changes: cached copies are keyed by it.
"""

from __future__ import annotations

import numpy as np

from knowit_app.data.dataset import RawDataset

GENERATOR_VERSION = 1
_EPOCH_NS = np.int64(1_577_836_800_000_000_000)  # 2020-01-01T00:00:00Z
_DAY_NS = np.int64(86_400_000_000_000)


def _signals(rng: np.random.Generator, n_steps: int, dt: float, n_signals: int,
             freq_range: tuple[float, float], noise: float) -> np.ndarray:
    """Smooth random signals: sums of three sines with random frequencies/phases, plus noise."""
    t = np.arange(n_steps) * dt
    freqs = rng.uniform(*freq_range, size=(n_signals, 3))
    phases = rng.uniform(0.0, 2 * np.pi, size=(n_signals, 3))
    amps = rng.uniform(0.3, 1.0, size=(n_signals, 3))
    amps /= np.sqrt((amps**2).sum(axis=1, keepdims=True) / 2)  # unit variance per signal
    waves = amps[:, :, None] * np.sin(2 * np.pi * freqs[:, :, None] * t + phases[:, :, None])
    sig = waves.sum(axis=1).T  # (n_steps, n_signals)
    return sig + noise * rng.standard_normal(sig.shape)


def _lag(v: np.ndarray, k: int) -> np.ndarray:
    """``v`` delayed by ``k`` steps, the first value repeated where the past is unknown."""
    return np.concatenate([np.repeat(v[:1], k), v[:-k]]) if k else v


def _assemble(name: str, components: list[str], blocks: list[np.ndarray], dt: float) -> RawDataset:
    """One slice per instance, instances a day apart so their order in time is their index."""
    n_steps = blocks[0].shape[0]
    step_ns = np.int64(round(dt * 1e9))
    n = len(blocks)
    times = (_EPOCH_NS + np.arange(n, dtype=np.int64)[:, None] * _DAY_NS
             + np.arange(n_steps, dtype=np.int64)[None, :] * step_ns).ravel()
    starts = np.arange(n, dtype=np.int64) * n_steps
    return RawDataset(
        name=name,
        components=components,
        time_delta=dt,
        values=np.concatenate(blocks, axis=0),
        times=times,
        slice_starts=starts,
        slice_ends=starts + n_steps,
        slice_instance=np.arange(n, dtype=np.int64),
        instance_names=[f"instance_{i:02d}" for i in range(n)],
    )


def make_synth_2() -> RawDataset:
    """Regression toy set: x5 is a nonlinear function of x1..x4 over the last 20 steps.

    30 instances x 4000 steps of 0.2 s; every lag used is within an in_chunk of [-32, 0].
    """
    rng = np.random.default_rng(2_002)
    n_inst, n_steps, dt = 30, 4000, 0.2
    blocks = []
    for _ in range(n_inst):
        x = _signals(rng, n_steps, dt, 4, (0.02, 0.2), noise=0.05)
        x1, x2, x3, x4 = x.T
        x5 = (np.tanh(x1 * _lag(x2, 4))
              + 0.5 * np.sin(2.0 * _lag(x3, 12))
              + 0.3 * _lag(x4, 20) ** 2
              + 0.02 * rng.standard_normal(n_steps))
        blocks.append(np.column_stack([x, x5]))
    return _assemble("synth_2", ["x1", "x2", "x3", "x4", "x5"], blocks, dt)


def make_synth_c() -> RawDataset:
    """Classification toy set: y1 (2 classes) and y2 (4 classes) from signs of x1..x4 features.

    15 instances x 3000 steps of 0.04 s; labels depend on lags up to 8 steps, so an in_chunk
    of [-16, 0] sees everything they are made of. Classes are roughly balanced.
    """
    rng = np.random.default_rng(3_003)
    n_inst, n_steps, dt = 15, 3000, 0.04
    blocks = []
    for _ in range(n_inst):
        x = _signals(rng, n_steps, dt, 4, (0.2, 2.0), noise=0.05)
        x1, x2, x3, x4 = x.T
        y1 = (x1 * _lag(x2, 2) + 0.5 * _lag(x3, 5) > 0).astype(np.float64)
        y2 = 2.0 * (x1 + _lag(x4, 8) > 0) + (x2 * x3 > 0)
        blocks.append(np.column_stack([x, y1, y2]))
    return _assemble("synth_c", ["x1", "x2", "x3", "x4", "y1", "y2"], blocks, dt)


GENERATORS = {"synth_2": make_synth_2, "synth_c": make_synth_c}
