"""The worker's settings: one typed object, from the command line or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSettings:
    host: str = "0.0.0.0"
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
    # When set, POST /v1/admin/reload needs `Authorization: Bearer <token>`.
    admin_token: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> WorkerSettings:
        env = dict(os.environ if env is None else env)
        values: dict[str, object] = {
            "family_path": env.get("COLORBOT_FAMILY", ""),
            "device": env.get("COLORBOT_DEVICE", "auto"),
            "admin_token": env.get("COLORBOT_WORKER_ADMIN_TOKEN", ""),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
