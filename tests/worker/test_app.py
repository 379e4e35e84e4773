"""The worker's HTTP behaviour, through aiohttp's test client."""

from __future__ import annotations

import asyncio
import base64
import io
import re
from pathlib import Path

import aiohttp
from PIL import Image

from models.worker.app import ENGINE_KEY, create_app
from models.worker.settings import WorkerSettings
from tests.worker.conftest import page_png

ADMIN = {"Authorization": "Bearer sesame"}


def worker_settings(family_dir: Path, **overrides: object) -> WorkerSettings:
    values: dict[str, object] = {
        "family_path": str(family_dir), "device": "cpu", "reload_poll_s": 0,
        "max_wait_ms": 5.0,
    }
    values.update(overrides)
    return WorkerSettings(**values)  # type: ignore[arg-type]


def form(image: bytes | None = None, **fields: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("image", page_png() if image is None else image, filename="page.png",
                   content_type="image/png")
    for name, value in fields.items():
        data.add_field(name, value)
    return data


def metric(text: str, name: str) -> float:
    """Sum of every sample of `name` (any labels) in a Prometheus text body."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.M)
    return sum(float(v) for v in pattern.findall(text))


async def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_colorize_returns_one_png_per_member_at_page_size(aiohttp_client, family_dir,
                                                                 backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(page_png(48, 40)))
    assert response.status == 200, await response.text()
    body = await response.json()
    assert [c["member"] for c in body["colorings"]] == ["openmoji", "fluent"]
    assert [c["emoji"] for c in body["colorings"]] == ["😀", "🌈"]
    assert all(c["version"] == 1 and c["ms"] >= 0 for c in body["colorings"])
    image = Image.open(io.BytesIO(base64.b64decode(body["colorings"][0]["png_base64"])))
    assert image.size == (48, 40)
    assert body["page"]["width"] == 48 and body["page"]["height"] == 40


async def test_members_field_picks_members(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(members="fluent", strength="1.5"))
    body = await response.json()
    assert [c["member"] for c in body["colorings"]] == ["fluent"]


async def test_concurrent_requests_share_batches(aiohttp_client, family_dir, backend):
    # The batch closes at 4 pages, long before the 2 s wait: all four ride one batch.
    settings = worker_settings(family_dir, max_batch_size=4, max_wait_ms=2000)
    client = await aiohttp_client(create_app(settings, backend=backend))
    responses = await asyncio.gather(
        *(client.post("/v1/colorize", data=form(page_png(seed=i), members="openmoji"))
          for i in range(4))
    )
    assert [r.status for r in responses] == [200] * 4
    assert backend.batch_sizes("openmoji") == [4]
    bodies = [await r.json() for r in responses]
    assert {b["colorings"][0]["batch_size"] for b in bodies} == {4}
    text = await (await client.get("/metrics")).text()
    assert 'colorbot_worker_batch_size_bucket{member="openmoji",le="3"} 0' in text
    assert 'colorbot_worker_batch_size_bucket{member="openmoji",le="4"} 1' in text


async def test_lone_request_goes_alone_after_max_wait(aiohttp_client, family_dir, backend):
    settings = worker_settings(family_dir, max_batch_size=8, max_wait_ms=100)
    client = await aiohttp_client(create_app(settings, backend=backend))
    response = await client.post("/v1/colorize", data=form(members="openmoji"))
    assert response.status == 200
    coloring = (await response.json())["colorings"][0]
    # It waited for the oldest page's deadline (not for 8 pages), then went alone.
    assert coloring["queue_ms"] >= 90
    assert coloring["batch_size"] == 1 and backend.batch_sizes() == [1]


async def test_full_queue_answers_503_with_retry_after(aiohttp_client, family_dir, backend):
    settings = worker_settings(family_dir, max_batch_size=1, max_queue_size=2, retry_after_s=3)
    app = create_app(settings, backend=backend)
    client = await aiohttp_client(app)
    engine = app[ENGINE_KEY]
    backend.gate.clear()  # the first batch holds the member's only batch slot
    first = asyncio.create_task(client.post("/v1/colorize", data=form(members="openmoji")))
    await asyncio.to_thread(backend.batch_started.wait, 10)
    queued = [asyncio.create_task(client.post("/v1/colorize", data=form(members="openmoji")))
              for _ in range(2)]
    await wait_until(lambda: engine._batcher.depth("openmoji") == 2)
    refused = await client.post("/v1/colorize", data=form(members="openmoji"))
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "3"
    assert "busy" in (await refused.json())["error"]
    backend.gate.set()
    assert [r.status for r in await asyncio.gather(first, *queued)] == [200, 200, 200]
    text = await (await client.get("/metrics")).text()
    assert metric(text, "colorbot_worker_rejected_total") == 1


async def test_bad_image_is_400_with_the_page_error(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(b"this is not a picture"))
    assert response.status == 400
    assert "can't read that file as an image" in (await response.json())["error"]
    assert backend.batches == []


async def test_unknown_member_is_400_naming_the_family(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(members="openmoji,grandpa"))
    assert response.status == 400
    error = (await response.json())["error"]
    assert "grandpa" in error and "openmoji, fluent" in error


async def test_bad_options_and_missing_image_are_400(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    for fields in ({"strength": "lots"}, {"strength": "99"}, {"fill": "maybe"},
                   {"kind": "sculpture"}):
        response = await client.post("/v1/colorize", data=form(**fields))
        assert response.status == 400, fields
    no_image = aiohttp.FormData()
    no_image.add_field("members", "openmoji", content_type="text/plain")  # multipart
    response = await client.post("/v1/colorize", data=no_image)
    assert response.status == 400 and "no 'image'" in (await response.json())["error"]
    response = await client.post("/v1/colorize", json={"image": "nope"})
    assert response.status == 400 and "multipart" in (await response.json())["error"]


async def test_oversized_upload_is_413_json(aiohttp_client, family_dir, backend):
    settings = worker_settings(family_dir, max_request_bytes=20_000)
    client = await aiohttp_client(create_app(settings, backend=backend))
    response = await client.post("/v1/colorize", data=form(b"\x89PNG" + b"\0" * 50_000))
    assert response.status == 413
    body = await response.json()
    assert body["status"] == 413 and "too large" in body["error"]


async def test_failing_batch_fails_every_request_in_it(aiohttp_client, family_dir, backend):
    backend.failing.add("fluent")
    settings = worker_settings(family_dir, max_batch_size=3, max_wait_ms=2000)
    client = await aiohttp_client(create_app(settings, backend=backend))
    responses = await asyncio.gather(
        *(client.post("/v1/colorize", data=form(page_png(seed=i), members="fluent"))
          for i in range(3))
    )
    assert [r.status for r in responses] == [500] * 3
    for response in responses:
        assert (await response.json())["error"] == "fluent could not color this page"
    assert backend.batch_sizes("fluent") == [3]
    text = await (await client.get("/metrics")).text()
    assert metric(text, "colorbot_worker_batch_failures_total") == 1
    # The worker keeps serving the other members.
    ok = await client.post("/v1/colorize", data=form(members="openmoji"))
    assert ok.status == 200


async def test_family_health_ready_and_metrics(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    family = await (await client.get("/v1/family")).json()
    assert [(m["name"], m["emoji"], m["version"]) for m in family["members"]] == [
        ("openmoji", "😀", 1), ("fluent", "🌈", 1)]
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200
    await client.post("/v1/colorize", data=form())
    response = await client.get("/metrics")
    assert response.content_type == "text/plain"
    text = await response.text()
    assert metric(text, "colorbot_worker_ready") == 1
    assert 'colorbot_worker_requests_total{route="/v1/colorize",status="200"} 1' in text
    assert metric(text, "colorbot_worker_request_seconds_count") >= 1
    assert "colorbot_worker_queue_depth" in text
    missing = await client.get("/nope")
    assert missing.status == 404 and (await missing.json())["status"] == 404


async def test_graceful_shutdown_finishes_requests_in_flight(aiohttp_server, family_dir,
                                                             backend):
    app = create_app(worker_settings(family_dir, max_batch_size=2), backend=backend)
    server = await aiohttp_server(app)
    engine = app[ENGINE_KEY]
    backend.gate.clear()
    async with aiohttp.ClientSession() as session:
        in_flight = asyncio.create_task(
            session.post(server.make_url("/v1/colorize"), data=form(members="openmoji")))
        await asyncio.to_thread(backend.batch_started.wait, 10)
        closing = asyncio.create_task(server.close())
        await wait_until(lambda: engine.draining)
        assert not engine.ready
        backend.gate.set()
        response = await in_flight
        assert response.status == 200
        body = await response.json()
        assert body["colorings"][0]["member"] == "openmoji"
        await closing


async def test_reload_swaps_family_without_dropping_requests(aiohttp_client, family_dir,
                                                             backend):
    from tests.worker.conftest import build_tiny_family

    app = create_app(worker_settings(family_dir, max_batch_size=4, admin_token="sesame"),
                     backend=backend)
    client = await aiohttp_client(app)
    backend.gate.clear()
    old = asyncio.create_task(client.post("/v1/colorize", data=form(members="openmoji")))
    await asyncio.to_thread(backend.batch_started.wait, 10)
    build_tiny_family(family_dir, version=2)  # a promotion rewrites the manifest
    response = await client.post("/v1/admin/reload", headers=ADMIN)
    assert response.status == 200
    assert {m["version"] for m in (await response.json())["members"]} == {2}
    backend.gate.set()
    old_body = await (await old).json()
    assert old_body["colorings"][0]["version"] == 1  # finished on the old family
    new_body = await (await client.post("/v1/colorize", data=form(members="openmoji"))).json()
    assert new_body["colorings"][0]["version"] == 2
    colorizers = [c for _, _, c in backend.batches]
    assert colorizers[0] is not colorizers[-1]


async def test_reload_failure_keeps_the_old_family(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(
        create_app(worker_settings(family_dir, admin_token="sesame"), backend=backend))
    (family_dir / "manifest.json").write_text("{ broken", encoding="utf-8")
    response = await client.post("/v1/admin/reload", headers=ADMIN)
    error = (await response.json())["error"]
    assert response.status == 500 and "old family" in error
    assert "JSON" not in error and "manifest" not in error  # no internal exception text
    assert (await client.post("/v1/colorize", data=form())).status == 200


async def test_manifest_watch_reloads_on_promotion(aiohttp_client, family_dir, backend):
    from tests.worker.conftest import build_tiny_family

    app = create_app(worker_settings(family_dir, reload_poll_s=0.05), backend=backend)
    client = await aiohttp_client(app)
    engine = app[ENGINE_KEY]
    await asyncio.sleep(0.02)
    build_tiny_family(family_dir, version=3)
    await wait_until(lambda: engine.members_info()[0]["version"] == 3)
    body = await (await client.get("/v1/family")).json()
    assert body["generation"] == 2
