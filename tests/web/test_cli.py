"""`colorbot web` serves the page from the settings' database and family."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_colorbot_web_serves_the_family_and_says_when_the_database_is_not_ready(tmp_path):
    port = _free_port()
    env = {**os.environ, "COLORBOT_DATA": str(tmp_path), "DATABASE_URL": "",
           "COLORBOT_FAMILY": ""}
    proc = subprocess.Popen([sys.executable, "-m", "colorbot", "web", "--port", str(port)],
                            cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "colorbot web did not start"
            time.sleep(0.3)
        status, html = _get(base + "/")
        assert status == 200 and "openmoji" in html  # the bundled family
        status, html = _get(base + "/gallery")  # a database nobody migrated yet
        assert status == 503 and "not reachable right now" in html
    finally:
        proc.terminate()
        proc.wait(timeout=20)
