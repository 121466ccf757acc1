"""`studio ui` (and `studio` alone): serve the browser studio."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .options import finite_float, int_in

AUTH_ENV = "STUDIO_AUTH"


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio ui`."""
    parser = domains.add_parser("ui", help="open the browser studio (the default when no command is given)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    parser.add_argument(
        "--port", type=int_in(1, 65535), default=None, help="port (default: a free one, printed)"
    )
    parser.add_argument("--share", action="store_true", help="also create a public gradio share link")
    parser.add_argument(
        "--auth",
        default=None,
        metavar="USER:PASSWORD",
        help=f"require this login; visible to other local users through `ps`, so prefer --auth-file or the "
        f"{AUTH_ENV} environment variable",
    )
    parser.add_argument(
        "--auth-file", default=None, metavar="PATH", help="read the USER:PASSWORD login from this file"
    )
    parser.add_argument("--workspace", default=None, help="folder for uploads, jobs and artifacts")
    parser.add_argument(
        "--max-upload-mb", type=finite_float(0, strict=True), default=200, help="largest accepted upload"
    )
    parser.add_argument(
        "--models-dir",
        default=None,
        help="folder of local models and weights the page may load (besides the workspace)",
    )
    parser.set_defaults(run=run_ui)


def resolve_auth(args: argparse.Namespace) -> str | None:
    """The `USER:PASSWORD` login: `--auth`, else the first line of `--auth-file`, else `$STUDIO_AUTH`.

    Raises:
        ValueError: both `--auth` and `--auth-file` are given, or the file is empty.
        OSError: the file cannot be read.
    """
    if args.auth and args.auth_file:
        raise ValueError("give the login once: --auth or --auth-file, not both")
    if args.auth_file:
        lines = Path(args.auth_file).read_text().splitlines()
        if not lines or not lines[0].strip():
            raise ValueError(f"--auth-file {args.auth_file} is empty; write USER:PASSWORD on its first line")
        return lines[0].strip()
    return args.auth or os.environ.get(AUTH_ENV) or None


def run_ui(args: argparse.Namespace) -> None:
    """Serve the studio until interrupted."""
    from studio.ui import launch  # gradio loads only when the studio is asked for

    args.auth = resolve_auth(args)
    try:
        launch(
            args.host, args.port, args.share, args.auth, args.workspace, args.max_upload_mb, args.models_dir
        )
    except KeyboardInterrupt:
        print("studio stopped")
