"""Does a member's memory recall the same thing? Shape embedding vs ink layout.

For each query page (a collection's pages, e.g. the held-out fxemoji) whose thing the
memory's collection also draws (matched by name), is the nearest remembered page the
same thing (top-1), or among the nearest five (top-5)? Keys: the blurred ink layout
(the memory's old key) and the shape embedding (`training/base/shape.safetensors` or
--encoder).

    .venv/bin/python benchmarks/recall.py --query DATASETS/fxemoji --query-split all \\
        --memory DATASETS/openmoji --cache-dir CACHE
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.memory import layout_descriptor  # noqa: E402
from training.memory import SHAPE_ENCODER  # noqa: E402
from training.shape import load_encoder, load_views  # noqa: E402


def recall_figures(q_keys, q_names, m_keys, m_names) -> dict:
    known = set(m_names)
    rows = [i for i, n in enumerate(q_names) if n in known]
    if not rows:
        return {"queries": 0}
    sims = q_keys[rows] @ m_keys.T
    top = np.argsort(-sims, axis=1)[:, :5]
    hit1 = [m_names[t[0]] == q_names[i] for i, t in zip(rows, top, strict=True)]
    hit5 = [any(m_names[j] == q_names[i] for j in t) for i, t in zip(rows, top, strict=True)]
    return {"queries": len(rows), "top1": round(float(np.mean(hit1)), 3),
            "top5": round(float(np.mean(hit5)), 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--query", required=True)
    ap.add_argument("--query-split", default="all", help="train|val|test|all")
    ap.add_argument("--memory", required=True, help="dataset(s) remembered (train split)")
    ap.add_argument("--encoder", type=Path, default=SHAPE_ENCODER)
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    splits = ["train", "val", "test"] if args.query_split == "all" else [args.query_split]
    q_views, q_names = [], []
    for split in splits:
        v, n, _ = load_views([args.query], split, cache_dir=args.cache_dir)
        q_views.append(v)
        q_names += n
    qv = np.concatenate(q_views).astype(np.float32) / 255.0
    mv, m_names = [], []
    for folder in args.memory.split(","):
        v, n, _ = load_views([folder], "train", cache_dir=args.cache_dir)
        mv.append(v)
        m_names += n
    mvf = np.concatenate(mv).astype(np.float32) / 255.0
    out = {"query": args.query, "memory": args.memory, "pages": [len(qv), len(mvf)]}
    out["layout"] = recall_figures(np.stack([layout_descriptor(v) for v in qv]), q_names,
                                   np.stack([layout_descriptor(v) for v in mvf]), m_names)
    if args.encoder.exists():
        enc = load_encoder(args.encoder)
        out["embedding"] = recall_figures(enc.embed(qv), q_names, enc.embed(mvf), m_names)
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
