"""The Library tab in real headless Chromium: rename, download (HTTP 200, a zip), delete with confirmation.

The server is the installed `studio` console script in a subprocess, on a fresh workspace holding one
artifact, with the environment a user has (no `GRADIO_TEMP_DIR`; only `HOME` points at a temporary folder).
"""

import io
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from studio.ui.library import Entry, Library
from studio.ui.workspace import Workspace

TIMEOUT_MS = 120_000
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

sync_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
expect = sync_api.expect


@pytest.fixture
def studio_url(tmp_path):
    """`studio --workspace W` started as a user starts it, W holding one published adapter; yields its address."""
    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text('{"method": "ssf"}')
    workspace = Workspace(tmp_path / "workspace")
    Library(workspace).publish(source, Entry("first", "vision", "ssf", "studio/shapes-vit"))
    env = {k: v for k, v in os.environ.items() if k not in ("GRADIO_TEMP_DIR", "STUDIO_WORKSPACE")}
    env["HOME"] = str(tmp_path / "home")
    script = Path(sys.executable).parent / "studio"
    log = tmp_path / "studio.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [str(script), "--workspace", str(workspace.root)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline, found = time.monotonic() + TIMEOUT_MS / 1000, None
        while found is None:
            assert proc.poll() is None and time.monotonic() < deadline, f"no start:\n{log.read_text()}"
            found = re.search(r"running at (http://127\.0\.0\.1:\d+/)", log.read_text())
            time.sleep(0.5)
        yield found.group(1), workspace
    finally:
        proc.terminate()
        proc.wait(30)


def test_rename_download_and_delete_with_confirmation(studio_url, tmp_path):
    url, workspace = studio_url
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        expect.set_options(timeout=TIMEOUT_MS)
        page.goto(url)
        page.get_by_role("tab", name="Library").click()

        page.locator("#library-artifact input").click()
        page.get_by_role("option", name="first").click()
        new_name = page.locator("#library-new-name textarea, #library-new-name input").first
        expect(new_name).to_have_value("first")  # the selection fills "new name"
        new_name.fill("renamed")
        page.locator("#library-rename").click()
        expect(page.locator("#library-note")).to_contain_text("renamed first to renamed")

        page.locator("#library-download").click()
        link = page.locator("#library-file a[href]").first
        expect(link).to_be_visible()
        response = page.request.get(link.get_attribute("href"))
        assert response.status == 200
        assert "adapter_config.json" in zipfile.ZipFile(io.BytesIO(response.body())).namelist()

        page.locator("#library-delete").click()
        expect(page.locator("#library-confirm-delete")).to_be_visible()
        assert (workspace.artifacts / "renamed").is_dir()  # asking deletes nothing
        page.locator("#library-confirm-delete").click()
        expect(page.locator("#library-note")).to_contain_text("deleted renamed")
        expect(page.locator("#library-confirm-delete")).to_be_hidden()
        expect(new_name).to_have_value("")
        assert not (workspace.artifacts / "renamed").exists()
        browser.close()
