"""A sweep job's config made from the last composed one is the config Hydra composes in full.

Real Hydra config loaders on the shipped ``conf/``: one plain, one wrapped in
:class:`ReusingConfigLoader`; each job's config from both must be the same, node for node,
including Hydra's record of the overrides (``overrides.yaml``) and ``override_dirname``.
"""

from __future__ import annotations

import pytest
from hydra import version
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.types import RunMode
from omegaconf import OmegaConf

from knowit_app.config.compose import CONF_MODULE, PRIMARY_CONFIG
from knowit_app.config.schema import register_schemas
from knowit_app.sweeps.job_config import ReusingConfigLoader

SUBDIR = "hydra.sweep.subdir"
# (job overrides, whether the job may be made from the previous composition)
JOBS = [
    (["arch.dropout=0.0", "trainer.learning_rate=0.001", f"{SUBDIR}=a"], False),  # first: full
    (["arch.dropout=0.1", "trainer.learning_rate=0.001", f"{SUBDIR}=b"], True),
    (["arch.dropout=0.2", "trainer.learning_rate=0.01", f"{SUBDIR}=c"], True),
    (["arch=tcn", "trainer.learning_rate=0.01", f"{SUBDIR}=d"], False),  # a group choice
    (["arch=cnn", "trainer.learning_rate=0.01", f"{SUBDIR}=e"], False),  # another option
    (["arch=cnn", "trainer.learning_rate=0.02", f"{SUBDIR}=f"], True),
    (["arch=cnn", "trainer.learning_rate=0.02", "+extra=1", f"{SUBDIR}=g"], False),  # a key more
    (["arch=cnn", "trainer.learning_rate=0.03", "+extra=2", f"{SUBDIR}=h"], False),  # + stays full
    # The same key twice: Hydra keeps the later value, whichever of the two changed.
    (["trainer.learning_rate=0.1", "trainer.learning_rate=0.5", f"{SUBDIR}=i"], False),
    (["trainer.learning_rate=0.2", "trainer.learning_rate=0.5", f"{SUBDIR}=j"], False),
    (["data.batch_size=32", "trainer.learning_rate='0.5'", f"{SUBDIR}=k"], False),
    (["data.batch_size=256", "trainer.learning_rate='0.5'", f"{SUBDIR}=l"], True),
    # Dict values: Hydra merges them into what the node holds, so the previous job's keys
    # must not leak into the next one.
    (["wandb={project:a,group:g}", f"{SUBDIR}=m"], False),
    (["wandb={project:b}", f"{SUBDIR}=n"], False),
    # A node and a key inside it: applied in order by Hydra.
    (["wandb={project:b}", "wandb.group=g1", f"{SUBDIR}=o"], False),
    (["wandb={project:b}", "wandb.group=g2", f"{SUBDIR}=p"], False),
    # Hydra's own settings outside hydra.sweep, and interpolations, are composed in full.
    (["hydra.job.name=one", f"{SUBDIR}=r"], False),
    (["hydra.job.name=two", f"{SUBDIR}=s"], False),
    (["trainer.learning_rate=${data.batch_size}", f"{SUBDIR}=t"], False),
    (["trainer.learning_rate=0.3", f"{SUBDIR}=u"], False),
    (["trainer.learning_rate=0.4", f"{SUBDIR}=v"], True),
]


def loader() -> ConfigLoaderImpl:
    register_schemas()
    version.setbase("1.3")
    return ConfigLoaderImpl(create_config_search_path(f"pkg://{CONF_MODULE}"))


@pytest.fixture(scope="module")
def master():
    return loader().load_configuration(
        PRIMARY_CONFIG, ["model_name=m", "hydra.job.chdir=false"], RunMode.MULTIRUN)


def test_each_job_config_equals_hydras_full_composition(master):
    full, reusing = loader(), ReusingConfigLoader(loader())
    reused = 0
    for overrides, may_reuse in JOBS:
        expected = full.load_sweep_config(master, list(overrides))
        got = reusing.load_sweep_config(master, list(overrides))
        reused += may_reuse
        assert reusing.reused == reused, overrides
        assert OmegaConf.to_container(got) == OmegaConf.to_container(expected), overrides
        assert OmegaConf.is_struct(got) and not OmegaConf.is_readonly(got.hydra)
        assert OmegaConf.to_container(got.hydra.overrides.task) == [o for o in overrides if
                                                  not o.startswith("hydra.")]
        assert got.wandb == expected.wandb
        assert got.hydra.job.override_dirname == expected.hydra.job.override_dirname


def test_a_job_config_is_its_own_copy(master):
    """Changing one job's config (the launcher sets hydra.job.num) leaves the next alone."""
    reusing = ReusingConfigLoader(loader())
    first = reusing.load_sweep_config(master, ["arch.dropout=0.0", f"{SUBDIR}=a"])
    first.arch.dropout = 0.9
    second = reusing.load_sweep_config(master, ["arch.dropout=0.1", f"{SUBDIR}=b"])
    third = reusing.load_sweep_config(master, ["arch.dropout=0.2", f"{SUBDIR}=c"])
    assert reusing.reused == 2
    second.trainer.learning_rate = 7.0
    assert third.trainer.learning_rate != 7.0
    assert (second.arch.dropout, third.arch.dropout) == (0.1, 0.2)


def test_a_bad_value_fails_as_hydra_fails(master):
    reusing = ReusingConfigLoader(loader())
    reusing.load_sweep_config(master, ["data.batch_size=64", f"{SUBDIR}=a"])
    with pytest.raises(Exception) as reused_error:
        reusing.load_sweep_config(master, ["data.batch_size=lots", f"{SUBDIR}=b"])
    with pytest.raises(Exception) as hydra_error:
        loader().load_sweep_config(master, ["data.batch_size=lots", f"{SUBDIR}=b"])
    assert type(reused_error.value) is type(hydra_error.value)
