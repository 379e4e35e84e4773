"""`colorbot worker`: serve the family over HTTP with dynamic batching."""

from __future__ import annotations

import argparse

from models.worker.settings import WorkerSettings

_DEFAULTS = WorkerSettings()


def register_worker_command(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="serve colorings over HTTP (dynamic batching, CUDA when present)",
        description="Serve POST /v1/colorize, GET /v1/family, /healthz, /readyz, /metrics. "
        "SIGTERM drains: readyz turns 503, requests in flight finish, then it exits.",
    )
    parser.add_argument("--host", default=_DEFAULTS.host,
                        help="address to listen on (default 127.0.0.1; any other needs "
                        "COLORBOT_WORKER_TOKEN)")
    parser.add_argument("--port", type=int, default=_DEFAULTS.port, help="port to listen on")
    parser.add_argument("--family", dest="family_path", default=None,
                        help="family manifest or folder (default: $COLORBOT_FAMILY or bundled)")
    parser.add_argument("--device", default=None,
                        help="auto (default, $COLORBOT_DEVICE), cpu, cuda, cuda:1 ...")
    parser.add_argument("--max-batch-size", type=int, default=_DEFAULTS.max_batch_size,
                        help="pages per network call, at most")
    parser.add_argument("--max-wait-ms", type=float, default=_DEFAULTS.max_wait_ms,
                        help="how long the oldest queued page waits for its batch to fill")
    parser.add_argument("--max-queue-size", type=int, default=_DEFAULTS.max_queue_size,
                        help="queued pages per member before answering 503")
    parser.add_argument("--max-request-mb", type=float,
                        default=_DEFAULTS.max_request_bytes / (1024 * 1024),
                        help="largest upload in MB (413 beyond)")
    parser.add_argument("--batch-threads", type=int, default=_DEFAULTS.batch_threads,
                        help="threads running network calls (0: one per member, at most 4)")
    parser.add_argument("--prepare-threads", type=int, default=_DEFAULTS.prepare_threads,
                        help="threads preparing pages, compositing, encoding (0: one per core)")
    parser.add_argument("--torch-threads", type=int, default=_DEFAULTS.torch_threads,
                        help="torch intra-op threads (0: 1 on a CPU, torch's default on CUDA)")
    parser.add_argument("--reload-poll-s", type=float, default=_DEFAULTS.reload_poll_s,
                        help="seconds between manifest checks for promotions (0: off)")
    parser.add_argument("--max-page-pixels", type=int, default=None,
                        help="color bigger pages scaled down to this many pixels "
                        "(default: $COLORBOT_MAX_PAGE_PIXELS or 4,000,000)")
    parser.add_argument("--max-pixels-in-flight", type=int, default=None,
                        help="pixels colored at once across requests; more wait "
                        "(default: twice --max-page-pixels)")
    parser.add_argument("--header-timeout-s", type=float, default=_DEFAULTS.header_timeout_s,
                        help="seconds a client may take to send its request headers")
    parser.add_argument("--body-timeout-s", type=float, default=_DEFAULTS.body_timeout_s,
                        help="seconds a client may take to send its upload (408 beyond)")
    parser.set_defaults(handler=_run_worker)


def settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    return WorkerSettings.from_env(
        host=args.host,
        port=args.port,
        family_path=args.family_path,
        device=args.device,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        max_queue_size=args.max_queue_size,
        max_request_bytes=int(args.max_request_mb * 1024 * 1024),
        batch_threads=args.batch_threads,
        prepare_threads=args.prepare_threads,
        torch_threads=args.torch_threads,
        reload_poll_s=args.reload_poll_s,
        max_page_pixels=getattr(args, "max_page_pixels", None),
        max_pixels_in_flight=getattr(args, "max_pixels_in_flight", None),
        header_timeout_s=getattr(args, "header_timeout_s", None),
        body_timeout_s=getattr(args, "body_timeout_s", None),
    )


def _run_worker(args: argparse.Namespace) -> int:
    import dataclasses
    import sys

    from models.options import resolve_device
    from models.worker.app import run
    from models.worker.settings import InsecureSettings

    settings = settings_from_args(args)
    try:
        settings.check_exposure()  # before loading anything
    except InsecureSettings as exc:
        print(f"colorbot worker: {exc}", file=sys.stderr)
        return 2
    if settings.torch_threads == 0 and resolve_device(settings.device).startswith("cpu"):
        settings = dataclasses.replace(settings, torch_threads=1)
    if settings.family_path:
        from models.registry import copy_bundled_family

        # A writable family folder that retraining will add versions to starts as the
        # bundled family (compose: COLORBOT_FAMILY=/data/family).
        if copy_bundled_family(settings.family_path):
            print(f"copied the bundled family to {settings.family_path}")
    run(settings)
    return 0
