"""Serving the studio: 127.0.0.1 and a free port by default; other hosts, sharing and a password are opt-ins."""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

from .app import build_app, default_workspace
from .workspace import DEFAULT_MAX_UPLOAD_MB, Workspace

LOCALHOST = "127.0.0.1"


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port nobody listens on at `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def is_loopback(host: str) -> bool:
    """Whether `host` names this machine only (`localhost`, 127.x.y.z, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, share: bool, auth: str | None) -> str | None:
    """The warning for a studio that others can reach without a login (None when it is private or locked)."""
    if auth or (is_loopback(host) and not share):
        return None
    where = "the public share link" if share else f"port on {host}"
    return (
        f"warning: the studio has no login and anyone who can reach the {where} can download every file in "
        "the workspace and run jobs; set a login with --auth-file PATH or the STUDIO_AUTH environment variable"
    )


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """`"user:password"` as a pair (None when not given).

    Raises:
        ValueError: no colon, or an empty user or password.
    """
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not (sep and user and password):
        raise ValueError("--auth expects USER:PASSWORD")
    return user, password


def use_temp_folder(folder: str | os.PathLike) -> str:
    """Make `folder` gradio's temp folder for this process, unless the user chose one (`GRADIO_TEMP_DIR`).

    Gradio reads `GRADIO_TEMP_DIR` at several moments: each component when it is built (where it writes the
    files it serves: generated images, downloads), the server when it starts (the folder it serves as its own)
    and each upload. All of them must agree, or the server answers 403 for what the components wrote; so this
    runs before the page is built, and a later launch in the same process keeps the first choice.

    Args:
        folder: the folder to use (normally inside the workspace, so uploads stay there too).

    Returns:
        The temp folder gradio uses.
    """
    return os.environ.setdefault("GRADIO_TEMP_DIR", str(folder))


def launch(
    host: str = LOCALHOST,
    port: int | None = None,
    share: bool = False,
    auth: str | None = None,
    workspace: str | os.PathLike | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    models_dir: str | os.PathLike | None = None,
    block: bool = True,
):
    """Build and serve the studio, printing its address.

    Args:
        host: the interface to bind; the default serves this machine only (`0.0.0.0` opens it to the network).
        port: the port; None picks a free one.
        share: also ask gradio for a public share link (needs internet).
        auth: `"user:password"` to require a login.
        workspace: the workspace folder (default `$STUDIO_WORKSPACE` or `~/.cache/adaptation-studio/workspace`).
        max_upload_mb: the most megabytes one upload may hold.
        models_dir: a folder besides the workspace that the page's model and weights boxes may name files in.
        block: serve until interrupted; False returns right after start (for tests).

    Returns:
        The running `gr.Blocks` app (its `.local_url` is the address).
    """
    warning = exposure_warning(host, share, auth)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    credentials = parse_auth(auth)  # a malformed --auth fails before the slow build
    ws = Workspace(workspace or default_workspace(), max_upload_mb)
    use_temp_folder(ws.tmp / "gradio")
    app = build_app(ws.root, max_upload_mb, models_dir)
    port = port or free_port(host if host != "0.0.0.0" else LOCALHOST)
    app.queue(default_concurrency_limit=4)
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=credentials,
        max_file_size=f"{max_upload_mb:g}mb",
        allowed_paths=[str(ws.root)],
        prevent_thread_lock=True,
        quiet=True,
        footer_links=["gradio", "settings"],
    )
    print(
        f"Adaptation Studio is running at {app.local_url} (workspace {ws.root}); Ctrl+C stops it.", flush=True
    )
    if getattr(app, "share_url", None):
        print(f"public link: {app.share_url}", flush=True)
    if block:
        app.block_thread()
    return app
