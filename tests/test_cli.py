from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from novarank.cli.main import app

runner = CliRunner()
DATA = "synthetic:users=300,items=200,creators=30,events=20000,seed=5"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("rel") / "v1"
    res = runner.invoke(app, ["train", "--data", DATA, "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_train_writes_a_verifiable_release(trained):
    lock = json.loads((trained / "release.lock.json").read_text())
    assert lock["version"] == "v1"
    assert lock["metrics"]["evaluation"]["rows"][0]["method"] == "ranker"
    assert "weights" in lock["metrics"]["tuning"]
    res = runner.invoke(app, ["release", "verify", str(trained)])
    assert res.exit_code == 0 and "ok" in res.output


def test_verify_fails_loudly_on_tampering(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "model.json").write_text("{}")
    res = runner.invoke(app, ["release", "verify", str(copy)])
    assert res.exit_code == 2
    assert "altered: model.json" in res.output


def test_recommend_one_and_batch(trained, tmp_path):
    res = runner.invoke(app, ["recommend", "--release", str(trained), "--user", "u1", "-k", "5"])
    assert res.exit_code == 0, res.output
    assert "feed for u1" in res.output and "fresh" in res.output
    users = tmp_path / "users.txt"
    users.write_text("u1\nu2\nnobody\n")
    out = tmp_path / "recs.jsonl"
    res = runner.invoke(app, ["recommend", "--release", str(trained), "--users", str(users),
                              "-k", "7", "--out", str(out)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["user_id"] for x in lines] == ["u1", "u2", "nobody"]
    assert all(len(x["items"]) == 7 for x in lines)
    assert lines[2]["cold"] is True


def test_the_cli_and_http_serve_one_feed_path(trained, tmp_path):
    """`novarank recommend` ranks through the served feed path: at one clock its feeds are
    the HTTP feeds of the same release, item for item, score for score."""
    from fastapi.testclient import TestClient

    from novarank.api import create_app
    from novarank.config import ServiceSettings
    from novarank.online.service import RankingService

    at = json.loads((trained / "model.json").read_text())["as_of"] + 3_600
    users = tmp_path / "users.txt"
    users.write_text("u1\nu7\nnobody\n")
    out = tmp_path / "recs.jsonl"
    res = runner.invoke(app, ["recommend", "--release", str(trained), "--users", str(users),
                              "-k", "7", "--out", str(out), "--now", str(at)])
    assert res.exit_code == 0, res.output
    cli = {x["user_id"]: x["items"] for x in map(json.loads, out.read_text().splitlines())}
    settings = ServiceSettings(release=trained, state_url="sqlite://", cache_url="memory://",
                               counters_url="memory://", events_url="null://",
                               admin_token="t0ken")
    with TestClient(create_app(settings, RankingService(settings, clock=lambda: at))) as c:
        for user, items in cli.items():
            body = c.get(f"/v1/users/{user}/feed?k=7",
                         headers={"X-Variant-Override": "control",  # the CLI's --variant
                                  "Authorization": "Bearer t0ken"}).json()
            assert [{k: it[k] for k in ("item_id", "score", "source", "reasons")}
                    for it in body["items"]] == items


def test_bad_arguments_are_named(trained):
    res = runner.invoke(app, ["recommend", "--release", str(trained)])
    assert res.exit_code == 2 and "exactly one of --user or --users" in res.output
    res = runner.invoke(app, ["recommend", "--release", str(trained), "--user", "u1", "-k", "0"])
    assert res.exit_code == 2 and "k: must be between 1 and" in res.output
    res = runner.invoke(app, ["train", "--data", "synthetic:colour=3", "--out", "x"])
    assert res.exit_code == 2 and "unknown synthetic option 'colour'" in res.output


def test_evaluate_prints_and_writes_json(tmp_path):
    out = tmp_path / "eval.json"
    res = runner.invoke(app, ["evaluate", "--data", DATA, "--out", str(out), "--no-tune"])
    assert res.exit_code == 0, res.output
    body = json.loads(out.read_text())
    methods = {r["method"] for r in body["evaluation"]["rows"]}
    assert methods == {"ranker", "item_item", "als", "popularity"}
    assert body["data"]["events"] == 20_000


def test_synth_round_trips_through_the_generic_loader(tmp_path):
    from novarank.data.loaders import load
    from novarank.data.synthetic import SyntheticConfig, TasteModel, generate

    res = runner.invoke(app, ["data", "synth", "--out", str(tmp_path), "--users", "100",
                              "--items", "80", "--events", "3000", "--seed", "2"])
    assert res.exit_code == 0, res.output
    again = load(tmp_path)
    original = generate(SyntheticConfig(users=100, items=80, events=3000, seed=2)).dataset
    assert again.n_events == original.n_events == 3000
    assert sorted(again.items.ids.tolist()) == sorted(original.items.ids.tolist())
    assert set(again.items.creator.tolist()) == set(original.items.creator.tolist())
    assert TasteModel.load(tmp_path / "truth").user_factors.shape == (100, 16)


def test_serve_without_a_release_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "novarank.cli.main", "serve", "--release",
                          str(tmp_path / "missing")], capture_output=True, text=True,
                         timeout=60)
    out = res.stdout + res.stderr
    assert res.returncode == 2 and "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(tmp_path / "missing") in lines[0] and "make demo" in lines[0]
