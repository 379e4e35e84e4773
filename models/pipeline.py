"""Batched colorizing: pages in, one coloring per family member out.

The work is split so a server can batch it (see NOTES.md, "Colorizing"):

- `Colorizer.prepare(image, options)` does the per-page CPU analysis once — page
  lightness, page kind, the regions inside the lines, the network input at each
  working resolution — and returns a `PreparedPage` every member reuses;
- `Colorizer.run_member(name, pages)` runs ONE network call for many pages (each
  page's L resized to the member's working size, padded to a common size, run,
  cropped back) and composites every prediction at the page's full size;
- `Colorizer.colorize(images, members, options)` does both for a list of images.

Compositing (why: DESIGN.md):
- line art: the member predicts full LAB; `L_out = min(L_page, L_pred)` keeps the
  page's own full-resolution lines, and with `fill` each region enclosed by lines
  takes one color (the median prediction over the region);
- photos: the page's own L, the predicted a/b (a 3-channel member's a/b too);
- `strength` multiplies chroma; every color is pulled back into sRGB along its own
  hue (`scale_chroma`), never clipped per channel.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from models.colorspace import in_gamut, keep_lines, lab_to_rgb, normalize_l, scale_chroma
from models.decoder import (
    MEMBER_SETTINGS,
    DecoderOptions,
    adjusted_scores,
    choose_cells,
    penalize_gray,
    recalled_lightness,
    region_confidence,
    region_log_scores,
    with_memory,
)
from models.family import Family
from models.images import page_lightness
from models.memory import (
    ColorMemory,
    MemberMemory,
    MemoryFormatError,
    RecallKey,
    recall_key,
)
from models.options import KINDS, MAX_STRENGTH, resolve_device
from models.pagekind import PageKind, detect_page_kind, paper_level
from models.regions import (
    INK_LEVEL,
    Regions,
    RegionSamples,
    find_regions,
    ink_threshold,
    line_level,
    region_adjacency,
    region_medians,
    region_samples,
)
from models.registry import FamilyMember
from models.unet import UNet

# Lines darker than this are never lightened by paper leveling.
_LINE_LEVEL = 30.0
# Lines stay visible: a fill is never darker than the page's ink plus this much L. The
# fill is lightened (not the line darkened): the page's own lines are what the person
# drew, and a light pencil line keeps its look under a lighter fill...
LINE_CONTRAST = 25.0
# ...down to lines this light (L*). Lighter (pencil) lines would push every fill to
# near white, so there the line is darkened instead: the page's tones are stretched
# from the paper so that its line level (`regions.line_level`) lands here, and fills
# keep their colors (floor about PENCIL_LINE + LINE_CONTRAST).
PENCIL_LINE = 50.0
# The stretch is at most this strong (lines fainter than L 80 are barely there).
_MAX_PENCIL_GAIN = 2.5
# The paper around a drawing takes a color only when the member is this sure of it.
_SURE_OF_BACKGROUND = 0.7
# A decoded region this light (L) and this gray (chroma) is paper: it is drawn white.
_PAPER_L = 85.0
_PAPER_CHROMA = 6.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColorizeOptions:
    strength: float = 1.0  # chroma multiplier; 0 gives a gray page, 1 the prediction as is
    fill: bool | None = None  # one color per region enclosed by lines; None: on for line art
    kind: str = "auto"  # "auto" | "lineart" | "photo"
    seed: int | None = None  # None: the member's most likely coloring; an int: another
    # plausible one (the same for the same seed), "another try"
    decoder: str = "regions"  # line-art fill: "regions" (models/decoder.py) or "median"
    # (each region's median of the per-pixel annealed means: the old way, for comparison)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be auto, lineart or photo, not {self.kind!r}")
        if self.decoder not in ("regions", "median"):
            raise ValueError(f"decoder must be regions or median, not {self.decoder!r}")
        if not 0.0 <= float(self.strength) <= MAX_STRENGTH:
            raise ValueError(f"strength must be between 0 and {MAX_STRENGTH:g}")


@dataclass(frozen=True)
class FillPixels:
    """Flat pixel indices a filled line-art page colors one by one (`_composite_filled`),
    found once per page and working shape, not once per member."""

    own: torch.Tensor  # (N,) pixels of regions too small to be sampled: per-pixel color
    dark: torch.Tensor  # (M,) the other pixels darker than white paper (L < 100): only
    # these can be darker than their region's fill (a fill is never lighter than 100)
    dark_l: torch.Tensor  # (M,) their page L
    dark_ids: torch.Tensor  # (M,) their region


@dataclass
class PreparedPage:
    """One page analysed once, ready for any member (CPU tensors only)."""

    width: int
    height: int
    kind: str  # the kind colored as: detected, or the override
    detected: PageKind  # what detection saw (always run: it is cheap and worth logging)
    strength: float
    fill: bool  # region fill in effect (line art only)
    lightness: torch.Tensor  # (H, W) page L in [0, 100]; paper leveled to white for line art
    regions: Regions | None  # line art with fill only
    assigned: torch.Tensor | None  # (H, W) int64 region id of every pixel (from regions)
    ink: float = 0.0  # lightness of the page's lines (median over line pixels); line art
    recall: RecallKey | None = None  # what the page shows members' memories (models/memory.py)
    seed: int | None = None  # decoder seed (ColorizeOptions.seed)
    decoder: str = "regions"  # ColorizeOptions.decoder
    _neighbours: list[set[int]] | None = field(default=None, repr=False)
    _background: torch.Tensor | None = field(default=None, repr=False)
    _inputs: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)
    _samples: dict[tuple[int, int], RegionSamples] = field(default_factory=dict, repr=False)
    _pixels: dict[tuple[int, int], FillPixels] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def work_shape(self, work_size: int) -> tuple[int, int]:
        """(h, w) of the page with its long side at `work_size`."""
        scale = work_size / max(self.width, self.height)
        return max(1, round(self.height * scale)), max(1, round(self.width * scale))

    def network_input(self, work_size: int) -> torch.Tensor:
        """(1, h, w) page L in network scale at the member's working resolution."""
        with self._lock:
            x = self._inputs.get(work_size)
            if x is None:
                h, w = self.work_shape(work_size)
                small = F.interpolate(
                    self.lightness[None, None], size=(h, w), mode="bilinear",
                    align_corners=False, antialias=True,
                )[0]
                x = normalize_l(small).clamp(-1.0, 1.0).contiguous()
                self._inputs[work_size] = x
            return x

    def samples(self, shape: tuple[int, int]) -> RegionSamples:
        assert self.regions is not None
        with self._lock:
            s = self._samples.get(shape)
            if s is None:
                s = region_samples(self.regions, shape)
                self._samples[shape] = s
            return s

    def fill_pixels(self, shape: tuple[int, int]) -> FillPixels:
        """The pixels a fill at working shape `shape` may have to color one by one."""
        assert self.regions is not None and self.assigned is not None
        samples = self.samples(shape)
        with self._lock:
            pixels = self._pixels.get(shape)
            if pixels is None:
                flat = self.assigned.reshape(-1)
                own = ~torch.index_select(samples.counts > 0, 0, flat)
                dark = (self.lightness.reshape(-1) < 100.0) & ~own
                index = torch.nonzero(dark).squeeze(1)
                pixels = FillPixels(
                    own=torch.nonzero(own).squeeze(1),
                    dark=index,
                    dark_l=torch.index_select(self.lightness.reshape(-1), 0, index),
                    dark_ids=torch.index_select(flat, 0, index),
                )
                self._pixels[shape] = pixels
            return pixels

    @property
    def min_fill_l(self) -> float:
        """The darkest fill lightness that keeps this page's lines visible."""
        return min(100.0, self.ink + LINE_CONTRAST) if self.kind == "lineart" else 0.0

    def background(self) -> torch.Tensor:
        """(K+1,) bool: the paper around the drawing, by region id.

        The regions touching the page's border that each cover at least 2 % of it: the
        page's own paper (or paper joined to a drawing through a gap in its lines).
        Paper stays white unless a member is sure of a color there.
        """
        assert self.regions is not None
        with self._lock:
            if self._background is None:
                labels = self.regions.labels
                edge = np.concatenate((labels[0], labels[-1], labels[:, 0], labels[:, -1]))
                area = np.bincount(labels.reshape(-1), minlength=self.regions.count + 1)
                big = area >= 0.02 * labels.size
                mask = np.zeros(self.regions.count + 1, dtype=bool)
                border = np.unique(edge[edge > 0])
                mask[border] = big[border]
                self._background = torch.from_numpy(mask)
            return self._background

    def neighbours(self) -> list[set[int]]:
        """Which regions touch each other (computed once, for the decoder)."""
        assert self.regions is not None
        with self._lock:
            if self._neighbours is None:
                self._neighbours = region_adjacency(self.regions.assigned, self.regions.count)
            return self._neighbours

    def info(self) -> dict[str, Any]:
        """What the analysis found, for logs and API responses."""
        return {
            "width": self.width,
            "height": self.height,
            "kind": self.kind,
            "detected_kind": self.detected.kind,
            "fill": self.fill,
            "strength": self.strength,
            "regions": self.regions.count if self.regions is not None else 0,
            "paper": round(self.detected.paper, 1),
            "white_share": round(self.detected.white_share, 3),
            "smooth_midtone_share": round(self.detected.smooth_midtone_share, 3),
            "edge_share": round(self.detected.edge_share, 3),
        }


def fuse_batchnorm(net: nn.Module) -> nn.Module:
    """An inference copy of `net` with every BatchNorm folded into the conv before it.

    Eval-mode BatchNorm is an affine map per channel, so it folds exactly into the
    preceding convolution's weights and bias; on CPU that saves a full pass over every
    activation (~15% of a small U-Net's time). The original network is untouched.
    """
    fused = copy.deepcopy(net).eval()
    for module in fused.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(bn, nn.BatchNorm2d) and isinstance(conv, nn.Conv2d | nn.ConvTranspose2d):
                transpose = isinstance(conv, nn.ConvTranspose2d)
                setattr(module, name, fuse_conv_bn_eval(conv, bn, transpose=transpose))
                setattr(module, bn_name, nn.Identity())
    return fused


def level_paper(lightness: np.ndarray, paper: float) -> np.ndarray:
    """Stretch a gray scan's paper to white, leaving lines (L <= 30) exactly as they are."""
    if paper >= 97.0 or paper <= _LINE_LEVEL + 5.0:
        return lightness
    span = (100.0 - _LINE_LEVEL) / (paper - _LINE_LEVEL)
    stretched = _LINE_LEVEL + (lightness - _LINE_LEVEL) * span
    return np.where(lightness <= _LINE_LEVEL, lightness, np.minimum(stretched, 100.0)).astype(
        np.float32
    )


def darken_pencil(
    lightness: np.ndarray, level: float | None
) -> tuple[np.ndarray, float | None]:
    """A line-art page (paper leveled to 100) whose lines are lighter than PENCIL_LINE,
    stretched from the paper down so its line `level` becomes PENCIL_LINE; other pages
    as they are. Returns (lightness, the line level after)."""
    if level is None or level <= PENCIL_LINE:
        return lightness, level
    gain = min(_MAX_PENCIL_GAIN, (100.0 - PENCIL_LINE) / (100.0 - level))
    darker = np.clip(100.0 - (100.0 - lightness) * gain, 0.0, 100.0).astype(np.float32)
    return darker, 100.0 - (100.0 - level) * gain


def _upsample(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(C, h, w) -> (C, H, W), bilinear."""
    if x.shape[-2:] == (height, width):
        return x
    return F.interpolate(x[None], size=(height, width), mode="bilinear", align_corners=False)[0]


def _sample(
    x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor, height: int, width: int
) -> torch.Tensor:
    """Bilinear value of (C, h, w) at full-resolution pixels (ys, xs): (C, N).

    Same coordinates as `_upsample` (align_corners=False), for a few pixels only.
    """
    gx = (xs.to(torch.float32) + 0.5) * (2.0 / width) - 1.0
    gy = (ys.to(torch.float32) + 0.5) * (2.0 / height) - 1.0
    grid = torch.stack((gx, gy), dim=-1)[None, None]  # (1, 1, N, 2)
    out = F.grid_sample(
        x[None].float(), grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return out[0, :, 0]  # (C, N)


def _read_likeliest_ab(lab_small: torch.Tensor, decoded: MemberPrediction, ys: torch.Tensor,
                       xs: torch.Tensor, height: int, width: int) -> None:
    """Put the most likely cell's a/b (x110) into `lab_small` (3, h, w) wherever `_sample`
    at full-resolution pixels (ys, xs) reads: each one's bilinear neighbours, plus one
    working pixel more on each side against rounding."""
    h, w = lab_small.shape[-2:]
    u = ((xs.to(torch.float32) + 0.5) * (w / width) - 0.5).floor().long()
    v = ((ys.to(torch.float32) + 0.5) * (h / height) - 0.5).floor().long()
    around = torch.arange(-1, 3)
    cols = (u[:, None] + around).clamp(0, w - 1)  # (N, 4)
    rows = (v[:, None] + around).clamp(0, h - 1)
    # torch's Tensor.unique is unannotated.
    index = (rows[:, :, None] * w + cols[:, None, :]).reshape(-1).unique()  # type: ignore[no-untyped-call]
    lab_small.view(3, -1)[1:, index] = decoded.likeliest_ab(index) * 110.0


def lab_to_rgb8(lab: torch.Tensor) -> torch.Tensor:
    """LAB pixels (3, N) -> sRGB (N, 3) uint8; out-of-gamut colors lose chroma, not hue."""
    n = lab.shape[1]
    lab = lab.reshape(3, n, 1).float()
    outside = ~in_gamut(lab).reshape(n)
    if bool(outside.any()):
        lab = lab.clone()
        lab[:, outside] = scale_chroma(lab[:, outside], 1.0)
    rgb = lab_to_rgb(lab).reshape(3, n)
    return (rgb * 255.0 + 0.5).clamp(0, 255).to(torch.uint8).T


@dataclass(frozen=True)
class MemberPrediction:
    """What a classification member predicts for one line-art page to be filled."""

    lightness: torch.Tensor  # (1, h, w) L, network scale
    logits: torch.Tensor  # (Q, h, w) the a/b cells' logits (log-probabilities up to a
    # constant per pixel)
    centers: torch.Tensor  # (Q, 2) the cells' a/b, network scale
    prior: torch.Tensor | None  # (Q,) the cells' frequencies in the member's training data
    memory: MemberMemory | None = None  # the member's remembered pictures, if it has them
    settings: dict[str, float] | None = None  # the member's own decoder settings (`extra`)
    mean_ab: torch.Tensor | None = None  # (2, h, w) the annealed mean a/b, when the batch
    # needed it; None: the most likely cell, computed only where it is read

    @property
    def lab(self) -> torch.Tensor:
        """(3, h, w) L and a/b (network scale): the annealed mean or the most likely cell."""
        ab = self.mean_ab if self.mean_ab is not None else self.likeliest_ab()
        return torch.cat((self.lightness, ab))

    def likeliest_ab(self, index: torch.Tensor | None = None) -> torch.Tensor:
        """The most likely cell's a/b (network scale): (2, h, w), or (2, N) at the flat
        working-grid pixels `index` (an argmax over every pixel costs ~17 ms a member at
        128 px, and compositing reads a few hundred)."""
        if index is None:
            return self.centers[self.logits.argmax(dim=0)].permute(2, 0, 1)
        return self.centers[self.logits.flatten(1)[:, index].argmax(dim=0)].T


def member_prior(member: FamilyMember) -> torch.Tensor | None:
    """The a/b cell frequencies of the member's training colors (manifest `extra`)."""
    prior = member.extra.get("ab_prior") if member.extra else None
    return torch.tensor(prior, dtype=torch.float32) if prior else None


def decoder_settings(member: FamilyMember) -> dict[str, float]:
    """The member's own decoder settings (`extra.decoder`: DecoderOptions fields), so a
    member can have its own temperament (bolder, or more careful, colors)."""
    settings = dict((member.extra or {}).get("decoder") or {})
    return {k: float(v) for k, v in settings.items() if k in MEMBER_SETTINGS}


def _decodes_regions(net: nn.Module, pages: Sequence[PreparedPage]) -> bool:
    """Whether this call should return the a/b distribution for the region decoder."""
    classifies = bool(getattr(net, "classifies_ab", False)) and getattr(net, "l_head", None)
    return bool(classifies) and any(
        p.fill and p.regions is not None and p.decoder == "regions" for p in pages
    )


def ink_level(lightness: np.ndarray) -> float:
    """The lightness of a line-art page's lines: the median of its ink pixels (strided)."""
    step = max(1, int(np.ceil(max(lightness.shape) / 1024)))
    small = lightness[::step, ::step]
    ink = small[small < INK_LEVEL * 100.0]
    return float(np.median(ink)) if ink.size else 0.0


class Colorizer:
    """Colors pages with the members of a family (networks loaded once, on `device`)."""

    def __init__(self, family: Family, device: str | torch.device | None = None) -> None:
        self.family = family
        self.device = torch.device(resolve_device(str(device) if device is not None else None))
        # Inference copies with BatchNorm folded, keyed by member name and checked
        # against the family's network object, so a reloaded member is re-fused.
        self._fused: dict[str, tuple[nn.Module, nn.Module]] = {}
        self._fuse_lock = threading.Lock()
        self._memories: dict[str, ColorMemory | None] = {}  # by file name
        self._member_memories: dict[str, tuple[tuple[int, int], MemberMemory]] = {}

    def network(self, name: str) -> nn.Module:
        """The member's network on this device, ready for inference (BatchNorm folded)."""
        net = self.family.network(name, self.device)
        with self._fuse_lock:
            cached = self._fused.get(name)
            if cached is None or cached[0] is not net:
                fused = fuse_batchnorm(net)
                if self.device.type == "cuda":
                    # Folding makes fresh (contiguous) weights: back to channels_last.
                    # Module.to takes memory_format; torch's overloads leave it out.
                    fused = fused.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
                cached = (net, fused)
                self._fused[name] = cached
            return cached[1]

    def memory(self, member: FamilyMember) -> MemberMemory | None:
        """What the member recalls from: its own memory and the family's shared one
        (`extra.memory`, `extra.shared_memory`; files loaded once), or None."""
        extra = member.extra or {}
        own = self._memory_file(member.name, extra.get("memory"))
        shared = self._memory_file(member.name, extra.get("shared_memory"))
        if own is None and shared is None:
            return None
        key = (id(own), id(shared))
        with self._fuse_lock:
            if self._member_memories.get(member.name, (None,))[0] != key:
                self._member_memories[member.name] = (key, MemberMemory(own, shared))
            return self._member_memories[member.name][1]

    def _memory_file(self, member: str, name: str | None) -> ColorMemory | None:
        if not name:
            return None
        with self._fuse_lock:
            if name not in self._memories:
                try:
                    self._memories[name] = ColorMemory.load(self.family.root / name)
                except MemoryFormatError as exc:  # colors without it rather than fail
                    log.warning("%s: %s", member, exc)
                    self._memories[name] = None
            return self._memories[name]

    # ---- per page, once -------------------------------------------------------------
    def prepare(self, image: Image.Image, options: ColorizeOptions | None = None) -> PreparedPage:
        """Analyse one RGB page (kind, regions, network inputs) for every member."""
        options = options or ColorizeOptions()
        lightness = page_lightness(image)  # (H, W) float32
        height, width = lightness.shape
        detected = detect_page_kind(lightness)
        kind = detected.kind if options.kind == "auto" else options.kind
        # Region fill only makes sense where there are lines to stay inside.
        fill = kind == "lineart" and (options.fill is None or options.fill)
        regions = None
        ink = 0.0
        recall = None
        if kind == "lineart":
            paper = detected.paper if options.kind == "auto" else paper_level(lightness)
            lightness = level_paper(lightness, paper)
            drawn = line_level(lightness)
            lightness, level = darken_pencil(lightness, drawn)
            ink = ink_level(lightness)
            if level is not None and level != drawn:
                # Darkened pencil: the floor follows the line's core, not the median of
                # its anti-aliased edges (lighter, and most of a thin line's pixels).
                ink = min(ink, level)
            if fill:
                regions = find_regions(lightness, threshold=ink_threshold(lightness,
                                                                          level=level))
                recall = recall_key(lightness)
        page = PreparedPage(
            width=width,
            height=height,
            kind=kind,
            detected=detected,
            strength=float(options.strength),
            fill=fill,
            lightness=torch.from_numpy(np.ascontiguousarray(lightness, dtype=np.float32)),
            regions=regions,
            assigned=torch.from_numpy(regions.assigned).long() if regions is not None else None,
            ink=ink,
            recall=recall,
            seed=options.seed,
            decoder=options.decoder,
        )
        # Warm the caches for this family's working sizes now (CPU work that the
        # batcher would otherwise do while the accelerator waits).
        for size in {m.work_size for m in self.family.members}:
            page.network_input(size)
            if regions is not None:
                page.samples(page.work_shape(size))
        return page

    # ---- per member, batched ---------------------------------------------------------
    def predict(
        self, member: FamilyMember, pages: Sequence[PreparedPage]
    ) -> list[torch.Tensor | MemberPrediction]:
        """One network call for all `pages`: a (C, h, w) float32 CPU prediction per page,
        LAB in network scale at the member's working resolution (a MemberPrediction
        where the region decoder needs the a/b distribution)."""
        net = self.network(member.name)
        inputs = [page.network_input(member.work_size) for page in pages]
        height = max(x.shape[-2] for x in inputs)
        width = max(x.shape[-1] for x in inputs)
        # Pad each page at its bottom/right to the batch's size; replicate, so the
        # network sees more of the page's own border rather than a hard edge.
        batch = torch.cat(
            [
                F.pad(x[None], (0, width - x.shape[-1], 0, height - x.shape[-2]), mode="replicate")
                for x in inputs
            ]
        )  # (B, 1, H, W)
        cuda = self.device.type == "cuda"
        if cuda:
            # Pinned host memory makes the copy asynchronous; channels_last matches
            # the layout Family.network() gives the weights on CUDA (tensor cores).
            batch = batch.pin_memory().to(self.device, non_blocking=True)
            batch = batch.contiguous(memory_format=torch.channels_last)
        else:
            batch = batch.to(self.device)
        decodes = _decodes_regions(net, pages)
        with torch.inference_mode(), torch.autocast(
            device_type="cuda", dtype=torch.float16, enabled=cuda
        ):
            if decodes:
                # The region decoder needs the whole a/b distribution, not its mean.
                assert isinstance(net, UNet)  # only a classifying U-Net decodes regions
                feats = net.features(batch)
                pred_l, logits = net.heads(feats)  # (B, 1, H, W), (B, Q, H, W)
                assert pred_l is not None  # _decodes_regions: the net has an L head
                logits = logits.float()  # the decoder needs no log-softmax (decoder.py)
                centers = net.ab_centers.float()
                if all(_decodes_regions(net, [p]) for p in pages):
                    # Regions take the decoder's color; only pixels of regions too small
                    # to be sampled keep their own: the most likely cell, found by
                    # compositing for just those pixels (MemberPrediction.likeliest_ab).
                    out = pred_l.float()  # (B, 1, H, W)
                else:  # a photo or an unfilled page in the batch: the annealed mean
                    probs = torch.softmax(logits / net.cfg.ab_temperature, dim=1)
                    ab = torch.einsum("bqhw,qc->bchw", probs, centers)
                    out = torch.cat((pred_l.float(), ab), dim=1)  # (B, 3, H, W)
            else:
                out = net(batch)  # (B, C, H, W) network scale
        out = out.float().cpu()
        crops = [(x.shape[-2], x.shape[-1]) for x in inputs]
        if not decodes:
            return [o[:, :h, :w] for o, (h, w) in zip(out, crops, strict=True)]
        assert isinstance(net, UNet)
        logits = logits.cpu()
        centers = net.ab_centers.float().cpu()
        prior = member_prior(member)
        memory = self.memory(member)
        return [
            MemberPrediction(o[:1, :h, :w], lg[:, :h, :w].contiguous(), centers, prior, memory,
                             decoder_settings(member),
                             o[1:, :h, :w] if o.shape[0] == 3 else None)
            for o, lg, (h, w) in zip(out, logits, crops, strict=True)
        ]

    def run_member(self, name: str, pages: Sequence[PreparedPage]) -> list[Image.Image]:
        """Color every page with one member: one batched network call, then compositing."""
        member = self.family.get(name)
        if not pages:
            return []
        predictions = self.predict(member, pages)
        with torch.inference_mode():
            pairs = zip(pages, predictions, strict=True)
            return [self.composite(page, pred) for page, pred in pairs]

    def colorize(
        self,
        images: Sequence[Image.Image],
        members: Sequence[str] | None = None,
        options: ColorizeOptions | None = None,
    ) -> list[dict[str, Image.Image]]:
        """Color each image with each member: `[{member name: coloring}, ...]`."""
        names = list(members) if members else self.family.names
        for name in names:
            self.family.get(name)  # unknown names fail before any work
        pages = [self.prepare(image, options) for image in images]
        results: list[dict[str, Image.Image]] = [{} for _ in pages]
        for name in names:
            for result, coloring in zip(results, self.run_member(name, pages), strict=True):
                result[name] = coloring
        return results

    # ---- compositing at full size ----------------------------------------------------
    @staticmethod
    def composite(
        page: PreparedPage, prediction: torch.Tensor | MemberPrediction
    ) -> Image.Image:
        """A member's prediction (C, h, w), network scale -> the coloring at page size."""
        height, width = page.height, page.width
        decoded: MemberPrediction | None = None
        if isinstance(prediction, MemberPrediction):
            decoded = prediction
            if decoded.mean_ab is None and page.kind == "lineart" and page.fill:
                # a/b filled in by _composite_filled where pixels read them
                prediction = torch.cat((decoded.lightness,
                                        torch.zeros_like(decoded.lightness).expand(2, -1, -1)))
            else:
                prediction = decoded.lab
        if prediction.shape[0] == 3:
            lab_small = torch.cat(((prediction[:1] + 1.0) * 50.0, prediction[1:] * 110.0))
        else:  # a/b only
            lab_small = prediction * 110.0
        if page.kind == "lineart" and lab_small.shape[0] == 3:
            lab_small[0].clamp_(min=page.min_fill_l)  # lines stay visible
            if page.fill:
                rgb = _composite_filled(page, lab_small, decoded)
            else:
                rgb = _composite_lines(page, lab_small)
        else:
            # Photo (or an a/b-only member on line art): keep the page's own L.
            ab = _upsample(lab_small[-2:], height, width) * page.strength
            lab = torch.cat((page.lightness[None], ab)).reshape(3, -1)
            rgb = lab_to_rgb8(lab).reshape(height, width, 3)
        return Image.fromarray(rgb.numpy(), mode="RGB")


def _composite_lines(page: PreparedPage, lab_small: torch.Tensor) -> torch.Tensor:
    """Line art without fill: predicted colors under the page's lines; (H, W, 3) uint8."""
    height, width = page.height, page.width
    lab_small = lab_small.clone()
    lab_small[1:] *= page.strength
    # Convert at working resolution and upsample the RGB: every paper pixel is then
    # exact up to interpolation; only pixels darker than the prediction (the lines)
    # need their own LAB -> RGB at full resolution.
    h, w = lab_small.shape[-2:]
    rgb_small = lab_to_rgb8(lab_small.reshape(3, -1)).T.reshape(3, h, w).float()
    up = _upsample(torch.cat((rgb_small, lab_small)), height, width)  # (6, H, W)
    rgb = (up[:3] + 0.5).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()
    darker = page.lightness < up[3]
    if bool(darker.any()):
        lab = up[3:, darker]  # (3, N)
        lab[0] = keep_lines(page.lightness[darker], lab[0])
        rgb[darker] = lab_to_rgb8(lab)
    return rgb


def _composite_filled(
    page: PreparedPage, lab_small: torch.Tensor, decoded: MemberPrediction | None = None
) -> torch.Tensor:
    """Line art with fill: one color per region, lines kept; (H, W, 3) uint8.

    With the member's a/b distribution (`decoded`), each region's a/b is the cell the
    region decoder chooses (models/decoder.py); otherwise the region's median.
    Lightness is the region's median predicted L either way, moved toward the recalled
    pages' L of the chosen color where the member remembers (`recalled_lightness`).
    """
    assert page.assigned is not None
    height, width = page.height, page.width
    work_shape = (lab_small.shape[-2], lab_small.shape[-1])
    samples = page.samples(work_shape)
    regions_decode = decoded is not None and page.decoder == "regions"
    if regions_decode:  # a/b come from the decoder: only L needs the region medians
        l_median, has = region_medians(lab_small[:1], samples)
        palette = torch.cat((l_median, torch.zeros(l_median.shape[0], 2)), dim=1)
    else:
        palette, has = region_medians(lab_small, samples)  # (K+1, 3), (K+1,)
    if regions_decode:
        assert decoded is not None
        scores = region_log_scores(decoded.logits, samples)
        options = DecoderOptions(seed=page.seed, **(decoded.settings or {}))
        recalled = None
        if decoded.memory is not None and page.recall is not None:
            ids = torch.repeat_interleave(torch.arange(samples.counts.numel()), samples.counts)
            recalled = decoded.memory.region_recall(page.recall, samples.index, ids,
                                                    samples.counts.numel(), samples.size)
            scores = with_memory(scores, recalled.votes, options.memory_weight)
        adjusted = adjusted_scores(scores, decoded.prior, options.prior_weight)
        adjusted = penalize_gray(adjusted, decoded.centers, ~page.background(),
                                 options.gray_penalty)
        cells = choose_cells(adjusted, samples.counts, page.neighbours(), decoded.centers,
                             options)
        ab = decoded.centers[cells] * 110.0  # (K+1, 2)
        if recalled is not None:
            moved = recalled_lightness(recalled, cells, decoded.centers, palette[:, 0],
                                       options.memory_lightness, paper=page.background())
            palette[has, 0] = moved[has].clamp(min=page.min_fill_l, max=100.0)
        sure = region_confidence(adjusted, cells, decoded.centers)
        if options.hedge > 0:
            ab = ab * sure.pow(options.hedge)[:, None]
        unsure_paper = page.background() & (sure < _SURE_OF_BACKGROUND)
        ab[unsure_paper] = 0.0
        palette[unsure_paper, 0] = 100.0
        palette[has, 1:] = ab[has]
        # Paper stays paper: a region the member leaves uncolored and light is white,
        # not the slightly gray L its lightness regression lands on.
        paper = has & (ab.norm(dim=1) < _PAPER_CHROMA) & (palette[:, 0] > _PAPER_L)
        palette[paper, 0] = 100.0
    palette[:, 1:] *= page.strength
    palette_rgb = lab_to_rgb8(palette.T.contiguous()).contiguous()  # (K+1, 3)
    lazy_ab = decoded is not None and decoded.mean_ab is None
    if float(palette[:, 0].max()) > 100.0:  # a fill lighter than paper: any pixel may need
        if lazy_ab:
            assert decoded is not None
            lab_small[1:] = decoded.likeliest_ab() * 110.0
        return _fill_every_pixel(page, lab_small, palette, palette_rgb, has)
    pixels = page.fill_pixels(work_shape)
    # Every pixel takes its region's color (exact wherever the paper shows the fill)...
    # (index_select: ~4x faster than fancy indexing for a million rows)
    rgb = torch.index_select(palette_rgb, 0, page.assigned.reshape(-1))  # (H*W, 3)
    # ...except the pixels that need their own: in a region too small to have a median
    # (the per-pixel prediction there), or darker than their fill (lines, anti-aliased
    # edges), which keep the page's L under the region's a/b.
    fill_l = palette[:, 0].contiguous()
    darker = pixels.dark_l < torch.index_select(fill_l, 0, pixels.dark_ids)
    line = pixels.dark[darker]
    line_l = pixels.dark_l[darker]
    line_ids = pixels.dark_ids[darker]
    own = pixels.own
    total = own.numel() + line.numel()
    if total == 0:
        return rgb.reshape(height, width, 3)
    if own.numel():
        ys, xs = own // width, own % width
        if lazy_ab:
            assert decoded is not None
            _read_likeliest_ab(lab_small, decoded, ys, xs, height, width)
        lab = _sample(lab_small, ys, xs, height, width)
        lab[1:] *= page.strength
        lab[0] = keep_lines(page.lightness.reshape(-1)[own], lab[0])
        rgb.index_copy_(0, own, lab_to_rgb8(lab))
    if line.numel():
        table_size = palette.shape[0] * 101
        if table_size < total // 2:
            # Lines and edges take their region's a/b at their own L: a table of the
            # region colors at whole L (rounding L by < 0.5 is invisible), converted only
            # for the (region, L) pairs present, is far cheaper than every line pixel.
            line_fill_l = torch.index_select(fill_l, 0, line_ids)
            key = line_ids * 101 + keep_lines(line_l, line_fill_l).round().clamp(0, 100).long()
            used = torch.zeros(table_size, dtype=torch.bool)
            used[key] = True
            entries = torch.nonzero(used).squeeze(1)
            table_lab = torch.cat(((entries % 101).float()[None],
                                   palette[entries // 101, 1:].T))
            table = torch.zeros(table_size, 3, dtype=torch.uint8)
            table[entries] = lab_to_rgb8(table_lab)
            rgb.index_copy_(0, line, torch.index_select(table, 0, key))
        else:
            lab = torch.index_select(palette, 0, line_ids).T.contiguous()  # (3, N)
            lab[0] = keep_lines(line_l, lab[0])
            rgb.index_copy_(0, line, lab_to_rgb8(lab))
    return rgb.reshape(height, width, 3)


def _fill_every_pixel(
    page: PreparedPage, lab_small: torch.Tensor, palette: torch.Tensor,
    palette_rgb: torch.Tensor, has: torch.Tensor,
) -> torch.Tensor:
    """`_composite_filled`'s pixel pass over the whole page (fills lighter than paper)."""
    height, width = page.height, page.width
    assigned = page.assigned
    assert assigned is not None  # a filled page has its regions
    rgb = palette_rgb[assigned]  # (H, W, 3): exact wherever the paper shows the fill
    # Pixels that need their own color: darker than their fill (lines, anti-aliased
    # edges) or in a region too small to have a median (per-pixel prediction there).
    own = ~has[assigned]
    need = own | (page.lightness < palette[:, 0][assigned])
    if bool(need.any()):
        ys, xs = torch.nonzero(need, as_tuple=True)
        lab = palette[assigned[ys, xs]].T.contiguous()  # (3, N)
        own_n = own[ys, xs]
        if bool(own_n.any()):
            pixel = _sample(lab_small, ys[own_n], xs[own_n], height, width)
            pixel[1:] *= page.strength
            lab[:, own_n] = pixel
        lab[0] = keep_lines(page.lightness[ys, xs], lab[0])
        ids = assigned[ys, xs]
        table_size = palette.shape[0] * 101
        if table_size < ys.numel() // 2:
            # Lines and edges take their region's a/b at their own L: a table of every
            # region's color at every whole L (rounding L by < 0.5 is invisible) is far
            # cheaper than converting each of the many line pixels on its own.
            levels = torch.arange(101, dtype=torch.float32)
            table_lab = torch.cat((levels.repeat(palette.shape[0])[None],
                                   palette[:, 1:].repeat_interleave(101, dim=0).T))
            table = lab_to_rgb8(table_lab)  # ((K+1) * 101, 3)
            per_pixel = own_n
            key = ids * 101 + lab[0].round().clamp(0, 100).long()
            rgb[ys, xs] = table[key]
            if bool(per_pixel.any()):
                rgb[ys[per_pixel], xs[per_pixel]] = lab_to_rgb8(lab[:, per_pixel])
        else:
            rgb[ys, xs] = lab_to_rgb8(lab)
    return rgb
