"""`python -m models.worker [options]`: the same as `colorbot worker [options]`."""

from __future__ import annotations

import argparse
import logging
import sys

from models.worker.cli import register_worker_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models.worker")
    register_worker_command(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["worker", *(sys.argv[1:] if argv is None else argv)])
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
