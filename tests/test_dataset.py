from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from novarank.data.dataset import Dataset
from novarank.data.events import Event
from novarank.data.synthetic import SyntheticConfig, TasteModel, generate


def _tiny() -> Dataset:
    return Dataset.from_frame("t", pd.DataFrame({
        "user_id": ["b", "a", "a", "b"], "item_id": ["x", "y", "x", "x"],
        "event": [Event.LIKE, Event.CLICK, Event.IMPRESSION, Event.CLICK],
        "value": [1.0, 1.0, 1.0, 1.0], "ts": [5, 9, 1, 3]}))


def test_dataset_is_sorted_and_read_only():
    ds = _tiny()
    keys = list(zip(ds.user.tolist(), ds.ts.tolist(), strict=True))
    assert keys == sorted(keys)
    with pytest.raises(ValueError):
        ds.ts[0] = 0
    with pytest.raises(AttributeError):
        ds.name = "other"  # type: ignore[misc]


def test_matrix_sums_weights_and_drops_impressions():
    ds = _tiny()
    m = ds.matrix().toarray()
    b, a = ds.user_index["b"], ds.user_index["a"]
    x, y = ds.item_index["x"], ds.item_index["y"]
    assert m[b, x] == 3.0  # like (2) + click (1)
    assert m[a, x] == 0.0  # impression only
    assert m[a, y] == 1.0


def test_fingerprint_tracks_content():
    assert _tiny().fingerprint() == _tiny().fingerprint()
    other = _tiny().subset(np.array([True, True, True, False]))
    assert other.fingerprint() != _tiny().fingerprint()


def test_synthetic_is_deterministic_by_seed():
    cfg = SyntheticConfig(users=200, items=100, events=5_000, seed=3)
    a, b = generate(cfg), generate(cfg)
    c = generate(SyntheticConfig(users=200, items=100, events=5_000, seed=4))
    assert a.dataset.fingerprint() == b.dataset.fingerprint()
    assert a.dataset.fingerprint() != c.dataset.fingerprint()
    assert a.dataset.n_events == 5_000


def test_synthetic_has_every_engagement_kind(synth):
    kinds = set(np.unique(synth.dataset.event).tolist())
    assert {Event.IMPRESSION, Event.CLICK, Event.WATCH, Event.LIKE, Event.SKIP} <= kinds
    watch = synth.dataset.event == Event.WATCH
    assert (synth.dataset.value[watch] > 0).all() and (synth.dataset.value[watch] <= 1).all()


def test_synthetic_items_are_not_engaged_before_upload(synth):
    ds = synth.dataset
    assert (ds.ts >= ds.items.published_at[ds.item]).all()


def test_synthetic_clicks_follow_the_saved_truth(synth, tmp_path):
    ds, truth = synth.dataset, synth.truth
    imp = ds.event == Event.IMPRESSION
    clicked = set(zip(ds.user[ds.event == Event.CLICK].tolist(),
                      ds.item[ds.event == Event.CLICK].tolist(), strict=True))
    pairs = list(zip(ds.user[imp].tolist(), ds.item[imp].tolist(), strict=True))
    hit = np.array([p in clicked for p in pairs])
    logits = truth.logit(ds.user[imp], ds.item[imp])
    assert logits[hit].mean() > logits[~hit].mean() + 0.5
    truth.save(tmp_path / "truth")
    again = TasteModel.load(tmp_path / "truth")
    items = np.arange(10)
    np.testing.assert_allclose(again.click_prob(3, items), truth.click_prob(3, items))
