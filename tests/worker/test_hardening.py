"""The worker's trust boundary and bounds: tokens, timeouts, malformed bodies, broken
members, the page pixel budget."""

from __future__ import annotations

import asyncio
import base64
import io
import time

import pytest
from PIL import Image

from models.worker.app import ENGINE_KEY, create_app, server_options
from models.worker.settings import InsecureSettings, WorkerSettings, is_loopback
from tests.worker.conftest import page_png
from tests.worker.test_app import form, worker_settings


async def test_colorize_needs_the_token_when_one_is_set(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(
        create_app(worker_settings(family_dir, token="s3cret"), backend=backend))
    assert (await client.post("/v1/colorize", data=form())).status == 401
    wrong = {"Authorization": "Bearer nope"}
    response = await client.post("/v1/colorize", data=form(), headers=wrong)
    assert response.status == 401 and "s3cret" not in await response.text()
    right = {"Authorization": "Bearer s3cret"}
    assert (await client.post("/v1/colorize", data=form(), headers=right)).status == 200
    assert (await client.get("/readyz")).status == 200  # probes stay open


async def test_admin_without_a_configured_token_is_401(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/admin/reload")
    assert response.status == 401
    response = await client.post("/v1/admin/reload", headers={"Authorization": "Bearer "})
    assert response.status == 401
    assert backend.loads == 1  # nothing reloaded


async def test_admin_with_a_wrong_token_is_401(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(
        create_app(worker_settings(family_dir, admin_token="adm"), backend=backend))
    assert (await client.post("/v1/admin/reload",
                              headers={"Authorization": "Bearer adm2"})).status == 401
    assert (await client.post("/v1/admin/reload",
                              headers={"Authorization": "Bearer adm"})).status == 200


def test_loopback_is_the_default_and_other_addresses_need_a_token():
    assert WorkerSettings().host == "127.0.0.1"
    WorkerSettings().check_exposure()
    for host in ("127.0.0.1", "::1", "localhost"):
        assert is_loopback(host)
    for host in ("0.0.0.0", "::", "", "10.0.0.5", "worker"):
        assert not is_loopback(host)
        with pytest.raises(InsecureSettings):
            WorkerSettings(host=host).check_exposure()
        WorkerSettings(host=host, token="t").check_exposure()


def test_worker_command_refuses_a_public_address_without_token(capsys, monkeypatch):
    from models.worker.__main__ import main

    monkeypatch.delenv("COLORBOT_WORKER_TOKEN", raising=False)
    assert main(["--host", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "COLORBOT_WORKER_TOKEN" in err and "Traceback" not in err and err.count("\n") == 1


def test_tokens_stay_out_of_repr():
    text = repr(WorkerSettings(token="tok-123", admin_token="adm-456"))
    assert "tok-123" not in text and "adm-456" not in text


async def _raw(server, payload_parts: list[bytes], pause: float) -> tuple[bytes, float]:
    """Send `payload_parts` with `pause` between them; (what came back, seconds open)."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    started = time.perf_counter()
    try:
        for part in payload_parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
            if reader.at_eof():
                break
    except (ConnectionError, OSError):
        pass
    try:
        data = await asyncio.wait_for(reader.read(), 10)
    except (ConnectionError, OSError):
        data = b""
    writer.close()
    return data, time.perf_counter() - started


async def test_a_client_trickling_headers_is_cut_off(aiohttp_server, family_dir, backend):
    settings = worker_settings(family_dir, header_timeout_s=0.5)
    server = await aiohttp_server(create_app(settings, backend=backend), **server_options(settings))
    header = b"POST /v1/colorize HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 60
    # One byte every 50 ms would take 5 s; the worker closes the connection after 0.5 s.
    data, seconds = await _raw(server, [bytes([b]) for b in header], 0.05)
    assert seconds < 3.0
    assert b"200 OK" not in data


async def test_a_client_trickling_the_body_gets_408(aiohttp_server, family_dir, backend):
    settings = worker_settings(family_dir, body_timeout_s=0.5)
    server = await aiohttp_server(create_app(settings, backend=backend), **server_options(settings))
    body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"p.png\"\r\n\r\n"
            + page_png() + b"\r\n--b--\r\n")
    head = (b"POST /v1/colorize HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Type: multipart/form-data; boundary=b\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n")
    chunks = [head] + [body[i:i + 20] for i in range(0, len(body), 20)]
    data, seconds = await _raw(server, chunks, 0.05)
    assert seconds < 4.0
    assert b" 408 " in data.split(b"\r\n", 1)[0]


MALFORMED_BODIES = {
    "no boundary": ("multipart/form-data", b"--b\r\n\r\nxx\r\n--b--\r\n"),
    "garbage": ("multipart/form-data; boundary=b", b"\x00\xff garbage that is no multipart"),
    "cut off": ("multipart/form-data; boundary=b",
                b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\n\x89PNG"),
    "bad part headers": ("multipart/form-data; boundary=b",
                         b"--b\r\nno colon here\r\n\r\nxx\r\n--b--\r\n"),
    "bad encoding": ("multipart/form-data; boundary=b",
                     b"--b\r\nContent-Disposition: form-data; name=\"image\"\r\n"
                     b"Content-Transfer-Encoding: rot13\r\n\r\nxx\r\n--b--\r\n"),
    "empty": ("multipart/form-data; boundary=b", b""),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_BODIES))
async def test_malformed_multipart_is_400(aiohttp_client, family_dir, backend, case):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    content_type, body = MALFORMED_BODIES[case]
    response = await client.post("/v1/colorize", data=body,
                                 headers={"Content-Type": content_type})
    assert response.status == 400, await response.text()
    error = (await response.json())["error"]
    assert "Traceback" not in error and "Error" not in error


async def test_too_many_fields_is_400_with_the_real_limit(aiohttp_client, family_dir, backend):
    # Each known field may come once, so a flood of fields stops at the first repeat;
    # the count limit itself is checked with a limit below the five known fields.
    client = await aiohttp_client(
        create_app(worker_settings(family_dir, max_form_fields=3), backend=backend))
    response = await client.post("/v1/colorize",
                                 data=form(members="openmoji", kind="auto", fill="auto"))
    assert response.status == 400
    error = (await response.json())["error"]
    assert "limit is 3" in error and "MB" not in error
    data = form()
    for _ in range(1200):  # beyond aiohttp's own 1,000-field limit
        data.add_field("kind", "auto", content_type="text/plain")
    response = await client.post("/v1/colorize", data=data)
    assert response.status == 400 and "MB" not in (await response.json())["error"]


async def test_unknown_field_is_refused_by_name(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    response = await client.post("/v1/colorize", data=form(member="openmoji"))
    assert response.status == 400
    assert "'member'" in (await response.json())["error"]


async def test_oversized_body_says_the_real_limit(aiohttp_client, family_dir, backend):
    settings = worker_settings(family_dir, max_request_bytes=64 * 1024)
    client = await aiohttp_client(create_app(settings, backend=backend))
    response = await client.post("/v1/colorize", data=form(image=b"\x89PNG" + b"0" * 200_000))
    assert response.status == 413
    assert "0.0625 MB" in (await response.json())["error"]


def _truncate_weights(family_dir, member: str, version: int = 1) -> None:
    weights = family_dir / f"{member}-v{version}.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


async def test_a_broken_member_gives_degraded_service(aiohttp_client, family_dir, backend):
    _truncate_weights(family_dir, "fluent")
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 200 and body["status"] == "degraded"
    assert list(body["broken"]) == ["fluent"]
    response = await client.post("/v1/colorize", data=form())
    assert response.status == 200
    assert [c["member"] for c in (await response.json())["colorings"]] == ["openmoji"]
    response = await client.post("/v1/colorize", data=form(members="fluent"))
    assert response.status == 503  # another worker may have it: the client retries there


async def test_a_healthy_family_is_ready_ok(aiohttp_client, family_dir, backend):
    client = await aiohttp_client(create_app(worker_settings(family_dir), backend=backend))
    body = await (await client.get("/readyz")).json()
    assert body["status"] == "ok" and body["broken"] == {}


async def test_a_family_where_nothing_loads_fails_to_start(family_dir, backend):
    from models.worker.engine import Engine

    _truncate_weights(family_dir, "fluent")
    _truncate_weights(family_dir, "openmoji")
    engine = Engine(worker_settings(family_dir), backend)
    with pytest.raises(RuntimeError, match="no member"):
        await engine.start()


async def test_a_big_page_is_colored_at_the_pixel_budget(aiohttp_client, family_dir, backend):
    settings = worker_settings(family_dir, max_page_pixels=40 * 30)
    client = await aiohttp_client(create_app(settings, backend=backend))
    response = await client.post("/v1/colorize", data=form(image=page_png(400, 300)))
    body = await response.json()
    assert body["page"]["original_width"] == 400 and body["page"]["original_height"] == 300
    for coloring in body["colorings"]:
        image = Image.open(io.BytesIO(base64.b64decode(coloring["png_base64"])))
        assert image.width * image.height <= 40 * 30
        assert abs(image.width / image.height - 4 / 3) < 0.05


async def test_admission_counts_pixels_not_pages(aiohttp_client, family_dir, backend):
    pixels = 48 * 40
    settings = worker_settings(family_dir, max_page_pixels=pixels, max_pixels_in_flight=pixels,
                               max_wait_ms=1.0)
    app = create_app(settings, backend=backend)
    client = await aiohttp_client(app)
    engine = app[ENGINE_KEY]
    backend.gate.clear()
    first = asyncio.create_task(client.post("/v1/colorize", data=form(members="openmoji")))
    await asyncio.to_thread(backend.batch_started.wait, 10)
    second = asyncio.create_task(client.post("/v1/colorize", data=form(members="openmoji")))
    deadline = time.perf_counter() + 5
    while engine.pixels.waiting == 0 and time.perf_counter() < deadline:
        await asyncio.sleep(0.01)
    assert engine.pixels.used == pixels and engine.pixels.waiting == pixels
    backend.gate.set()
    assert (await first).status == 200 and (await second).status == 200
    assert backend.batch_sizes("openmoji") == [1, 1]  # one page's pixels at a time
    assert engine.pixels.used == 0


async def test_pixel_waiting_room_is_bounded(family_dir, backend):
    from models.worker.engine import PixelBudget, QueueFull

    budget = PixelBudget(100, 150)
    assert await budget.acquire(100) == 100
    waiter = asyncio.create_task(budget.acquire(100))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await budget.acquire(100)
    budget.release(100)
    assert await waiter == 100 and budget.used == 100


async def test_a_reload_that_breaks_a_member_keeps_the_old_family(aiohttp_client, family_dir,
                                                                  backend):
    from tests.worker.conftest import build_tiny_family

    app = create_app(worker_settings(family_dir, admin_token="adm"), backend=backend)
    client = await aiohttp_client(app)
    build_tiny_family(family_dir, version=2)
    _truncate_weights(family_dir, "fluent", version=2)
    response = await client.post("/v1/admin/reload", headers={"Authorization": "Bearer adm"})
    assert response.status == 500
    assert app[ENGINE_KEY].generation == 1
    body = await (await client.post("/v1/colorize", data=form())).json()
    assert [(c["member"], c["version"]) for c in body["colorings"]] == [
        ("openmoji", 1), ("fluent", 1)]
