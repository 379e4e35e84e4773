"""The `seed` form field: another plausible coloring, the same for the same seed."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from PIL import Image

from models.worker.app import create_app
from models.worker.engine import BadRequest, PipelineBackend, parse_seed
from tests.worker.conftest import page_png
from tests.worker.test_app import form, worker_settings


def pixel(body: dict, member: str = "openmoji") -> tuple[int, int, int]:
    coloring = next(c for c in body["colorings"] if c["member"] == member)
    image = Image.open(io.BytesIO(base64.b64decode(coloring["png_base64"])))
    return image.convert("RGB").getpixel((0, 0))


def png(body: dict, member: str = "openmoji") -> bytes:
    coloring = next(c for c in body["colorings"] if c["member"] == member)
    return base64.b64decode(coloring["png_base64"])


async def test_seed_reaches_the_pipeline_and_is_echoed(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(members="openmoji", seed="1234"))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["page"]["seed"] == 1234
    assert backend.options_seen[-1]["seed"] == 1234
    assert pixel(body)[1] == 1234 % 251  # the fake colors with the seed it was given


async def test_no_seed_is_the_most_likely_coloring(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    for fields in ({}, {"seed": ""}):
        response = await client.post("/v1/colorize", data=form(members="openmoji", **fields))
        assert response.status == 200, await response.text()
        assert (await response.json())["page"]["seed"] is None
        assert backend.options_seen[-1]["seed"] is None


@pytest.mark.parametrize("seed", ["-1", "2147483648", "99999999999", "1.5", "1e3", "seven",
                                  "0x10", "²", "+3"])
async def test_bad_seed_is_400(aiohttp_client, family_dir, backend, seed):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(seed=seed))
    assert response.status == 400, seed
    error = (await response.json())["error"]
    assert "seed must be a whole number from 0 to 2147483647" in error
    assert backend.batches == []  # refused before any member ran


async def test_same_seed_same_bytes_other_seed_other_coloring(aiohttp_client, family_dir,
                                                              backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))

    async def colored(**fields: str) -> bytes:
        response = await client.post("/v1/colorize",
                                     data=form(page_png(seed=3), members="openmoji", **fields))
        assert response.status == 200, await response.text()
        return png(await response.json())

    first, again = await colored(seed="7"), await colored(seed="7")
    assert first == again
    assert await colored(seed="8") != first
    assert await colored() != first
    assert [o["seed"] for o in backend.options_seen] == [7, 7, 8, None]


async def test_pages_with_different_seeds_share_a_batch(aiohttp_client, family_dir, backend):
    # The seed steers only each page's compositing: one network call serves them all,
    # and every page still comes back colored with its own seed.
    settings = worker_settings(family_dir, max_batch_size=4, max_wait_ms=2000)
    client = await aiohttp_client(create_app(settings, backend=backend))
    seeds = [11, 22, 33, None]
    responses = await asyncio.gather(*(
        client.post("/v1/colorize", data=form(
            page_png(seed=i), members="openmoji",
            **({"seed": str(seed)} if seed is not None else {})))
        for i, seed in enumerate(seeds)
    ))
    assert [r.status for r in responses] == [200] * 4
    assert backend.batch_sizes("openmoji") == [4]
    bodies = [await r.json() for r in responses]
    assert [b["page"]["seed"] for b in bodies] == seeds
    assert [pixel(b)[1] for b in bodies] == [11, 22, 33, 128]
    assert {b["colorings"][0]["batch_size"] for b in bodies} == {4}


def test_parse_seed_takes_ints_and_digit_strings():
    assert parse_seed(None) is None and parse_seed("  ") is None
    assert parse_seed(0) == 0 and parse_seed(" 42 ") == 42
    assert parse_seed(2**31 - 1) == 2**31 - 1
    for bad in (True, -1, 2**31, "4.0"):
        with pytest.raises(BadRequest):
            parse_seed(bad)


def test_pipeline_backend_puts_the_seed_in_the_colorize_options():
    options = PipelineBackend().options(1.0, None, "auto", 5)
    assert options.seed == 5
    assert PipelineBackend().options(1.0, None, "auto").seed is None


async def test_client_sends_the_seed_only_when_given(aiohttp_server):
    from aiohttp import web

    from bot.worker_client import WorkerClient

    received: list[dict[str, str]] = []

    async def colorize(request: web.Request) -> web.Response:
        fields = {}
        async for part in await request.multipart():
            fields[part.name] = "<file>" if part.name == "image" else await part.text()
        received.append(fields)
        return web.json_response({"page": {"seed": fields.get("seed")}, "colorings": []})

    app = web.Application()
    app.router.add_post("/v1/colorize", colorize)
    server = await aiohttp_server(app)
    async with WorkerClient([str(server.make_url("/")).rstrip("/")], timeout=30) as client:
        await client.colorize(page_png())
        await client.colorize(page_png(), seed=0)
        await client.colorize(page_png(), seed=2**31 - 1)
    assert "seed" not in received[0]
    assert [r.get("seed") for r in received[1:]] == ["0", "2147483647"]


async def test_in_process_worker_passes_the_seed(family_dir, backend):
    from bot.worker_client import InProcessWorker, WorkerError

    worker = InProcessWorker(str(family_dir), device="cpu", backend=backend)
    try:
        result = await worker.colorize(page_png(), members=["openmoji"], seed=99)
        assert result.page["seed"] == 99 and backend.options_seen[-1]["seed"] == 99
        await worker.colorize(page_png(), members=["openmoji"])
        assert backend.options_seen[-1]["seed"] is None
        with pytest.raises(WorkerError) as caught:
            await worker.colorize(page_png(), seed=-3)
        assert caught.value.status == 400 and "seed" in caught.value.message
    finally:
        await worker.close()
