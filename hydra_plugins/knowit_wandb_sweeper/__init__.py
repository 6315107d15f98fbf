"""Hydra sweeper plugin ``hydra/sweeper=wandb`` (knowit-app).

Hydra imports every module under ``hydra_plugins`` at every start, so this package stays tiny:
dataclasses, a ConfigStore entry and a thin Sweeper class. The search itself lives in
:mod:`knowit_app.sweeps.driver` and is imported only when a sweep starts.
"""
