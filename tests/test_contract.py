"""The published OpenAPI document is true: schemathesis, all checks (response schemas,
status codes, headers, schema-valid requests accepted, schema-violating ones rejected,
the stateful phase over inferred links) against a real `novarank serve`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
EXAMPLES = 40  # per operation and phase: a bounded budget for CI


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from novarank.cli.demo_service import free_port, start_server, stop_server
    from novarank.config import TrainConfig
    from novarank.data.synthetic import SyntheticConfig, generate
    from novarank.release import save_release
    from novarank.training import fit_model

    work = tmp_path_factory.mktemp("contract")
    d = generate(SyntheticConfig(users=300, items=250, creators=30, events=20_000, seed=5))
    save_release(fit_model(d.dataset, TrainConfig(als_iterations=3, als_factors=8, tune=False)),
                 work / "rel", version="r1")
    port = free_port()
    proc = start_server(work / "rel", work, port, log=work / "service.log")
    yield f"http://127.0.0.1:{port}", work
    stop_server(proc)


@pytest.mark.slow
def test_schemathesis_finds_no_contract_violation(served):
    from novarank.cli.demo_service import TOKEN

    url, work = served
    cli = Path(sys.executable).parent / "schemathesis"
    res = subprocess.run(
        [str(cli), "--config-file", str(ROOT / "contract" / "schemathesis.toml"), "run",
         f"{url}/openapi.json", "--checks", "all", "--max-examples", str(EXAMPLES),
         "--seed", "1", "--request-timeout", "10", "-H", f"Authorization: Bearer {TOKEN}"],
        capture_output=True, text=True, timeout=600, cwd=work)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    assert "No issues found" in out and "Stateful" in out, out[-3000:]


def test_every_route_publishes_its_response_model_and_errors():
    """No 200 body documented as a bare string, every error answer in the error shape."""
    import tempfile

    from fastapi.testclient import TestClient

    from novarank.api import create_app
    from novarank.config import ServiceSettings, TrainConfig
    from novarank.data.synthetic import SyntheticConfig, generate
    from novarank.online.service import RankingService
    from novarank.release import save_release
    from novarank.training import fit_model

    with tempfile.TemporaryDirectory() as tmp:
        d = generate(SyntheticConfig(users=50, items=40, events=2_000, seed=2))
        save_release(fit_model(d.dataset, TrainConfig(als_iterations=1, als_factors=4,
                                                      tune=False)), Path(tmp) / "r")
        s = ServiceSettings(release=Path(tmp) / "r", state_url=f"sqlite:///{tmp}/s.db",
                            events_url="null://")
        with TestClient(create_app(s)) as c:
            doc = c.get("/openapi.json").json()
            service: RankingService = c.app.state.service
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    ok = op["responses"].get("200", {}).get("content", {})
                    schema = next(iter(ok.values()), {}).get("schema", {})
                    if path != "/metrics":
                        assert schema.get("type") != "string", (method, path)
                        assert "$ref" in schema, (method, path, schema)
                    for code, resp in op["responses"].items():
                        if code.startswith(("4", "5")) and path != "/readyz":
                            ref = resp["content"]["application/json"]["schema"]["$ref"]
                            assert ref.endswith("/ErrorResponse"), (method, path, code)
            feed = doc["paths"]["/v1/users/{user_id}/feed"]["get"]["parameters"]
            k = next(p for p in feed if p["name"] == "k")["schema"]
            assert (k["minimum"], k["maximum"]) == (1, service.settings.feed_window)
            override = next(p for p in feed if p["name"] == "X-Variant-Override")["schema"]
            assert override["enum"] == sorted(service.rec.ranker.variants)
