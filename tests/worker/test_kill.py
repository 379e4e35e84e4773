"""A real worker process SIGKILLed in the middle of a request: the client moves on."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from bot.worker_client import WorkerClient
from models.worker.app import create_app
from tests.worker.conftest import page_png
from tests.worker.test_app import worker_settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def metric_value(session: aiohttp.ClientSession, url: str, name: str) -> float:
    async with session.get(url + "/metrics") as response:
        text = await response.text()
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


@pytest.mark.slow
async def test_sigkilled_worker_mid_request_client_gets_colorings_elsewhere(
    aiohttp_server, family_dir, tmp_path
):
    port = free_port()
    url_a = f"http://127.0.0.1:{port}"
    # Worker A is a real `python -m models.worker` process; its 10 s batching wait holds
    # our page in its queue, so the kill lands while the request is in flight.
    log = open(tmp_path / "worker-a.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "models.worker", "--host", "127.0.0.1", "--port", str(port),
         "--family", str(family_dir), "--device", "cpu", "--max-wait-ms", "10000",
         "--reload-poll-s", "0", "--torch-threads", "1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        server_b = await aiohttp_server(create_app(worker_settings(family_dir)))
        url_b = str(server_b.make_url("/")).rstrip("/")
        async with aiohttp.ClientSession() as session:
            for _ in range(400):
                try:
                    async with session.get(url_a + "/readyz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert proc.poll() is None, (tmp_path / "worker-a.log").read_text()
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("worker A never became ready")

            client = WorkerClient([url_a, url_b], timeout=60, attempts=2)
            client._next = 0  # the first try goes to A
            request = asyncio.create_task(client.colorize(page_png(), members=["openmoji"]))
            for _ in range(200):
                if await metric_value(session, url_a, "colorbot_worker_in_flight_requests") >= 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the request never reached worker A")
            proc.send_signal(signal.SIGKILL)
            result = await asyncio.wait_for(request, 60)
            await client.close()
        assert result.worker == url_b and result.attempts == 2
        assert [c.member for c in result] == ["openmoji"]
        assert proc.wait(10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
