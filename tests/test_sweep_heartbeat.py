"""A sweeper refreshes the heartbeat of the runs it owns while they train.

Another host cannot check whether our process lives, only how recently it beat; a run longer
than ``stale_after_min`` must not look dead there (it would be rerun and its dir moved away).
"""

from __future__ import annotations

import os
import time

from polling import wait_until

from knowit_app.experiment.sweep_state import SweepState
from knowit_app.sweeps.state import heartbeat, owner_alive, owner_now


def test_owned_runs_beat_while_they_train_and_others_are_left_alone(tmp_path):
    state = SweepState(tmp_path)
    with state.locked() as data:
        data["owners"]["mine"] = {**owner_now(), "heartbeat": 0.0}
        data["owners"]["theirs"] = {**owner_now(), "pid": os.getpid() + 1, "heartbeat": 0.0}

    def beat_of(name: str) -> float:
        with state.locked() as data:
            return float(data["owners"][name]["heartbeat"])

    started = time.time()
    with heartbeat(state, ["mine", "theirs"], stale_after_s=4.0):
        wait_until(lambda: beat_of("mine") >= started, 30, "the owned run's heartbeat")
    assert beat_of("theirs") == 0.0  # another process's run is never touched
    with state.locked() as data:  # seen from another host, the owned run is alive
        seen = {**data["owners"]["mine"], "host": "another-host"}
    assert owner_alive(seen, stale_after_s=4.0)
