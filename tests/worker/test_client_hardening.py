"""The bot's worker client across the trust boundary, and the in-process page budget."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.worker_client import InProcessWorker, WorkerClient, WorkerError, make_worker
from colorbot.settings import Settings
from tests.worker.conftest import page_png
from tests.worker.test_client import base_url, start_worker


async def test_client_sends_the_worker_token(aiohttp_server, family_dir, backend, caplog):
    _, server = await start_worker(aiohttp_server, family_dir, backend, token="tok-42")
    async with WorkerClient([base_url(server)], timeout=30, token="tok-42") as client:
        result = await client.colorize(page_png(), members=["openmoji"])
        assert [c.member for c in result] == ["openmoji"]
    async with WorkerClient([base_url(server)], timeout=30, attempts=1) as client:
        with pytest.raises(WorkerError) as caught:
            await client.colorize(page_png(), members=["openmoji"])
        assert caught.value.status == 401 and "try again" in caught.value.message
    assert "tok-42" not in caught.value.message and "tok-42" not in caplog.text


def test_make_worker_takes_token_and_budget_from_the_settings():
    remote = make_worker(Settings(worker_urls=("http://w:8700",), worker_token="abc"))
    assert isinstance(remote, WorkerClient) and remote._token == "abc"
    assert "abc" not in repr(Settings(worker_token="abc"))
    local = make_worker(Settings(max_page_pixels=123_456))
    assert isinstance(local, InProcessWorker) and local.max_page_pixels == 123_456


async def test_in_process_worker_colors_big_pages_at_the_budget(family_dir, backend):
    worker = InProcessWorker(str(family_dir), device="cpu", backend=backend,
                             max_page_pixels=60 * 45)
    try:
        result = await worker.colorize(page_png(600, 450), members=["openmoji"])
        image = Image.open(io.BytesIO(result.get("openmoji").png))
        assert image.width * image.height <= 60 * 45
        assert result.page["original_width"] == 600
    finally:
        await worker.close()
