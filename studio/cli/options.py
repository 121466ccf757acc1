"""Command-line options that several `studio` subcommands share, and the parser that reports in one line."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one `studio: error: ...` line (exit 2), like every other user error.

    argparse's default prints the usage block first; the line instead points to `--help`. Subcommand parsers
    inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        """Print `message` as one line on stderr and exit with code 2."""
        print(f"studio: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(2)


def key_value(text: str) -> tuple[str, Any]:
    """Parse `KEY=VALUE`; the value is read as JSON when it parses (numbers, booleans, lists), else kept as text."""
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def add_key_values(parser: argparse.ArgumentParser, flag: str, help: str) -> None:
    """Add a repeatable `flag KEY=VALUE` option collected as a list of `(key, value)` pairs."""
    parser.add_argument(flag, type=key_value, action="append", default=[], metavar="KEY=VALUE", help=help)


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse `type` for an integer in `[low, high]` (no upper bound when `high` is None).

    Args:
        low: the smallest accepted value.
        high: the largest accepted value, or None.

    Returns:
        A function that parses the text or raises `argparse.ArgumentTypeError` naming the accepted range.
    """
    bounds = f">= {low}" if high is None else f"in {low}..{high}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected an integer {bounds}, got {value}")
        return value

    return parse


def finite_float(low: float | None = None, strict: bool = False) -> Callable[[str], float]:
    """An argparse `type` for a finite number, optionally bounded below.

    Args:
        low: the lower bound, or None for any finite number.
        strict: the bound itself is excluded (`> low` instead of `>= low`).

    Returns:
        A function that parses the text or raises `argparse.ArgumentTypeError` naming the accepted range.
    """
    bounds = "" if low is None else f" {'>' if strict else '>='} {low:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (low is not None and (value <= low if strict else value < low)):
            raise argparse.ArgumentTypeError(f"expected a finite number{bounds}, got {text!r}")
        return value

    return parse
