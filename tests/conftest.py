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


# Under `pytest -n 2` (make test) each module's tests run on one worker, and some modules
# share one worker, one test at a time: those that reset the shared PostgreSQL tables (no
# two of them reset each other's rows), and those that run whole launches on Spark or a
# served demo, whose gates time single requests (two at once on two cores starve them).
GROUPS = {"postgres": frozenset({"test_api", "test_preflight", "test_rollout", "test_stores"}),
          "launch": frozenset({"test_demo", "test_gates", "test_spark"})}


def pytest_collection_modifyitems(config, items):
    """Group each test (above; else by its module: a module's fixtures, a Spark session
    among them, are set up once), and put the modules with slow tests first, as the
    longest first is how two workers finish together."""
    slow = {item.module for item in items if item.get_closest_marker("slow") is not None}
    for item in items:
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        group = next((g for g, members in GROUPS.items() if name in members), name)
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: item.module not in slow)
