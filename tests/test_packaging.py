"""Packaging: the configs ship inside the wheel; the command starts without torch."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_carries_configs_and_runs_from_elsewhere(tmp_path):
    """Build the wheel, unpack it away from the repo and compose the config from it alone."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(ROOT)], check=True)
    wheel = next((tmp_path / "dist").glob("knowit_app-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for conf in ("knowit_app/conf/config.yaml", "knowit_app/conf/data/synth_2.yaml",
                 "knowit_app/conf/arch/lstm.yaml", "knowit_app/conf/trainer/classification.yaml"):
        assert conf in names
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "knowit-app = knowit_app.app:main" in entry_points
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    code = ("import sys, knowit_app; print(knowit_app.__file__); "
            "sys.argv = ['knowit-app', 'arch=lstm', '--cfg', 'job']; "
            "from knowit_app.app import main; main()")
    proc = subprocess.run([sys.executable, "-c", code], cwd=elsewhere, env=env,
                          capture_output=True, text=True, check=True)
    first, _, rest = proc.stdout.partition("\n")
    assert first.startswith(str(site))
    cfg = yaml.safe_load(rest)
    assert cfg["arch"]["name"] == "LSTM" and cfg["data"]["name"] == "synth_2"


def test_help_does_not_import_torch(tmp_path):
    code = ("import sys; sys.argv = ['knowit-app', '--help']\n"
            "from knowit_app.app import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, check=True)
    assert "== Configuration groups ==" in proc.stdout
    assert "\n  hydra/launcher: local_slurm, slurm\n" in proc.stdout
    assert proc.stdout.strip().endswith("NO-TORCH")
