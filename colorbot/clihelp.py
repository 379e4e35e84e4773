"""The help formatter every `colorbot` subcommand uses: each option shows its default.

argparse's ArgumentDefaultsHelpFormatter appends "(default: ...)" to every option,
including "(default: None)" for options whose real default comes from elsewhere (a
setting, a saved run) and "(default: False)" for flags. This one appends the default
only where it tells the reader something, and never twice.
"""

from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Help text with "(default: X)" for options whose default is a real value."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text.lower()
            or default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or default == ""
        ):
            return text
        if action.option_strings or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return f"{text} (default: %(default)s)"
        return text
