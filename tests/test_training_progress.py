"""A training shows a progress bar in a terminal, and only plain epoch lines elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios

import pytest
from helpers import run_cli

pytestmark = pytest.mark.slow

ARGS = ["model_name=m", "data.limit=2", "arch.width=16", "trainer.max_epochs=2"]


def run_in_terminal(args: list[str], cwd) -> tuple[int, str]:
    """``python -m knowit_app <args>`` with stdout and stderr on a 100-column terminal."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "knowit_app", *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=600), b"".join(chunks).decode(errors="replace")


def test_a_terminal_shows_a_bar_per_epoch(tmp_path):
    code, out = run_in_terminal(ARGS, tmp_path)
    assert code == 0, out[-3000:]
    screens = out.split("\r")
    assert any(s.startswith("epoch 1/2:") and "%|" in s for s in screens)
    assert any(s.startswith("epoch 2/2:") and "%|" in s for s in screens)
    assert "epoch 2/2: train_loss=" in out  # the epoch's summary line follows its bar


def test_a_file_gets_plain_epoch_lines_only(tmp_path):
    proc = run_cli(ARGS, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "epoch 1/2: train_loss=" in out and "epoch 2/2: train_loss=" in out
    assert "%|" not in out and "\r" not in out


def test_the_bar_counts_batches_though_the_module_takes_them_in_chunks(tmp_path):
    """The module trains up to BATCHES_PER_CALL batches per Lightning call; the bar still
    reaches the epoch's batch count (not its count of calls) before it closes."""
    import io

    from knowit_app.api import compose_config
    from knowit_app.training.module import BATCHES_PER_CALL
    from knowit_app.training.progress import EpochBar
    from knowit_app.training.run import execute, plan_training

    seen: list[tuple[int, int]] = []

    class RecordingBar(EpochBar):
        def _close(self) -> None:
            if self.bar is not None:
                seen.append((self.bar.n, self.bar.total))
            super()._close()

    cfg = compose_config([f"exp_dir={tmp_path / 'exp'}", *ARGS[1:]])
    execute(plan_training(cfg), tmp_path / "run", callbacks=[RecordingBar(io.StringIO())])
    assert len(seen) == 2
    for done, total in seen:
        assert done == total > BATCHES_PER_CALL
