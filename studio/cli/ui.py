"""`studio ui` (and `studio` alone): serve the browser studio."""

from __future__ import annotations

import argparse


def add_parser(domains: argparse._SubParsersAction) -> None:
    """Register `studio ui`."""
    parser = domains.add_parser("ui", help="open the browser studio (the default when no command is given)")
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: this machine only)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one, printed)")
    parser.add_argument("--share", action="store_true", help="also create a public gradio share link")
    parser.add_argument("--auth", default=None, metavar="USER:PASSWORD", help="require this login")
    parser.add_argument("--workspace", default=None, help="folder for uploads, jobs and artifacts")
    parser.add_argument("--max-upload-mb", type=float, default=200, help="largest accepted upload")
    parser.add_argument(
        "--models-dir",
        default=None,
        help="folder of local models and weights the page may load (besides the workspace)",
    )
    parser.set_defaults(run=run_ui)


def run_ui(args: argparse.Namespace) -> None:
    """Serve the studio until interrupted."""
    from studio.ui import launch  # gradio loads only when the studio is asked for

    try:
        launch(
            args.host, args.port, args.share, args.auth, args.workspace, args.max_upload_mb, args.models_dir
        )
    except KeyboardInterrupt:
        print("studio stopped")
