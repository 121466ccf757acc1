"""Command-line options that several `studio` subcommands share."""

from __future__ import annotations

import argparse
import json
from typing import Any


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
