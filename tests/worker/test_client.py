"""The bot's worker client: spreading, retries on another worker, the in-process mode."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image

from bot.worker_client import InProcessWorker, WorkerClient, WorkerError
from models.worker.app import METRICS_KEY, create_app
from tests.worker.conftest import FakeBackend, page_png
from tests.worker.test_app import worker_settings


def base_url(server) -> str:
    return str(server.make_url("/")).rstrip("/")


def colorize_requests(app: web.Application) -> int:
    counter = app[METRICS_KEY].requests
    with counter._lock:
        return int(sum(v for (route, _), v in counter._values.items() if route == "/v1/colorize"))


async def start_worker(aiohttp_server, family_dir: Path, backend: FakeBackend, **settings):
    app = create_app(worker_settings(family_dir, **settings), backend=backend)
    server = await aiohttp_server(app)
    return app, server


async def test_client_gets_colorings_and_family(aiohttp_server, family_dir, backend):
    _, server = await start_worker(aiohttp_server, family_dir, backend)
    async with WorkerClient([base_url(server)], timeout=30) as client:
        result = await client.colorize(page_png(48, 40), members=["fluent"], strength=1.2,
                                       fill=False, kind="lineart")
        assert [c.member for c in result] == ["fluent"]
        coloring = result.get("fluent")
        assert coloring is not None and coloring.emoji == "🌈" and coloring.version == 1
        assert Image.open(io.BytesIO(coloring.png)).size == (48, 40)
        assert result.worker == base_url(server) and result.attempts == 1
        family = await client.family()
        assert [m["name"] for m in family] == ["openmoji", "fluent"]


async def test_requests_are_spread_over_workers(aiohttp_server, family_dir):
    apps = []
    for _ in range(2):
        app, server = await start_worker(aiohttp_server, family_dir, FakeBackend())
        apps.append((app, base_url(server)))
    async with WorkerClient([url for _, url in apps]) as client:
        for _ in range(4):
            await client.colorize(page_png(), members=["openmoji"])
    assert [colorize_requests(app) for app, _ in apps] == [2, 2]


async def test_worker_dying_mid_request_is_retried_on_the_other(aiohttp_server, family_dir):
    """Worker A accepts the page, starts its batch, then dies with the connection open."""
    backend_a, backend_b = FakeBackend(), FakeBackend()
    backend_a.gate.clear()  # A's batch never finishes on its own
    app_a, server_a = await start_worker(aiohttp_server, family_dir, backend_a)
    app_b, server_b = await start_worker(aiohttp_server, family_dir, backend_b)
    client = WorkerClient([base_url(server_a), base_url(server_b)], timeout=30, attempts=2)
    client._next = 0  # first try goes to A

    async def kill_a_once_its_batch_runs() -> None:
        await asyncio.to_thread(backend_a.batch_started.wait, 10)
        # A "crash": every connection of A drops, no response is written.
        for handler in list(server_a.runner.server.connections):
            handler.transport.abort()

    killer = asyncio.create_task(kill_a_once_its_batch_runs())
    try:
        result = await client.colorize(page_png(), members=["openmoji", "fluent"])
    finally:
        backend_a.gate.set()
        await killer
        await client.close()
    assert [c.member for c in result] == ["openmoji", "fluent"]
    assert result.worker == base_url(server_b) and result.attempts == 2
    assert backend_b.batch_sizes() == [1, 1]


async def test_handler_closing_the_connection_is_retried_on_the_other(aiohttp_server,
                                                                      family_dir):
    @web.middleware
    async def hang_up(request: web.Request, handler):
        if request.path == "/v1/colorize":
            await request.read()
            request.transport.close()  # the worker goes away mid-request
            await asyncio.sleep(0.05)
        return await handler(request)

    app_a = create_app(worker_settings(family_dir), backend=FakeBackend())
    app_a.middlewares.insert(0, hang_up)
    server_a = await aiohttp_server(app_a)
    _, server_b = await start_worker(aiohttp_server, family_dir, FakeBackend())
    async with WorkerClient([base_url(server_a), base_url(server_b)], attempts=2) as client:
        client._next = 0
        result = await client.colorize(page_png(), members=["openmoji"])
    assert result.worker == base_url(server_b)


async def test_dead_url_and_5xx_move_on_to_a_healthy_worker(aiohttp_server, family_dir,
                                                            unused_tcp_port):
    failing = FakeBackend()
    failing.failing.add("openmoji")
    _, server_bad = await start_worker(aiohttp_server, family_dir, failing)
    _, server_ok = await start_worker(aiohttp_server, family_dir, FakeBackend())
    urls = [f"http://127.0.0.1:{unused_tcp_port}", base_url(server_bad), base_url(server_ok)]
    async with WorkerClient(urls, attempts=3, backoff_s=0.01) as client:
        client._next = 0
        result = await client.colorize(page_png(), members=["openmoji"])
    assert result.worker == base_url(server_ok) and result.attempts == 3


async def test_4xx_is_not_retried_and_carries_the_workers_message(aiohttp_server, family_dir):
    apps = []
    for _ in range(2):
        app, server = await start_worker(aiohttp_server, family_dir, FakeBackend())
        apps.append((app, base_url(server)))
    async with WorkerClient([url for _, url in apps], attempts=2) as client:
        with pytest.raises(WorkerError) as caught:
            await client.colorize(b"not an image at all")
        assert caught.value.status == 400 and not caught.value.retryable
        assert "can't read that file as an image" in str(caught.value)
        with pytest.raises(WorkerError) as caught:
            await client.colorize(page_png(), members=["grandpa"])
        assert "grandpa" in caught.value.message
    assert sum(colorize_requests(app) for app, _ in apps) == 2  # one try each


async def test_every_worker_failing_gives_a_retryable_user_message(aiohttp_server, family_dir):
    busy = FakeBackend()
    busy.failing.add("openmoji")
    _, server = await start_worker(aiohttp_server, family_dir, busy)
    async with WorkerClient([base_url(server)], attempts=2, backoff_s=0.01) as client:
        with pytest.raises(WorkerError) as caught:
            await client.colorize(page_png(), members=["openmoji"])
    assert caught.value.retryable and "try again" in caught.value.message
    assert busy.batch_sizes() == [1, 1]


async def test_in_process_worker_has_the_same_interface(family_dir, backend):
    worker = InProcessWorker(str(family_dir), device="cpu", backend=backend)
    try:
        results = await asyncio.gather(
            *(worker.colorize(page_png(seed=i), members=["openmoji"]) for i in range(3))
        )
        assert all([c.member for c in r] == ["openmoji"] for r in results)
        assert results[0].worker == "in-process"
        png = results[0].get("openmoji").png
        assert Image.open(io.BytesIO(png)).size == (48, 40)
        assert [m["emoji"] for m in await worker.family()] == ["😀", "🌈"]
        with pytest.raises(WorkerError) as caught:
            await worker.colorize(b"garbage")
        assert caught.value.status == 400
        with pytest.raises(WorkerError):
            await worker.colorize(page_png(), members=["grandpa"])
    finally:
        await worker.close()


def test_importing_the_client_does_not_import_torch():
    code = ("import sys, bot.worker_client; "
            "sys.exit(1 if 'torch' in sys.modules or 'models.worker.engine' in sys.modules else 0)")
    completed = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    assert completed.returncode == 0
