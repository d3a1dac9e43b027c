from __future__ import annotations

import json

import numpy as np
import pytest

from novarank.errors import ReleaseError
from novarank.ranking.recommender import Recommender
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
    typed = verify_release(release)  # the same, typed
    assert (typed.version, typed.files, typed.data_fingerprint) == (
        "v1", lock["files"], small_model.data_fingerprint)
    assert typed.config["als_factors"] == small_model.config.als_factors
    assert typed.digest == lock["integrity"]["digest"] and not typed.signed


def test_round_trip_serves_identical_feeds(release, small_model):
    model, index, _ = load_release(release)
    a, b = Recommender(small_model), Recommender(model, index=index)
    for user in ("u0", "u5", "u17", "stranger"):
        ra, rb = (rec.rank(rec.profile(user), 10, rec.weights("control"), small_model.as_of)
                  for rec in (a, b))
        np.testing.assert_array_equal(np.concatenate([ra.items, ra.backfill]),
                                      np.concatenate([rb.items, rb.backfill]))
        np.testing.assert_allclose(ra.scores, rb.scores, rtol=1e-5)


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


def _edit_lock(release, change):
    path = release / LOCK_NAME
    lock = json.loads(path.read_text())
    change(lock)
    path.write_text(json.dumps(lock))


@pytest.mark.parametrize("change,named", [
    (lambda lock: lock["config"]["ranker"]["variants"]["control"].update(trending=9.0),
     "lock field altered: config"),
    (lambda lock: lock["metrics"].update(recall_at_10=0.99), "lock field altered: metrics"),
    (lambda lock: lock["files"]["arrays/quality.npy"].update(sha256="0" * 64),
     "lock field altered: files"),
    (lambda lock: lock.update(served_by="someone"), "lock field added: served_by"),
])
def test_an_edited_lock_is_refused_naming_the_field(release, change, named):
    _edit_lock(release, change)
    with pytest.raises(ReleaseError) as err:
        verify_release(release)
    assert named in str(err.value)
    with pytest.raises(ReleaseError):
        load_release(release)


def test_a_lock_edited_with_its_digests_recomputed_fails_the_signature(release, monkeypatch):
    from novarank.release.lock import seal, sign_release

    sign_release(release, "operator-key")
    monkeypatch.setenv("NOVARANK_RELEASE_KEY", "operator-key")
    verify_release(release)
    # an attacker re-seals an edited lock and keeps the old signature: it cannot follow

    def reseal(lock):
        old = lock["integrity"]["signature"]
        lock.update(seal({**lock, "version": "evil"}))
        lock["integrity"]["signature"] = old

    _edit_lock(release, reseal)
    with pytest.raises(ReleaseError, match="signature does not match"):
        verify_release(release)


def test_a_renamed_artifact_is_refused(release):
    (release / "arrays" / "quality.npy").rename(release / "arrays" / "quality2.npy")
    with pytest.raises(ReleaseError) as err:
        verify_release(release)
    assert "missing: arrays/quality.npy" in str(err.value)
    assert "extra: arrays/quality2.npy" in str(err.value)


def test_signed_release_with_the_wrong_key_or_unsigned_is_refused(release, monkeypatch):
    from novarank.release.lock import sign_release

    monkeypatch.setenv("NOVARANK_RELEASE_KEY", "right")
    with pytest.raises(ReleaseError, match="unsigned"):
        verify_release(release)
    sign_release(release, "right")
    signed = verify_release(release)
    assert signed.signed and signed.doc["integrity"]["signature"]["algorithm"] == "hmac-sha256"
    monkeypatch.setenv("NOVARANK_RELEASE_KEY", "wrong")
    with pytest.raises(ReleaseError, match="signature does not match"):
        verify_release(release)
    with pytest.raises(ReleaseError, match="signature does not match"):
        load_release(release)


def test_release_sign_and_verify_commands(release, monkeypatch):
    from typer.testing import CliRunner

    from novarank.cli.main import app

    runner = CliRunner()
    res = runner.invoke(app, ["release", "sign", str(release)])
    assert res.exit_code == 2 and "NOVARANK_RELEASE_KEY" in res.output
    monkeypatch.setenv("NOVARANK_RELEASE_KEY", "k1")
    res = runner.invoke(app, ["release", "sign", str(release)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["release", "verify", str(release)])
    assert res.exit_code == 0 and "signature checked" in res.output, res.output
    _edit_lock(release, lambda lock: lock["config"]["ranker"].update(creator_cap=99))
    res = runner.invoke(app, ["release", "verify", str(release)])
    assert res.exit_code != 0 and "lock field altered: config" in res.output
