"""Peak memory (VmHWM) of a worker process coloring big pages with the whole family.

Each case starts a fresh CPU worker (`python -m models.worker`, default settings: the
page pixel budget, admission by pixels), waits for /readyz, sends the case's page(s)
over HTTP, and reads the worker's VmHWM from /proc/<pid>/status before stopping it:

    one 39.9 MP page, one 12 MP page, one 1024 x 1024 page, and 4 concurrent 39.9 MP pages

Targets (issue "Hardening"): <= 1.5 GB per single page, <= 3 GB for the 4 concurrent
ones. Also reports the worker's VmHWM right after loading the family (no page yet),
the wall time of each case and the size the coloring came back at.

    .venv/bin/python benchmarks/memory.py                 # writes benchmarks/results/memory.json
    .venv/bin/python benchmarks/memory.py --cases 1mp 12mp

Heavy (a few minutes on 2 CPU cores): run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.worker import wait_ready  # noqa: E402

CASES = {
    "1mp": [(1024, 1024)],
    "12mp": [(4000, 3000)],
    "40mp": [(7300, 5466)],  # 39.9 MP: just under load_page's 40 MP limit
    "40mp-x4": [(7300, 5466)] * 4,
}
TARGET_BYTES = {"1mp": 1.5e9, "12mp": 1.5e9, "40mp": 1.5e9, "40mp-x4": 3e9}


def line_art(width: int, height: int, seed: int = 0) -> bytes:
    """A coloring page (black outlines on white) of any size, as a (small) PNG."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    line = max(2, min(width, height) // 300)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(min(width, height) // 20, min(width, height) // 4))
        draw.ellipse((x - r, y - r, x + r, y + r), outline=0, width=line)
    for _ in range(20):
        draw.line([tuple(int(v) for v in rng.integers(0, (width, height))) for _ in range(2)],
                  fill=0, width=line)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vm_hwm(pid: int) -> int:
    """Peak resident set size of `pid`, bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


async def colorize(url: str, page: bytes, timeout: float) -> dict:
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("image", page, filename="page.png", content_type="image/png")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.post(url + "/v1/colorize", data=data) as response:
            body = await response.json()
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {body.get('error')}")
            return body


def run_case(name: str, pages: list[bytes], family: str, timeout: float) -> dict:
    from PIL import Image

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "models.worker", "--port", str(port)]
    if family:
        command += ["--family", family]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        asyncio.run(wait_ready(url, process))  # benchmarks/worker.py's
        loaded = vm_hwm(process.pid)
        started = time.perf_counter()

        async def all_pages() -> list[dict]:
            return await asyncio.gather(*(colorize(url, p, timeout) for p in pages))

        bodies = asyncio.run(all_pages())
        seconds = time.perf_counter() - started
        peak = vm_hwm(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    first = bodies[0]
    coloring = Image.open(io.BytesIO(base64.b64decode(first["colorings"][0]["png_base64"])))
    page = first["page"]
    return {
        "case": name,
        "pages": len(pages),
        "page_size": [page.get("original_width", page["width"]),
                      page.get("original_height", page["height"])],
        "colored_size": list(coloring.size),
        "members": [c["member"] for c in first["colorings"]],
        "vm_hwm_after_load_bytes": loaded,
        "vm_hwm_bytes": peak,
        "target_bytes": TARGET_BYTES[name],
        "within_target": peak <= TARGET_BYTES[name],
        "seconds": round(seconds, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--family", default="", help="family folder (default: bundled)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/memory.json")
    args = parser.parse_args()

    results = []
    cache: dict[tuple[int, int], bytes] = {}
    for name in args.cases:
        pages = [cache.setdefault(size, line_art(*size)) for size in CASES[name]]
        result = run_case(name, pages, args.family, args.timeout)
        results.append(result)
        print(f"{name:8s} {result['pages']} x {result['page_size'][0]}x{result['page_size'][1]}"
              f" -> colored at {result['colored_size'][0]}x{result['colored_size'][1]}: "
              f"VmHWM {result['vm_hwm_bytes'] / 1e9:.2f} GB (after load "
              f"{result['vm_hwm_after_load_bytes'] / 1e9:.2f} GB, target "
              f"{result['target_bytes'] / 1e9:.1f} GB) in {result['seconds']} s", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }, indent=2) + "\n")
    return 0 if all(r["within_target"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
