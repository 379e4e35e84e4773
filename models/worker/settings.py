"""The worker's settings: one typed object, from the command line or the environment."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field

# A page's colored size, at most (pixels). Bigger pages are scaled down to it before
# the pipeline sees them and come back at that size: the work (and memory) per page
# is bounded whatever was posted. 4 MP is a 2310 x 1730 page, plenty for a screen.
DEFAULT_MAX_PAGE_PIXELS = 4_000_000


class InsecureSettings(ValueError):
    """The settings would expose the worker to the network without a token."""


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False  # a name, "", "0.0.0.0" / "::" (every address): not loopback


@dataclass(frozen=True)
class WorkerSettings:
    # Loopback by default: listening on the network is a decision (and needs `token`).
    host: str = "127.0.0.1"
    port: int = 8700
    # Family manifest (file or folder) to serve; empty means the bundled family.
    family_path: str = ""
    # "auto" (CUDA when there is one, else CPU), "cpu", "cuda", "cuda:1", ...
    device: str = "auto"
    # Pages per network call, at most.
    max_batch_size: int = 8
    # How long the oldest queued page may wait for its batch to fill.
    max_wait_ms: float = 20.0
    # Pages per member admitted and not yet in a batch; beyond it: 503 + Retry-After.
    max_queue_size: int = 64
    # Largest request body (the multipart upload), in bytes; beyond it: 413.
    max_request_bytes: int = 20 * 1024 * 1024
    # Threads running batched network calls (0: one per member, at most 4).
    batch_threads: int = 0
    # Threads loading/preparing pages, compositing colorings and encoding PNGs
    # (0: one per CPU core, at least 2).
    prepare_threads: int = 0
    # torch intra-op threads; 0: torch's default. `colorbot worker` turns 0 into 1 on a
    # CPU: a server has many pages in flight, and intra-op threads spinning at each op's
    # barrier next to the prepare/compose threads (or a training job) waste the CPU.
    torch_threads: int = 0
    # Seconds between checks of the manifest's mtime for a promoted version (0: off).
    reload_poll_s: float = 5.0
    # Seconds a graceful shutdown waits for requests in flight.
    shutdown_timeout_s: float = 60.0
    # Seconds a 503 asks the caller to wait (Retry-After).
    retry_after_s: int = 1
    # POST /v1/admin/reload needs `Authorization: Bearer <admin_token>`; unset: disabled.
    admin_token: str = field(default="", repr=False)
    # When set, POST /v1/colorize needs `Authorization: Bearer <token>`. Required to
    # listen on a non-loopback address.
    token: str = field(default="", repr=False)
    # Seconds a connection may take to send a request's headers (and idle between
    # requests); a client trickling headers is cut off after it.
    header_timeout_s: float = 10.0
    # Seconds a request may take to send its body; beyond it: 408.
    body_timeout_s: float = 30.0
    # Form fields in one colorize request, at most (there are five kinds).
    max_form_fields: int = 16
    # Pixels a page is colored at, at most: bigger pages are scaled down to it.
    max_page_pixels: int = DEFAULT_MAX_PAGE_PIXELS
    # Pixels being prepared/colored at once across requests (admission by pixels, not
    # pages); requests beyond it wait their turn. 0: twice `max_page_pixels`.
    max_pixels_in_flight: int = 0

    @property
    def pixel_budget(self) -> int:
        return max(self.max_pixels_in_flight or 2 * self.max_page_pixels,
                   self.max_page_pixels)

    def check_exposure(self) -> None:
        """Refuse to listen beyond this machine without a token (`InsecureSettings`)."""
        if not is_loopback(self.host) and not self.token:
            raise InsecureSettings(
                f"refusing to listen on {self.host or 'every address'} without a token: set "
                "COLORBOT_WORKER_TOKEN (the bot sends the same one) or use --host 127.0.0.1"
            )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> WorkerSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {
            "family_path": env.get("COLORBOT_FAMILY", ""),
            "device": env.get("COLORBOT_DEVICE", "auto"),
            "admin_token": env.get("COLORBOT_WORKER_ADMIN_TOKEN", ""),
            "token": env.get("COLORBOT_WORKER_TOKEN", ""),
            "max_page_pixels": int(env.get("COLORBOT_MAX_PAGE_PIXELS", "")
                                   or DEFAULT_MAX_PAGE_PIXELS),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
