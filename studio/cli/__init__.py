"""The `studio` command: subcommands that mirror the Python API.

`studio vision finetune|eval|methods` train and evaluate ViT adapters; `studio demo` runs the end-to-end
example on a dataset it draws itself.
"""

from __future__ import annotations

import argparse
import sys

from . import demo, vision


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="studio", description=__doc__.splitlines()[0])
    domains = parser.add_subparsers(dest="command", metavar="COMMAND")
    vision.add_parser(domains)
    demo.add_parser(domains)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `studio` console script.

    Args:
        argv: arguments (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 on success, 2 for bad input (printed as one readable line, no traceback).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        args.run(args)
    except (ValueError, FileNotFoundError, KeyError, OSError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"studio: error: {message}", file=sys.stderr)
        return 2
    return 0
