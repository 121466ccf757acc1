"""The browser tests' harness: the studio started as a user starts it, and checks on what the page receives.

`serve_studio` runs the installed `studio` console script in a subprocess, on a fresh workspace, with the
environment a user has: no `GRADIO_TEMP_DIR` or other variable a user would not set. Only `HOME` points at a
temporary folder, so the run's caches (gradio's, the model caches) stay isolated from the machine's; that is
the one liberty the harness takes. Chromium is Debian's, driven by Playwright (nothing is downloaded).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
START_TIMEOUT_S = 180
# Variables that change where gradio or the studio keep files; a user who never heard of them has none set.
NOT_A_USERS = ("GRADIO_TEMP_DIR", "STUDIO_WORKSPACE", "GRADIO_SERVER_PORT", "GRADIO_SERVER_NAME")


def studio_command() -> str:
    """The installed `studio` console script of the environment running the tests."""
    script = Path(sys.executable).parent / "studio"
    return str(script) if script.is_file() else shutil.which("studio") or "studio"


@contextmanager
def serve_studio(folder: Path) -> Iterator[str]:
    """Run `studio --workspace folder/workspace` as a user does; yields the address it prints.

    Args:
        folder: a fresh folder for the workspace, the isolated `HOME` and the server's log.
    """
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_USERS}
    env["HOME"] = str(folder / "home")
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "studio.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [studio_command(), "--workspace", str(folder / "workspace")],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=folder,
        )  # fmt: skip
    try:
        deadline, url = time.monotonic() + START_TIMEOUT_S, None
        while url is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"studio did not start:\n{log_path.read_text()}")
            found = re.search(r"running at (http://127\.0\.0\.1:\d+/)", log_path.read_text())
            url = found.group(1) if found else time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def fetch_ok(page, url: str) -> bytes:
    """GET `url` from the page's own context (its cookies and origin) and insist on HTTP 200 and a body."""
    response = page.request.get(url)
    assert response.status == 200, f"{url} answered {response.status}: {response.text()[:200]}"
    body = response.body()
    assert body, f"{url} answered an empty body"
    return body


def served_images(page, selector: str = "body") -> list[Image.Image]:
    """Every `<img>` under `selector` fetched as the browser would, each decoded (HTTP 200, a real image)."""
    sources = page.eval_on_selector_all(f"{selector} img", "els => els.map(e => e.currentSrc || e.src)")
    images = []
    for src in dict.fromkeys(s for s in sources if s and not s.startswith("data:")):
        body = fetch_ok(page, src)
        if src.split("?")[0].endswith(".svg"):
            continue  # gradio's own icons
        images.append(Image.open(io.BytesIO(body)))
        images[-1].load()
    return images


def served_downloads(page, selector: str = "body") -> list[bytes]:
    """Every download link under `selector` fetched as the browser would (HTTP 200, a body)."""
    links = page.eval_on_selector_all(
        f"{selector} a[download], {selector} a[href*='/file=']", "els => els.map(e => e.href)"
    )
    return [fetch_ok(page, href) for href in dict.fromkeys(h for h in links if h)]
