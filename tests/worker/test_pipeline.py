"""The worker and the in-process client on the real colorizing core (a tiny family)."""

from __future__ import annotations

import base64
import io

from PIL import Image

from bot.worker_client import InProcessWorker, WorkerError
from models.worker.app import create_app
from tests.worker.conftest import page_png
from tests.worker.test_app import form, worker_settings


async def test_worker_colors_with_the_real_pipeline(aiohttp_client, family_dir):
    client = await aiohttp_client(create_app(worker_settings(family_dir)))
    response = await client.post("/v1/colorize", data=form(page_png(60, 44), kind="lineart"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["page"]["kind"] == "lineart" and body["page"]["width"] == 60
    assert [c["member"] for c in body["colorings"]] == ["openmoji", "fluent"]
    for coloring in body["colorings"]:
        image = Image.open(io.BytesIO(base64.b64decode(coloring["png_base64"])))
        assert image.size == (60, 44) and image.mode == "RGB"


async def test_pages_of_different_sizes_share_a_real_batch(aiohttp_client, family_dir):
    import asyncio

    settings = worker_settings(family_dir, max_batch_size=3, max_wait_ms=2000)
    client = await aiohttp_client(create_app(settings))
    sizes = [(48, 40), (80, 30), (33, 64)]
    responses = await asyncio.gather(
        *(client.post("/v1/colorize", data=form(page_png(w, h, seed=i), members="fluent"))
          for i, (w, h) in enumerate(sizes))
    )
    for (w, h), response in zip(sizes, responses, strict=True):
        body = await response.json()
        coloring = body["colorings"][0]
        assert coloring["batch_size"] == 3
        png = base64.b64decode(coloring["png_base64"])
        assert Image.open(io.BytesIO(png)).size == (w, h)


async def test_in_process_worker_on_the_real_pipeline(family_dir):
    async with InProcessWorker(str(family_dir), device="cpu") as worker:
        result = await worker.colorize(page_png(), members=["openmoji"], strength=2.0)
        assert [c.emoji for c in result] == ["😀"]
        assert result.page["kind"] in ("lineart", "photo")
        try:
            await worker.colorize(b"GIF89a broken")
        except WorkerError as exc:
            assert exc.status == 400
        else:
            raise AssertionError("a broken image must fail")
