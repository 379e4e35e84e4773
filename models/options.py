"""What a coloring request may ask for: the vocabulary the worker, the bot, the console
command and the datasets share. Plain values, no imports: the bot reads them without
loading numpy or torch.

Where a device is chosen ("auto", "cpu", "cuda:1" ...) `resolve_device` says which one.
"""

from __future__ import annotations

# What a page is: line art (white paper, dark lines) or a grayscale photo.
PAGE_KINDS = ("lineart", "photo")
# What a request may name: one of those, or "auto" (detected from the page).
KINDS = ("auto", *PAGE_KINDS)
# Chroma scale: 0 leaves the page gray, 1 is as predicted, above 1 more vivid.
MAX_STRENGTH = 4.0
# Seeds are what a 32-bit signed int holds: every client (and database column) can keep one.
SEED_LIMIT = 2**31


def resolve_device(device: str | None = "auto") -> str:
    """'auto' (or nothing) -> 'cuda' when torch sees a GPU, else 'cpu'; anything else as
    given. Imports torch only to answer 'auto'."""
    if device and device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
