"""A member's memory: the pictures it grew up on, recalled by what the page draws.

Recognising the drawing is worth more than brute-force training (measured: the true
colors of look-alike training pages beat a network trained for half an hour, and the
same emoji drawn by another set beats both). So each member keeps a memory of its own
collection — that is its point of view — and colors a region partly from what the
remembered pictures of the same thing had there:

- **recall key** of a page (`RecallKey`, computed once per page): its ink inside the
  square frame around the drawing (`models/shape.py`), so drawings of any size and
  position on the sheet line up;
- **key** of a remembered page: the shape embedding of that view (a learned encoder
  that maps the same thing drawn by different hands close together, stored in the
  memory file so keys and queries always agree); a memory without an encoder falls
  back to the blurred ink layout (`layout_descriptor`);
- **recall**: the `k` most alike remembered pages, weighted by softmax(similarity / T);
- **vote per region**: each recalled picture's a/b cell under each of the region's
  working-resolution pixels, both seen in their ink frames; the region's histogram over
  cells is the memory's opinion, which the decoder adds to the network's
  (`models.decoder`).

A member recalls from its own memory first and from the **family's shared memory**
second (`MemberMemory`): the same emoji drawn by many sets (other members' and sets no
member grew up on), the way the shared base network gives every member what its own few
thousand pictures cannot. Its own pictures get a similarity bonus (`OWN_BONUS`), so
where it knows the thing it colors it its own way; the shared rows of a collection it
remembers itself are skipped.

The memory also knows how light each remembered color was (`light`): a/b alone makes a
brown and a tan one color, and a network's lightness regression lands between a dark
thing and the paper. The decoder reads the recalled lightness of the color it chose for
a region (`models.decoder.recalled_lightness`).

Stored as one safetensors file per memory: `keys` (N, D) int8, `cells` (N, SIDE, SIDE)
uint8 (the a/b cell of the true color in the ink frame), `light` (N, LIGHT_SIDE,
LIGHT_SIDE) uint8 (its L* x 2.55, 2x2 means; absent in files written before it),
`origin` (N,) uint8 (which of the `collections` in the metadata each page came from)
and the encoder's weights (`encoder.*`); `bins`, `temperature` and the encoder config in
metadata.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from models.shape import VIEW, Frame, ShapeConfig, ShapeEncoder, crop_frame, ink_frame, ink_view

log = logging.getLogger(__name__)

SIDE = 32  # color-map side (and the layout descriptor's)
LIGHT_SIDE = SIDE // 2  # lightness-map side: L is smooth, and 2x2 averaging measured no
# worse than the full grid on noto val (a quarter of the bytes)
FORMAT = "ink-frame-1"  # memory files of an older layout are not read (re-export)
LAYOUT_TEMPERATURE = 0.05
EMBEDDING_TEMPERATURE = 0.05
# Cosine similarity added to a member's own pictures when it recalls beside the family's
# shared memory: its own drawing of a thing wins over a slightly closer stranger's.
OWN_BONUS = 0.05


class MemoryFormatError(ValueError):
    """A memory file this version cannot read (written by an older colorbot)."""


@dataclass(frozen=True)
class RecallKey:
    """What a page shows a memory: its ink view in its ink frame, and the page size."""

    view: np.ndarray  # (VIEW, VIEW) float32 ink in [0, 1]
    frame: Frame
    height: int
    width: int
    # The view's embedding per encoder (by weights digest): members whose memories carry
    # the same encoder embed the page once, not once each.
    embeddings: dict[str, torch.Tensor] = field(default_factory=dict, compare=False,
                                                repr=False)


def recall_key(lightness: np.ndarray) -> RecallKey:
    """The recall key of a page, from its L (H, W) in [0, 100]."""
    frame = ink_frame(lightness)
    h, w = lightness.shape
    return RecallKey(ink_view(lightness, frame), frame, h, w)


def layout_descriptor(view: np.ndarray) -> np.ndarray:
    """(SIDE*SIDE,) unit vector of an ink view's layout: blurred, squeezed, centered."""
    small = torch.nn.functional.adaptive_avg_pool2d(
        torch.from_numpy(np.ascontiguousarray(view, dtype=np.float32))[None, None],
        (SIDE * 2, SIDE * 2))[0, 0].numpy()
    small = ndimage.gaussian_filter(small, 1.5)
    small = small.reshape(SIDE, 2, SIDE, 2).mean(axis=(1, 3)).reshape(-1)
    small = small - small.mean()
    norm = float(np.linalg.norm(small))
    unit: np.ndarray = (small / norm if norm > 1e-6 else small).astype(np.float32)
    return unit


@dataclass
class ColorMemory:
    keys: torch.Tensor  # (N, D) float32 unit rows
    cells: torch.Tensor  # (N, SIDE, SIDE) uint8: a/b cell of each remembered color map
    bins: int  # a/b cells per axis (the member's grid)
    encoder: ShapeEncoder | None = None  # None: keys are layout descriptors
    temperature: float = LAYOUT_TEMPERATURE
    collections: tuple[str, ...] = ()  # the collections remembered
    origin: torch.Tensor | None = None  # (N,) uint8: each page's index in `collections`
    light: torch.Tensor | None = None  # (N, LIGHT_SIDE, LIGHT_SIDE) uint8: L* x 2.55

    def __post_init__(self) -> None:
        self._encoder_digest = ""
        if self.encoder is not None:
            digest = hashlib.sha256()
            for name, tensor in sorted(self.encoder.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().numpy().tobytes())
            self._encoder_digest = digest.hexdigest()

    @classmethod
    def load(cls, path: str | Path) -> ColorMemory:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != FORMAT:
                raise MemoryFormatError(f"{Path(path).name}: a memory of an older colorbot; "
                                        "export the member again to rebuild it")
            keys = fh.get_tensor("keys").float() / 127.0
            cells = fh.get_tensor("cells").to(torch.uint8)
            origin = fh.get_tensor("origin") if "origin" in fh.keys() else None
            light = fh.get_tensor("light").to(torch.uint8) if "light" in fh.keys() else None
            state = {k.removeprefix("encoder."): fh.get_tensor(k)
                     for k in fh.keys() if k.startswith("encoder.")}
        encoder = None
        if state:
            encoder = ShapeEncoder(ShapeConfig(**json.loads(meta["encoder"])))
            encoder.load_state_dict({k: v.float() if v.is_floating_point() else v
                                     for k, v in state.items()})
            encoder.eval()
        keys = keys / keys.norm(dim=1, keepdim=True).clamp_min(1e-6)
        default_t = EMBEDDING_TEMPERATURE if encoder is not None else LAYOUT_TEMPERATURE
        return cls(keys, cells, int(meta.get("bins", "15")), encoder,
                   float(meta.get("temperature", default_t)),
                   tuple(json.loads(meta.get("collections", "[]"))), origin, light)

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        tensors = {"keys": (self.keys * 127.0).round().clamp(-127, 127).to(torch.int8),
                   "cells": self.cells.to(torch.uint8)}
        meta = {"format": FORMAT, "bins": str(self.bins), "side": str(SIDE),
                "view": str(VIEW), "temperature": str(self.temperature),
                "collections": json.dumps(list(self.collections))}
        if self.origin is not None:
            tensors["origin"] = self.origin.to(torch.uint8)
        if self.light is not None:
            tensors["light"] = self.light.to(torch.uint8)
        if self.encoder is not None:
            for k, v in self.encoder.state_dict().items():
                tensors[f"encoder.{k}"] = v.to(torch.float16) if v.is_floating_point() else v
            meta["encoder"] = json.dumps(self.encoder.config_dict())
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=meta)
        tmp.chmod(0o644)  # a family folder is read by workers running as other users
        tmp.replace(path)

    def key_of(self, recall: RecallKey) -> torch.Tensor:
        """(D,) the memory's key for a page: its embedding, or its layout descriptor."""
        if self.encoder is None:
            return torch.from_numpy(layout_descriptor(recall.view))
        key = recall.embeddings.get(self._encoder_digest)
        if key is None:
            key = torch.from_numpy(self.encoder.embed(recall.view))
            recall.embeddings[self._encoder_digest] = key
        return key

    @property
    def encoder_digest(self) -> str:
        """Which encoder keyed this memory ("" for ink layout): memories recalled
        together must agree on it, or their similarities mean different things."""
        return self._encoder_digest

    def similarities(self, recall: RecallKey) -> torch.Tensor:
        """(N,) cosine similarity of every remembered page to the page."""
        return self.keys @ self.key_of(recall)

    def recall(self, recall: RecallKey, k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """(indices (k,), weights (k,) summing to 1) of the most alike pages."""
        sims = self.similarities(recall)
        k = min(k, sims.numel())
        top, idx = torch.topk(sims, k)
        return idx, torch.softmax(top / self.temperature, dim=0)

    def region_votes(self, recall: RecallKey, index: torch.Tensor, ids: torch.Tensor,
                     n_ids: int, shape: tuple[int, int], k: int = 8) -> torch.Tensor:
        """(n_ids, Q) share of recalled color under each region's pixels (see
        `MemberMemory.region_votes`)."""
        return MemberMemory(self).region_votes(recall, index, ids, n_ids, shape, k)


@dataclass
class MemberMemory:
    """What one member recalls from: its own memory, and the family's shared one."""

    own: ColorMemory | None
    shared: ColorMemory | None = None
    own_bonus: float = OWN_BONUS

    def __post_init__(self) -> None:
        self._skip: torch.Tensor | None = None  # shared rows the member has itself
        own, shared = self.own, self.shared
        if own is None or shared is None:
            return
        if own.encoder_digest != shared.encoder_digest or own.bins != shared.bins:
            log.warning("the family's shared memory is keyed by another shape encoder or "
                        "a/b grid than this member's own: recalling from its own only "
                        "(rebuild both with `colorbot remember`)")
            self.shared = None
            return
        mine = [i for i, name in enumerate(shared.collections) if name in own.collections]
        if mine and shared.origin is not None:
            self._skip = torch.isin(shared.origin.long(), torch.tensor(mine))

    @property
    def memories(self) -> list[ColorMemory]:
        return [m for m in (self.own, self.shared) if m is not None]

    def recall(self, recall: RecallKey, k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
        """(color maps (k', SIDE, SIDE) uint8, weights (k',) summing to 1) of the most
        alike remembered pages, own and shared together."""
        maps, _, weights = self._recall(recall, k)
        return maps, weights

    def _recall(self, recall: RecallKey, k: int
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`recall`'s color maps and weights, with the maps' L* (k', LIGHT_SIDE,
        LIGHT_SIDE) float (NaN for pages of a memory that has no lightness)."""
        sims, maps, lights = [], [], []
        for memory in self.memories:
            s = memory.similarities(recall)
            if memory is self.shared and self._skip is not None:
                s = s.masked_fill(self._skip, float("-inf"))
            elif memory is self.own and self.shared is not None:
                s = s + self.own_bonus
            top, idx = torch.topk(s, min(k, s.numel()))
            keep = torch.isfinite(top)
            sims.append(top[keep])
            maps.append(memory.cells[idx[keep]])
            if memory.light is not None:
                lights.append(memory.light[idx[keep]].float() / 2.55)
            else:
                lights.append(torch.full((len(maps[-1]), LIGHT_SIDE, LIGHT_SIDE),
                                         float("nan")))
        all_sims = torch.cat(sims)
        top, idx = torch.topk(all_sims, min(k, all_sims.numel()))
        temperature = self.memories[0].temperature
        return (torch.cat(maps)[idx], torch.cat(lights)[idx],
                torch.softmax(top / temperature, dim=0))

    def region_votes(self, recall: RecallKey, index: torch.Tensor, ids: torch.Tensor,
                     n_ids: int, shape: tuple[int, int], k: int = 8) -> torch.Tensor:
        """(n_ids, Q) share of recalled color under each region's pixels (see
        `region_recall`)."""
        return self.region_recall(recall, index, ids, n_ids, shape, k).votes

    def region_recall(self, recall: RecallKey, index: torch.Tensor, ids: torch.Tensor,
                      n_ids: int, shape: tuple[int, int], k: int = 8) -> RegionRecall:
        """What the recalled pages had under each region: the share of each a/b cell,
        and how light it was.

        `index` (N,) flat indices into the (h, w) working grid of the page, `ids` (N,)
        their regions.
        """
        h, w = shape
        bins = self.memories[0].bins if self.memories else 1
        votes = torch.zeros(n_ids, bins * bins)
        light = torch.zeros(n_ids, bins * bins)
        mass = torch.zeros(n_ids, bins * bins)
        if index.numel() == 0 or not any(m.cells.shape[0] for m in self.memories):
            return RegionRecall(votes, light, mass)
        maps, lights, weights = self._recall(recall, k)
        # Working-grid pixel centers -> page pixels -> the ink frame's SIDE x SIDE grid.
        ys = ((index // w).float() + 0.5) * (recall.height / h)
        xs = ((index % w).float() + 0.5) * (recall.width / w)
        fy, fx = recall.frame.to_frame(ys, xs)
        cy = (fy * SIDE).floor().long().clamp(0, SIDE - 1)
        cx = (fx * SIDE).floor().long().clamp(0, SIDE - 1)
        cell_at = cy * SIDE + cx  # (N,)
        light_at = (cy // 2) * LIGHT_SIDE + cx // 2
        flat = maps.reshape(len(maps), -1).long()  # (k, SIDE*SIDE)
        flat_l = lights.reshape(len(maps), -1)
        for row, row_l, weight in zip(flat, flat_l, weights, strict=True):
            at = (ids, row[cell_at])
            votes.index_put_(at, weight.expand(ids.numel()), accumulate=True)
            if not bool(torch.isnan(row_l[0])):
                mass.index_put_(at, weight.expand(ids.numel()), accumulate=True)
                light.index_put_(at, weight * row_l[light_at], accumulate=True)
        total = votes.sum(dim=1, keepdim=True).clamp_min(1e-9)
        return RegionRecall(votes / total, light / total, mass / total)


@dataclass(frozen=True)
class RegionRecall:
    """What a member's recalled pages had under each region of a page (n_ids, Q)."""

    votes: torch.Tensor  # share of the recalled pixels in each a/b cell (rows sum to 1)
    light: torch.Tensor  # share x mean L* of those pixels (0 where unknown)
    mass: torch.Tensor  # the part of `votes` whose lightness is known


def color_cells(rgb: np.ndarray, frame: Frame, bins: int) -> torch.Tensor:
    """(SIDE, SIDE) a/b cells of an RGB picture (H, W, 3) uint8 inside `frame`."""
    return color_map(rgb, frame, bins)[0]


def color_map(rgb: np.ndarray, frame: Frame, bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """((SIDE, SIDE) a/b cells, (LIGHT_SIDE, LIGHT_SIDE) uint8 L* x 2.55) of an RGB
    picture (H, W, 3) uint8 inside `frame`."""
    from models.colorspace import normalize_lab, rgb_to_lab

    t = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float() / 255.0
    small = crop_frame(t, frame, SIDE, 1.0)  # white outside the picture
    lab = rgb_to_lab(small)
    ab = normalize_lab(lab)[1:]  # (2, SIDE, SIDE) network scale
    cell = ((ab.clamp(-1.0, 1.0 - 1e-6) + 1.0) * (bins / 2.0)).long()
    light = torch.nn.functional.avg_pool2d(lab[:1], SIDE // LIGHT_SIDE)[0]
    light = (light * 2.55).round().clamp(0, 255).to(torch.uint8)
    return cell[0] * bins + cell[1], light


def build_memory(pairs: Iterable[Sequence[Any]], bins: int, encoder: ShapeEncoder | None = None,
                 temperature: float | None = None) -> ColorMemory:
    """A memory from `(page L (H, W) float, color RGB (H, W, 3) uint8)` pairs, or
    `(page L, color RGB, collection name)` triples; keys by `encoder` (the shape
    embedding) or, without one, by ink layout."""
    views, cells, lights, origin = [], [], [], []
    collections: dict[str, int] = {}
    for page_l, rgb, *named in pairs:
        key = recall_key(np.asarray(page_l, dtype=np.float32))
        views.append(key.view)
        cell, light = color_map(np.asarray(rgb), key.frame, bins)
        cells.append(cell.to(torch.uint8))
        lights.append(light)
        if named:
            origin.append(collections.setdefault(str(named[0]), len(collections)))
    if encoder is not None:
        dim = encoder.cfg.dim
        keys = encoder.embed(np.stack(views)) if views else np.zeros((0, dim), np.float32)
    else:
        keys = (np.stack([layout_descriptor(v) for v in views]) if views
                else np.zeros((0, SIDE * SIDE), np.float32))
    grid = torch.stack(cells) if cells else torch.zeros(0, SIDE, SIDE, dtype=torch.uint8)
    light = (torch.stack(lights) if lights
             else torch.zeros(0, LIGHT_SIDE, LIGHT_SIDE, dtype=torch.uint8))
    if temperature is None:
        temperature = EMBEDDING_TEMPERATURE if encoder is not None else LAYOUT_TEMPERATURE
    if len(collections) > 255:
        raise ValueError("a memory holds at most 255 collections")
    origins = torch.tensor(origin, dtype=torch.uint8) if len(origin) == len(cells) else None
    return ColorMemory(torch.from_numpy(keys), grid, bins, encoder, temperature,
                       tuple(collections), origins, light)
