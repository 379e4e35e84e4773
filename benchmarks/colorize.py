"""How fast the family colors pages on this machine, models already loaded.

    python benchmarks/colorize.py                # table on stdout
    python benchmarks/colorize.py --repeats 9 --json out.json

Reports, as medians of `--repeats` runs:
- ms per page per member (network + compositing at full size) at 512² and 1024²,
  and for the whole family (`Colorizer.colorize`, page analysis included);
- pages/s for the whole family at batch 1, 4 and 16 (512² pages);
- FLOPs per member per page (torch.utils.flop_counter, one network call) and the
  share of this machine's measured fp32 matmul FLOP/s the network call reaches.

The machine may be shared: medians, not means, and the load average is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.family import Family  # noqa: E402
from models.pipeline import ColorizeOptions, Colorizer  # noqa: E402


def lineart_page(size: int, seed: int = 0) -> Image.Image:
    """A busy coloring page: outlined ellipses, boxes and triangles."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(im)
    width = max(2, size // 256)
    for _ in range(40):
        x, y = (int(v) for v in rng.integers(0, size - size // 8, 2))
        w, h = (int(v) for v in rng.integers(size // 16, size // 3, 2))
        kind = rng.integers(3)
        if kind == 0:
            d.ellipse((x, y, x + w, y + h), outline="black", width=width)
        elif kind == 1:
            d.rectangle((x, y, x + w, y + h), outline="black", width=width)
        else:
            d.polygon([(x + w / 2, y), (x + w, y + h), (x, y + h)], outline="black", width=width)
    return im


# CPU time of this process (all its threads) per run, next to wall time: on a
# machine shared with other jobs the wall clock measures the neighbours too, while
# CPU time / threads is what the run would take alone on this many cores (an upper
# bound on the idle-machine wall time when both threads are kept busy).
def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up (allocator, oneDNN kernels)
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    wall = statistics.median(times) * 1000.0
    median_ms.last_cpu_ms = statistics.median(cpu) * 1000.0  # read right after the call
    return wall


def matmul_flops_per_s(repeats: int, n: int = 1024) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = median_ms(lambda: torch.mm(a, b), max(repeats, 5))
    return 2 * n**3 / (ms / 1000.0)


def member_flops(colorizer: Colorizer, name: str, page) -> int:
    member = colorizer.family.get(name)
    net = colorizer.family.network(name, colorizer.device)
    x = page.network_input(member.work_size)[None].to(colorizer.device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        net(x)
    return counter.get_total_flops()


def run(args: argparse.Namespace) -> dict:
    family = Family.load(args.family)
    colorizer = Colorizer(family, device=args.device)
    for name in family.names:
        family.network(name, colorizer.device)  # load once, outside the timings
    options = ColorizeOptions()
    result: dict = {
        "device": str(colorizer.device),
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
        "sizes": {},
    }
    peak = matmul_flops_per_s(args.repeats)
    result["matmul_gflops"] = peak / 1e9
    for size in args.sizes:
        image = lineart_page(size)
        page = colorizer.prepare(image, options)
        row: dict = {
            "prepare_ms": median_ms(lambda im=image: colorizer.prepare(im, options), args.repeats),
            "prepare_cpu_ms": median_ms.last_cpu_ms,
        }
        members = {}
        for name in family.names:
            member = family.get(name)
            flops = member_flops(colorizer, name, page)
            net_ms = median_ms(lambda m=member, p=page: colorizer.predict(m, [p]), args.repeats)
            net_cpu = median_ms.last_cpu_ms
            total_ms = median_ms(lambda n=name, p=page: colorizer.run_member(n, [p]), args.repeats)
            members[name] = {
                "ms": total_ms,
                "cpu_ms": median_ms.last_cpu_ms,
                "network_ms": net_ms,
                "network_cpu_ms": net_cpu,
                "gflops": flops / 1e9,
                "achieved_gflops": flops / (net_ms / 1000.0) / 1e9,
                "share_of_matmul": flops / (net_ms / 1000.0) / peak,
            }
        row["members"] = members
        row["family_ms"] = median_ms(lambda im=image: colorizer.colorize([im], options=options),
                                     args.repeats)
        row["family_cpu_ms"] = median_ms.last_cpu_ms
        result["sizes"][size] = row
    throughput = {}
    image = lineart_page(args.batch_size_page)
    for batch in args.batches:
        images = [image] * batch
        ms = median_ms(lambda imgs=images: colorizer.colorize(imgs, options=options),
                       max(1, args.repeats // (3 if batch > 4 else 1)))
        throughput[batch] = {
            "pages_per_s": batch / (ms / 1000.0),
            "pages_per_cpu_s": batch / (median_ms.last_cpu_ms / 1000.0),
        }
    result["pages_per_s"] = {"page_size": args.batch_size_page, "by_batch": throughput}
    result["load_average_after"] = os.getloadavg()
    return result


def print_table(r: dict) -> None:
    print(
        f"device {r['device']}, {r['torch_threads']} torch threads, {r['cpus']} CPUs, "
        f"load average {r['load_average'][0]:.1f} -> {r['load_average_after'][0]:.1f}, "
        f"median of {r['repeats']} runs"
    )
    print(f"measured fp32 matmul: {r['matmul_gflops']:.1f} GFLOP/s\n")
    print(f"{'size':>6} {'member':<10} {'ms/page':>9} {'cpu ms':>8} {'net ms':>8} "
          f"{'net cpu':>8} {'GFLOP':>7} {'GFLOP/s':>8} {'of matmul':>9}")
    for size, row in r["sizes"].items():
        for name, m in row["members"].items():
            print(f"{size:>6} {name:<10} {m['ms']:>9.1f} {m['cpu_ms']:>8.1f} "
                  f"{m['network_ms']:>8.1f} {m['network_cpu_ms']:>8.1f} {m['gflops']:>7.2f} "
                  f"{m['achieved_gflops']:>8.1f} {m['share_of_matmul']:>8.0%}")
        print(f"{size:>6} {'prepare':<10} {row['prepare_ms']:>9.1f} {row['prepare_cpu_ms']:>8.1f}")
        print(f"{size:>6} {'FAMILY':<10} {row['family_ms']:>9.1f} {row['family_cpu_ms']:>8.1f}"
              "   (prepare + all members)\n")
    tp = r["pages_per_s"]
    print(f"whole family, {tp['page_size']}² pages (wall; per CPU-second):")
    for batch, t in tp["by_batch"].items():
        print(f"  batch {batch:>2}: {t['pages_per_s']:6.2f} pages/s   "
              f"{t['pages_per_cpu_s']:6.2f} pages per CPU-s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark the colorizing pipeline.")
    parser.add_argument("--family", default=None)
    parser.add_argument("--device", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--batch-size-page", type=int, default=512)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    parser.add_argument(
        "--threads", type=int, default=0,
        help="torch threads (0: torch's default). On an oversubscribed machine use 1: "
        "OpenMP workers spin while their partner thread is descheduled",
    )
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    with torch.inference_mode():
        result = run(args)
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
