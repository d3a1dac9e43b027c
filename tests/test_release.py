from __future__ import annotations

import json

import numpy as np
import pytest

from novarank.errors import ReleaseError
from novarank.online import Recommender
from novarank.release import LOCK_NAME, load_release, save_release, verify_release


@pytest.fixture()
def release(tmp_path, small_model):
    out = tmp_path / "v1"
    save_release(small_model, out, version="v1")
    return out


def test_lock_records_every_artifact(release, small_model):
    lock = json.loads((release / LOCK_NAME).read_text())
    files = {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()}
    assert set(lock["files"]) == files - {LOCK_NAME}
    for meta in lock["files"].values():
        assert len(meta["sha256"]) == 64 and meta["bytes"] > 0
    assert lock["version"] == "v1"
    assert lock["data_fingerprint"] == small_model.data_fingerprint
    assert lock["config"]["als_factors"] == small_model.config.als_factors
    assert "code_version" in lock and "created_at" in lock


def test_round_trip_serves_identical_feeds(release, small_model):
    model, index, _ = load_release(release)
    a, b = Recommender(small_model), Recommender(model, index=index)
    for user in ("u0", "u5", "u17", "stranger"):
        fa = a.recommend(user, 10, now=small_model.as_of)
        fb = b.recommend(user, 10, now=small_model.as_of)
        assert [i.item_id for i in fa.items] == [i.item_id for i in fb.items]
        np.testing.assert_allclose([i.score for i in fa.items], [i.score for i in fb.items],
                                   rtol=1e-5)


@pytest.mark.parametrize("damage,word", [("alter", "altered"), ("remove", "missing"),
                                         ("add", "extra")])
def test_verify_names_the_bad_file(release, damage, word):
    target = release / "arrays" / "quality.npy"
    if damage == "alter":
        raw = bytearray(target.read_bytes())
        raw[-1] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "remove":
        target.unlink()
    else:
        (release / "arrays" / "sneaky.npy").write_bytes(b"x")
    with pytest.raises(ReleaseError) as err:
        verify_release(release)
    expected = "arrays/sneaky.npy" if damage == "add" else "arrays/quality.npy"
    assert f"{word}: {expected}" in str(err.value)
    with pytest.raises(ReleaseError):
        load_release(release)  # loading verifies first and refuses


def test_releases_are_immutable(release, small_model):
    with pytest.raises(ReleaseError, match="not empty"):
        save_release(small_model, release)


def test_missing_lock_is_refused(tmp_path):
    (tmp_path / "r").mkdir()
    with pytest.raises(ReleaseError, match="not a locked release"):
        verify_release(tmp_path / "r")
