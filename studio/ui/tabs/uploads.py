"""Thumbnails of what the user uploaded, so a training tab shows the images it will learn from."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..workspace import IMAGE_SUFFIXES

MAX_THUMBNAILS = 48  # a big upload shows its first images only


def thumbnails(files: list[str] | None) -> list[tuple[str, str]]:
    """`(path, file name)` of the uploaded images among `files` (zips and captions are skipped)."""
    images = [Path(f) for f in files or [] if Path(f).suffix.lower() in IMAGE_SUFFIXES]
    return [(str(p), p.name) for p in images[:MAX_THUMBNAILS]]


def upload_gallery(files: gr.File, elem_id: str) -> gr.Gallery:
    """A gallery under `files` that shows the uploaded images (hidden while there are none)."""
    gallery = gr.Gallery(
        label="uploaded images", columns=8, height="auto", object_fit="contain", fit_columns=False,
        visible=False, interactive=False, elem_id=elem_id,
    )  # fmt: skip

    def show(uploaded):
        shown = thumbnails(uploaded)
        return gr.Gallery(value=shown, visible=bool(shown))

    files.change(show, files, gallery, show_progress="hidden")
    return gallery
