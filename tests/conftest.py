from __future__ import annotations

import os

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# in-process apps run in development mode unless a test turns auth on (tests/test_security.py
# does, against a real `novarank serve`; start_server turns it on for every served process)
os.environ.setdefault("NOVARANK_AUTH", "off")
os.environ.setdefault("NOVARANK_DRILLS_ENABLED", "true")  # test_security turns them off

from novarank.config import TrainConfig
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.training import fit_model

SMALL = SyntheticConfig(users=400, items=300, creators=40, events=30_000, seed=11)
FAST = TrainConfig(als_iterations=5, als_factors=16, neighbours=50, tune=False)


@pytest.fixture(scope="session")
def synth():
    return generate(SMALL)


@pytest.fixture(scope="session")
def small_model(synth):
    return fit_model(synth.dataset, FAST)


@pytest.fixture(scope="session")
def small_release(tmp_path_factory, small_model, synth):
    """The small model saved once as release r1, with its users and a catalog item."""
    from novarank.release import save_release

    out = tmp_path_factory.mktemp("small-release") / "r1"
    save_release(small_model, out, version="r1")
    ds = synth.dataset
    return out, [str(u) for u in ds.user_ids], str(ds.items.ids[0])
