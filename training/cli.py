"""`colorbot` subcommands of the training package.

Owned by the trainer (#6). Created by the data side only to wire `colorbot dataset ...`;
the trainer adds `train`, `evaluate`, ... below.
"""

from __future__ import annotations


def register(subparsers) -> None:
    from training.datasets.cli import register_dataset_commands

    register_dataset_commands(subparsers)
    # Trainer: register `train`, `evaluate`, `retrain`, ... here.
