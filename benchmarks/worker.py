"""Worker throughput: dynamic batching against `max_batch_size=1`.

Starts two CPU workers (`python -m models.worker`) that differ ONLY in
`--max-batch-size` (N vs 1), then, alternating between them run after run, sends
`--requests` pages from `--concurrency` concurrent clients (each client sends its next
page when the previous one is back, through `bot.worker_client.WorkerClient`) and
measures throughput (pages per second) and client-side latency (p50/p95). Prints each
run and the medians over `--runs` runs, and the mean batch size each worker saw
(from its /metrics).

    nice -n 10 .venv/bin/python benchmarks/worker.py                 # one member: openmoji
    nice -n 10 .venv/bin/python benchmarks/worker.py --members all   # the whole family

The family is the bundled one when it exists (models/family/manifest.json), else the
placeholder family's architectures with untrained weights written to a temp folder
(`models.make_placeholder_family --steps 0`): the same networks, so the same cost.
On a shared machine the figures move with everyone else's load: compare the two modes
within one invocation (they alternate), not across invocations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.worker_client import WorkerClient, WorkerError  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def family_path(arg: str | None, tmp: Path) -> tuple[Path, str]:
    if arg:
        return Path(arg), f"{arg}"
    bundled = ROOT / "models" / "family" / "manifest.json"
    if bundled.exists():
        return bundled, "bundled family (models/family)"
    from models.make_placeholder_family import make_family

    make_family(tmp / "family", steps=0)
    return tmp / "family", "placeholder architectures, untrained weights (no bundled family yet)"


def start_worker(port: int, family: Path, batch: int, args: argparse.Namespace) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "models.worker", "--host", "127.0.0.1", "--port", str(port),
        "--family", str(family), "--device", "cpu",
        "--max-batch-size", str(batch), "--max-wait-ms", str(args.max_wait_ms),
        "--max-queue-size", "256", "--reload-poll-s", "0",
        "--torch-threads", str(args.torch_threads), "--batch-threads", str(args.batch_threads),
        "--prepare-threads", str(args.prepare_threads),
    ]
    log = open(Path(tempfile.gettempdir()) / f"colorbot-bench-worker-{port}.log", "w")
    return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


async def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"worker {url} exited with {proc.returncode}; see its log")
            try:
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise SystemExit(f"worker {url} not ready after {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def load(url: str, pages: list[bytes], members: list[str] | None, requests: int,
               concurrency: int, pid: int | None = None) -> dict[str, float]:
    """`requests` pages from `concurrency` clients; throughput and latency percentiles."""
    cpu_before = cpu_seconds(pid) if pid else 0.0
    latencies: list[float] = []
    errors = 0
    remaining = iter(range(requests))
    async with WorkerClient([url], timeout=900, attempts=1) as client:

        async def one_client() -> None:
            nonlocal errors
            for index in remaining:
                started = time.perf_counter()
                try:
                    await client.colorize(pages[index % len(pages)], members=members)
                except WorkerError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=20, method="inclusive") if len(latencies) > 1 else [0]
    return {
        "throughput": len(latencies) / wall,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": cuts[18] if len(cuts) > 18 else max(latencies, default=float("nan")),
        "wall": wall,
        "errors": errors,
        # Worker CPU seconds per page: robust to other people's load, unlike wall time.
        "cpu_per_page": (cpu_seconds(pid) - cpu_before) / max(1, len(latencies)) if pid else 0,
    }


async def mean_batch_size(url: str) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as response:
        text = await response.text()
    total = sum(float(v) for v in re.findall(r"^colorbot_worker_batch_size_sum\S* (\S+)$",
                                             text, re.M))
    count = sum(float(v) for v in re.findall(r"^colorbot_worker_batch_size_count\S* (\S+)$",
                                             text, re.M))
    return total / count if count else float("nan")


def read_pages(paths: list[str]) -> list[bytes]:
    return [Path(p).read_bytes() for p in paths]


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        family, family_note = family_path(args.family, Path(tmp))
        from models.family import Family

        names = Family.load(family).names
        members = None if args.members == "all" else args.members.split(",")
        pages = read_pages(args.page)
        print(f"family: {family_note}: {', '.join(names)}")
        print(f"members per page: {'all ' + str(len(names)) if members is None else members}; "
              f"pages: {', '.join(Path(p).name for p in args.page)}")
        print(f"{args.requests} requests from {args.concurrency} concurrent clients, "
              f"{args.runs} runs per mode (alternating); max_wait_ms={args.max_wait_ms}, "
              f"torch threads={args.torch_threads or 'default'}, cpus={os.cpu_count()}, "
              f"load average at start: {os.getloadavg()[0]:.1f}")
        modes = {f"batch<={args.max_batch_size}": args.max_batch_size, "batch=1": 1}
        procs: dict[str, tuple[subprocess.Popen, str]] = {}
        try:
            for mode, batch in modes.items():
                port = free_port()
                procs[mode] = (start_worker(port, family, batch, args), f"http://127.0.0.1:{port}")
            for proc, url in procs.values():
                await wait_ready(url, proc)
                # Warm-up: every thread has run every member once at batch size > 1.
                await load(url, pages, members, args.concurrency, args.concurrency, proc.pid)
            results: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
            for run in range(args.runs):
                order = list(modes) if run % 2 == 0 else list(reversed(modes))
                for mode in order:
                    figures = await load(procs[mode][1], pages, members, args.requests,
                                         args.concurrency, procs[mode][0].pid)
                    results[mode].append(figures)
                    print(f"run {run + 1} {mode:>9}: {figures['throughput']:.2f} pages/s, "
                          f"p50 {figures['p50']:.2f} s, p95 {figures['p95']:.2f} s, "
                          f"worker CPU {figures['cpu_per_page'] * 1000:.0f} ms/page, "
                          f"errors {figures['errors']:.0f}, load {os.getloadavg()[0]:.1f}",
                          flush=True)
            print("\nmedians over runs:")
            medians = {}
            for mode in modes:
                m = {k: statistics.median(r[k] for r in results[mode])
                     for k in ("throughput", "p50", "p95", "cpu_per_page")}
                medians[mode] = m
                batch = await mean_batch_size(procs[mode][1])
                print(f"  {mode:>9}: {m['throughput']:.2f} pages/s, p50 {m['p50']:.2f} s, "
                      f"p95 {m['p95']:.2f} s, worker CPU {m['cpu_per_page'] * 1000:.0f} ms/page, "
                      f"mean batch size {batch:.2f}")
            batched, single = (medians[m] for m in modes)
            speedup = batched["throughput"] / single["throughput"]
            efficiency = single["cpu_per_page"] / batched["cpu_per_page"]
            print(f"  batching / batch 1: throughput {speedup:.2f}x, "
                  f"pages per worker CPU second {efficiency:.2f}x")
        finally:
            for proc, _ in procs.values():
                proc.send_signal(signal.SIGTERM)
            for proc, _ in procs.values():
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", help="family manifest or folder (default: bundled)")
    parser.add_argument("--members", default="openmoji",
                        help="comma list of members per page, or 'all' (default: openmoji)")
    parser.add_argument("--page", nargs="+",
                        default=[str(ROOT / "examples" / "house.png")],
                        help="page files, used in turn (default: examples/house.png)")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-batch-size", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=20.0)
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="worker torch intra-op threads (0: the worker's default, 1 on CPU)")
    parser.add_argument("--batch-threads", type=int, default=0)
    parser.add_argument("--prepare-threads", type=int, default=0)
    args = parser.parse_args()
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
