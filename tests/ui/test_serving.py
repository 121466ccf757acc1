"""What the server hands the browser: every file a component writes is one the server then serves (HTTP 200).

Gradio's components write the files they show (generated images, condition previews, downloads) into its
temp folder when they are built, and the server decides which folders it serves when it starts; the studio
must make the two agree however it is started, with or without `GRADIO_TEMP_DIR` set by the user.
"""

import io
import urllib.request
from pathlib import Path

import gradio as gr
import pytest
from gradio.processing_utils import move_files_to_cache
from PIL import Image

from studio.ui import launch


def _urls(payload) -> list[str]:
    if isinstance(payload, dict):
        own = [payload["url"]] if payload.get("url") and payload.get("path") else []
        return own + [u for v in payload.values() for u in _urls(v)]
    if isinstance(payload, list):
        return [u for v in payload for u in _urls(v)]
    return []


def _served_urls(app, tmp_path) -> list[str]:
    """The URLs the page's own Image, Gallery and File components hand the browser for a handler's result."""
    blocks = list(app.blocks.values())
    picture = Image.new("RGB", (24, 16), (200, 30, 30))
    archive = tmp_path / "adapter.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\0" * 18)  # an empty zip
    urls = []
    for kind, value in ((gr.Image, picture), (gr.Gallery, [(picture, "step 1")]), (gr.File, str(archive))):
        component = next(b for b in blocks if isinstance(b, kind))
        # What gradio does with a handler's return value before it answers the browser.
        payload = move_files_to_cache(component.postprocess(value), component, postprocess=True)
        urls += _urls(payload.model_dump() if hasattr(payload, "model_dump") else payload)
    assert len(urls) == 3
    return urls


@pytest.mark.parametrize("user_temp", [False, True], ids=["default", "user-set-GRADIO_TEMP_DIR"])
def test_every_file_a_component_writes_is_served(tmp_path, monkeypatch, user_temp):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "user-temp"))  # recorded, so the test restores it
    if not user_temp:
        monkeypatch.delenv("GRADIO_TEMP_DIR")
    app = launch(workspace=tmp_path / "workspace", block=False)
    try:
        for url in _served_urls(app, tmp_path):
            path = url.split("file=", 1)[1]
            with urllib.request.urlopen(app.local_url.rstrip("/") + url, timeout=30) as response:
                assert response.status == 200, url
                body = response.read()
            if not path.endswith(".zip"):
                assert Image.open(io.BytesIO(body)).size == (24, 16)
            if user_temp:
                assert Path(path).is_relative_to(tmp_path / "user-temp")
            else:
                assert Path(path).is_relative_to(app.studio.workspace.root)
    finally:
        app.close()
