"""The `studio` command: subcommands that mirror the Python API.

`studio` alone (or `studio ui`) serves the browser studio on 127.0.0.1; `studio vision finetune|eval|methods`
train and evaluate ViT adapters; `studio demo` runs the end-to-end example on a dataset it draws itself.
"""

from __future__ import annotations

import argparse
import sys

from PIL import Image

from . import demo, diffusion, ui, vision, vlm
from .options import Parser

# What a user's input raises once the loading code has named the problem: bad values, missing or unreadable
# files, unknown names. PIL's decompression-bomb refusal is a verdict on the user's image, never a bug. Any other
# exception is a bug and keeps its traceback (exit 1).
USER_ERRORS = (ValueError, OSError, KeyError, Image.DecompressionBombError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = Parser(prog="studio", description=__doc__.splitlines()[0])
    domains = parser.add_subparsers(dest="command", metavar="COMMAND")
    ui.add_parser(domains)
    vision.add_parser(domains)
    vlm.add_parser(domains)
    diffusion.add_parser(domains)
    demo.add_parser(domains)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `studio` console script.

    Args:
        argv: arguments (default: `sys.argv[1:]`).

    Returns:
        The exit code: 0 on success, 2 for bad input (printed as one `studio: error: ...` line, no traceback).
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0].startswith("--") and argv[0] not in ("--help", "-h"):
        argv = ["ui", *argv]  # `studio` alone, or `studio --port 8080`, serves the studio
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 0
    try:
        args.run(args)
    except USER_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"studio: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
    return 0
