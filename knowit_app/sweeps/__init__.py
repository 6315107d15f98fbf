"""W&B-driven hyperparameter sweeps over the app config.

What a sweep is, checked before anything runs:

- :mod:`.spec`    a sweep in W&B's own format, checked against W&B's schema and the app config
- :mod:`.grammar` Hydra's sweep grammar (``arch.dropout=choice(0.1,0.2)``) as W&B parameters
- :mod:`.naming`  run names (KnowIt's tutorial style) and Hydra override strings for a run
- :mod:`.engine`  the offline controller: W&B's ``sweeps`` engine asked for the next run

How it runs: :mod:`.plan` (options, spec and app config checked before any run),
:mod:`.driver` (the sweeper's ask -> launch -> tell loop), :mod:`.outcomes` (a launched run's
outcome, from the job's returned result), :mod:`.controllers` (local engine or W&B server),
:mod:`.state` (who owns a run; the state file itself is :mod:`knowit_app.experiment`),
:mod:`.job` and :mod:`.early_stop` (inside each run), :mod:`.tables` (the ranking tables),
:mod:`.callback` (consolidation at the end).

The first four import neither torch nor Lightning, and only :mod:`.engine` (and the schema
check in :mod:`.spec`, lazily) imports W&B's ``sweeps`` package, so composing and checking a
sweep stays cheap.
"""
