"""Command-line options that several `studio` subcommands share, and the parser that reports in one line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from studio.core import MethodConfig, get_method, method_configs


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


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def add_method_options(parser: argparse.ArgumentParser, domain: str, task: str | None, default: str) -> None:
    """Add `--method` (the registry's methods of `domain` trained by `task`) and `--set KEY=VALUE` (the
    chosen method's config fields), and list every method's options with their defaults under the help.

    Args:
        parser: the subcommand's parser.
        domain: the domain whose methods are offered, e.g. `"vision"`.
        task: the job the subcommand runs (see `studio.core.Method.task`); None: all of the domain's methods.
        default: the method used without `--method`.
    """
    configs = method_configs(domain, task)
    parser.add_argument("--method", default=default, choices=list(configs), help=f"default: {default}")
    add_key_values(parser, "--set", "an option of the method (listed below), e.g. lr=1e-4")
    lines = ["methods and their options (--set KEY=VALUE):"]
    for name, cls in configs.items():
        options = ", ".join(f"{f.name}={_default(f)!r}" for f in cls.options())
        lines.append(f"  {name}: {options or '(none)'}")
    parser.epilog = "\n".join(lines)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter


def method_config(args: argparse.Namespace, domain: str) -> MethodConfig:
    """The config of `args.method` from its `--set` options (see `add_method_options`); a bad option is a
    `ValueError` naming it, raised before any work starts."""
    return get_method(args.method, domain).config_cls.from_dict(dict(args.set))
