"""`novarank serve` and `novarank cache warm`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import typer

from novarank.cli.common import console, friendly_errors
from novarank.config import ServiceSettings
from novarank.errors import ConfigError

cache_app = typer.Typer(help="Cache operations.", no_args_is_help=True)


def _export(release: Path | None, settings_json: str | None) -> None:
    """Settings reach every uvicorn worker through the environment (NOVARANK_*)."""
    if release is not None:
        os.environ["NOVARANK_RELEASE"] = str(release)
    if settings_json:
        try:
            extra = json.loads(settings_json)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--settings: not valid JSON ({exc})") from None
        for key, value in extra.items():
            os.environ[f"NOVARANK_{key.upper()}"] = (json.dumps(value)
                                                     if isinstance(value, dict | list)
                                                     else str(value))
    ServiceSettings()  # fail here, with the field named, rather than in every worker


@friendly_errors
def serve(
    release: Path = typer.Option(None, help="release directory (or NOVARANK_RELEASE)"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    workers: int = typer.Option(1, min=1, help="worker processes"),
    settings: str = typer.Option(None, help='extra settings as JSON, e.g. \'{"cache_url": '
                                            '"redis://127.0.0.1:6379/0"}\''),
    log_level: str = typer.Option("warning"),
    open_: bool = typer.Option(False, "--open", help="development mode: no key needed "
                               "except for /v1/admin (same as NOVARANK_AUTH=off)"),
) -> None:
    """Serve the REST API with uvicorn (settings: NOVARANK_* environment variables)."""
    import uvicorn

    from novarank.errors import ReleaseError
    from novarank.release.lock import verify_release

    if open_:
        os.environ["NOVARANK_AUTH"] = "off"
    _export(release, settings)
    current = ServiceSettings()
    if current.auth == "on" and current.api_keys_file is None and current.admin_token is None:
        raise ConfigError("no API keys: set NOVARANK_API_KEYS_FILE (make one with `novarank "
                          "keys issue --file keys.yaml --name app --scopes read,events`), or "
                          "run `novarank serve --open` for development")
    if current.api_keys_file is not None:
        from novarank.keys import Keyring

        Keyring(current.api_keys_file)  # a missing or broken key file: one sentence, here
    path = current.release
    try:  # here, once, with a sentence; not as a traceback from every worker
        verify_release(path)
    except ReleaseError as exc:
        hint = (" — make one with `make demo` or `novarank train --data … --out DIR`"
                if not Path(path).is_dir() else "")
        raise ReleaseError(f"{exc}{hint}") from None
    # the access log is an INFO line: below that level it is never shown, and uvicorn
    # would still format its arguments for every request
    uvicorn.run("novarank.api.app:app_from_env", factory=True, host=host, port=port,
                workers=workers, log_level=log_level, timeout_graceful_shutdown=20,
                access_log=log_level.lower() in ("info", "debug", "trace"))


@cache_app.command()
@friendly_errors
def warm(
    url: str = typer.Option(None, help="a running service: warm it through its admin API"),
    token: str = typer.Option(None, envvar="NOVARANK_ADMIN_TOKEN", help="admin bearer token"),
    release: Path = typer.Option(None, help="without --url: warm the shared cache directly"),
    max_users: int = typer.Option(None, help="warm only the N most active users"),
    settings: str = typer.Option(None, help="extra settings as JSON (without --url)"),
) -> None:
    """Run the warm plan and print its manifest (objects, bytes, seconds)."""
    if url:
        import httpx

        if not token:
            raise ConfigError("--token (or NOVARANK_ADMIN_TOKEN) is required with --url")
        params = {"max_users": max_users} if max_users else {}
        r = httpx.post(f"{url.rstrip('/')}/v1/admin/cache/warm", params=params,
                       headers={"Authorization": f"Bearer {token}"}, timeout=600)
        if r.status_code != 200:
            raise ConfigError(f"warm failed: HTTP {r.status_code} {r.text}")
        manifest = r.json()
    else:
        from novarank.online.service import RankingService

        _export(release, settings)
        service = RankingService(ServiceSettings())
        try:
            if service.cache.l2 is None:
                console.print("[yellow]note:[/] no shared cache (cache_url is memory://): this "
                              "warms only this process; use --url to warm a running service")
            manifest = asdict(service.feeds.warm(max_users))
        finally:
            service.close()
    console.print_json(json.dumps(manifest))
