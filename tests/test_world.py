"""The synthetic world behaves like real usage: personalisation beats popularity there by
about as much as on MovieLens-100K (the world every estimate is checked against)."""

from __future__ import annotations

import dataclasses

import pytest

from novarank.data.loaders import load
from novarank.data.synthetic import SyntheticConfig, generate
from novarank.evaluation.calibration import WorldProfile, differences, profile

# the generator before calibration: the feed offered 8 items, popularity had a Pareto tail
# of 1.1 and tastes a Dirichlet weight of 0.12
UNCALIBRATED = SyntheticConfig(candidates_per_exposure=8, popularity_tail=1.1,
                               taste_concentration=0.12)


@pytest.fixture(scope="module")
def movielens() -> WorldProfile:
    return profile(load("ml-100k"))


def test_the_default_world_is_calibrated_against_movielens(movielens):
    world = profile(generate(SyntheticConfig()).dataset)
    assert differences(world, movielens) == [], (world, movielens)
    for method in ("item_item", "als", "ranker"):  # the margin a real data set shows
        assert world.lift[method] >= 1.3 and movielens.lift[method] >= 1.3


def test_the_world_before_calibration_is_called_out(movielens):
    """The old generator let popularity beat every personalised method: the check says so."""
    problems = differences(profile(generate(UNCALIBRATED).dataset), movielens)
    assert any(p.startswith("item_item lifts Recall@10 over popularity only") for p in problems)
    assert any(p.startswith("als lifts") for p in problems)
    assert any(p.startswith("top 10% of items hold") for p in problems)


def test_each_rule_of_the_comparison_can_fail(movielens):
    near = dataclasses.replace(movielens, name="near")
    assert differences(near, movielens) == []
    too_good = dataclasses.replace(near, lift={**near.lift, "als": near.lift["als"] * 2})
    assert differences(too_good, movielens)[0].startswith("als lift")
    flat = dataclasses.replace(near, top_decile_share=near.top_decile_share + 0.2)
    assert differences(flat, movielens)[0].startswith("top 10% of items hold")
    narrow = dataclasses.replace(near, taste_concentration=near.taste_concentration + 0.3)
    assert differences(narrow, movielens)[0].startswith("taste concentration")


def test_float_options_parse():
    cfg = SyntheticConfig.parse("synthetic:users=50,popularity_tail=1.5,taste_concentration=.2")
    assert (cfg.users, cfg.popularity_tail, cfg.taste_concentration) == (50, 1.5, 0.2)
