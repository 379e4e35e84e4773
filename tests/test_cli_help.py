"""Every option of every `colorbot` subcommand says what it does and what its default is."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from colorbot.cli import build_parser
from colorbot.clihelp import DefaultsHelpFormatter


def _parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _options() -> Iterator[tuple[str, argparse.ArgumentParser, argparse.Action]]:
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            name = "/".join(action.option_strings) or action.dest
            yield f"colorbot {' '.join(path)} {name}".replace("  ", " "), parser, action


ALL_OPTIONS = list(_options())
# Subcommands whose options need help text but are not held to showing defaults here:
# their cli.py files belong to other parts (the worker, the web page) and use their own
# formatter; their help strings say most defaults in words.
DEFAULTS_SHOWN_ELSEWHERE = {"worker", "web"}


def test_the_walk_finds_the_subcommands() -> None:
    names = {label.split()[1] for label, _, _ in ALL_OPTIONS if len(label.split()) > 2}
    assert {"run", "colorize", "train", "leaderboard", "retrain", "dataset", "db"} <= names


@pytest.mark.parametrize(
    ("label", "parser", "action"), ALL_OPTIONS, ids=[label for label, _, _ in ALL_OPTIONS]
)
def test_every_option_has_help_and_shows_its_default(
    label: str, parser: argparse.ArgumentParser, action: argparse.Action
) -> None:
    assert action.help and action.help is not argparse.SUPPRESS and action.help.strip(), (
        f"{label} has no help text"
    )
    shown = parser._get_formatter()._expand_help(action)
    assert "(default: None)" not in shown
    default = action.default
    subcommand = label.split()[1]
    if subcommand in DEFAULTS_SHOWN_ELSEWHERE:
        return
    if default not in (None, "", argparse.SUPPRESS) and not isinstance(default, bool):
        assert "default" in shown.lower(), f"{label}: help does not say its default"


def test_every_subcommand_has_a_summary() -> None:
    for path, parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {choice.dest for choice in action._choices_actions if choice.help}
                missing = set(action.choices) - helped
                assert not missing, f"colorbot {' '.join(path)}: {sorted(missing)} lack help"


def test_the_formatter_shows_real_defaults_only() -> None:
    parser = argparse.ArgumentParser(formatter_class=DefaultsHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200, help="bootstrap rounds")
    parser.add_argument("--steps", type=int, default=None, help="steps (default: the config's)")
    parser.add_argument("--quiet", action="store_true", help="say less")
    parser.add_argument("--size", type=int, default=4, help="pages per call (default 4)")
    text = " ".join(parser.format_help().split())
    assert "bootstrap rounds (default: 200)" in text
    assert "(default: None)" not in text
    assert "(default: False)" not in text
    assert "(default 4) (default: 4)" not in text


def test_train_help_states_the_trainers_own_defaults() -> None:
    from training.train import TrainConfig

    train = dict(_parsers(build_parser()))[("train",)]
    config = TrainConfig(dataset="", out_dir="")
    by_option = {o: a for a in train._actions for o in a.option_strings}
    for option, field in (("--steps", "steps"), ("--batch-size", "batch_size"),
                          ("--lr", "lr"), ("--seed", "seed"), ("--crop", "crop_size")):
        shown = train._get_formatter()._expand_help(by_option[option])
        assert f"default: {getattr(config, field)})" in shown, (option, shown)
