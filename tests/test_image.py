"""The container image: built with buildah (vfs, chroot isolation, no Docker engine) on a
Debian rootfs from debootstrap, then `novarank serve` inside it, as its non-root user with
the release mounted read-only, answers /readyz."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from novarank.cli.demo_service import free_port
from tests.services import tool

ROOT = Path(__file__).resolve().parent.parent
ENV = {"STORAGE_DRIVER": "vfs", "BUILDAH_ISOLATION": "chroot"}


@pytest.mark.slow
def test_the_image_builds_and_serves_readyz(small_release, tmp_path):
    import os

    buildah = tool("buildah")
    tool("debootstrap")
    env = {**os.environ, **ENV}
    tag = "localhost/novarank:test"
    built = subprocess.run([str(ROOT / "deploy" / "image" / "build.sh"), tag], env=env,
                           capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    config = json.loads(subprocess.run([buildah, "inspect", "--type", "image", tag], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    docker = config["Docker"]["config"]
    assert docker["User"] == "10001" and "readyz" in " ".join(docker["Healthcheck"]["Test"])
    release = tmp_path / "release"  # world-readable: the image's user is not root
    shutil.copytree(small_release[0], release)
    for p in [tmp_path, *release.rglob("*"), release]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    ctr = subprocess.run([buildah, "from", tag], env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    port = free_port()
    mount = ["--volume", f"{release}:/releases/current:ro"]
    proc = subprocess.Popen([buildah, "run", "--env", "NOVARANK_ADMIN_TOKEN=t", *mount, ctr,
                             "--", "novarank", "serve", "--host", "127.0.0.1", "--port",
                             str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline, ready = time.monotonic() + 90, None
        while time.monotonic() < deadline and ready is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                ready = r.json() if r.status_code == 200 else None
            except httpx.HTTPError:
                time.sleep(0.5)
        assert ready and ready["ready"] and ready["checks"]["release_verified"], ready
        assert httpx.get(f"http://127.0.0.1:{port}/v1/trending", timeout=5).status_code == 401
        who = subprocess.run([buildah, "run", *mount, ctr, "--", "sh", "-c",
                              "id -u; touch /releases/current/x"], env=env,
                             capture_output=True, text=True)
        assert who.stdout.split()[0] == "10001" and who.returncode != 0  # read-only release
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        subprocess.run(["pkill", "-f", f"novarank serve --host 127.0.0.1 --port {port}"])
        subprocess.run([buildah, "rm", ctr], env=env, capture_output=True)
        subprocess.run([buildah, "rmi", "-f", tag], env=env, capture_output=True)
