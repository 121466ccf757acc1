"""Personalize tab: a few images of a concept, Textual Inversion or SVDiff, a live loss plot and previews."""

from __future__ import annotations

import gradio as gr

import diffusion

from ..errors import guarded
from ..forms import number, restore_on_load
from ..tasks.diffusion import PERSONALIZE_METHODS
from ..workspace import check_upload, list_images
from .progress import ProgressPanel
from .training import base_model_box, run_controls, run_params
from .uploads import upload_gallery

TITLE = "Personalize"
MAX_IMAGES = 50
DEFAULT_BATCH = 4
MAX_BATCH = 64
MAX_VECTORS = 16
TI_HELP = diffusion.TextualInversionConfig.help()


def start(studio, files, model, method, token, init_word, steps, preview_every, name, options=None) -> str:
    """Queue a personalization job; returns its id.

    Args:
        studio: the app's `Studio`.
        files: uploaded images (or zips of images) of the concept; 3–20 work best.
        model: the base pipeline (bundled name, local folder or file, hub id).
        method: `"textual_inversion"` or `"svdiff"`.
        token: the new token, e.g. `<my-cat>`.
        init_word: the word the token starts from (Textual Inversion) or the class word (SVDiff).
        steps: training steps.
        preview_every: steps between preview samples (0: none).
        name: the artifact's library name.
        options: more `diffusion.personalize` keywords (`batch_size`, `lr`, `num_vectors`, ...).

    Raises:
        ValueError: no or too many images, an empty token, an unknown method.
    """
    if method not in PERSONALIZE_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(PERSONALIZE_METHODS)}")
    token = (token or "").strip()
    if not token or any(c.isspace() for c in token):
        raise ValueError("the token must be one word without spaces, e.g. <my-cat>")
    folder = studio.workspace.import_files(files, "concept")
    count = len(list_images(folder))
    if not 1 <= count <= MAX_IMAGES:
        raise ValueError(
            f"upload between 1 and {MAX_IMAGES} images of the concept (3–20 work best); got {count}"
        )
    params = run_params(studio, folder, model, method, steps, preview_every, name, options)
    params.update(token=token, init_word=(init_word or "").strip())
    params["name"] = name or f"{method}-{token.strip('<>')}"
    return studio.jobs.submit("personalize", params, title=f"{method} {token} on {count} images").id


def options_from_form(method: str, batch_size, lr, vectors, text_encoder: bool) -> dict:
    """The `diffusion.personalize` options the tab's option controls set, checked before anything is queued.

    Args:
        method: `"textual_inversion"` or `"svdiff"`.
        batch_size: images per step.
        lr: learning rate; 0 keeps the method's default.
        vectors: Textual Inversion's vectors per token.
        text_encoder: SVDiff: also shift the text encoder.

    Raises:
        ValueError: a number out of bounds (one line naming it).
    """
    options = {"batch_size": number("batch size", batch_size, minimum=1, maximum=MAX_BATCH, whole=True)}
    lr = number("learning rate", lr or 0, minimum=0, maximum=1)
    if lr:
        options["lr"] = lr
    if method == "textual_inversion":
        options["num_vectors"] = number(
            "vectors per token", vectors, minimum=1, maximum=MAX_VECTORS, whole=True
        )
    else:
        options["train_text_encoder"] = bool(text_encoder)
    return options


def form_values(params: dict) -> list:
    """A job's parameters as the values of the tab's controls (all but the upload), in `build`'s order."""
    options = params.get("options", {})
    return [
        params["model"], params["method"], params["token"], params["init_word"], params["steps"],
        params["preview_every"], params["name"], options.get("batch_size", DEFAULT_BATCH),
        options.get("lr", 0), options.get("num_vectors", 1), options.get("train_text_encoder", False),
    ]  # fmt: skip


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    files = gr.File(
        label="images of your concept (3–20 work best), or a zip",
        file_count="multiple",
        file_types=["image", ".zip"],
        elem_id="personalize-files",
    )
    upload_gallery(files, "personalize-uploads")
    with gr.Row():
        model = base_model_box()
        method = gr.Radio(
            list(PERSONALIZE_METHODS),
            value="textual_inversion",
            label="method",
            info="Textual Inversion learns a new word (a few kB); SVDiff also shifts the UNet's singular values (a few hundred kB).",
        )
    with gr.Row():
        token = gr.Textbox("<my-concept>", label="token", info=TI_HELP["token"])
        init_word = gr.Textbox(
            "shape",
            label="init / class word",
            info="Textual Inversion: the existing word the token starts from. SVDiff: the class word of the concept (e.g. 'cat').",
        )
        steps, preview_every, name = run_controls("personalize")
    with gr.Accordion("options", open=False), gr.Row():
        batch_size = gr.Number(
            DEFAULT_BATCH, label="batch size", precision=0, minimum=1, info="Images per step."
        )
        lr = gr.Number(
            0,
            label="learning rate",
            info="0: the method's default (5e-4 × batch for Textual Inversion, 1e-3 for SVDiff).",
        )
        num_vectors = gr.Number(
            1, label="vectors per token", precision=0, minimum=1, info=TI_HELP["num_vectors"]
        )
        text_encoder = gr.Checkbox(
            False,
            label="SVDiff: shift the text encoder too",
            info="Also train spectral shifts of the text encoder's weights (SVDiff only).",
        )
    train = gr.Button("Train", variant="primary", elem_id="personalize-train")
    panel = ProgressPanel(studio, ("personalize",), previews=True)

    def on_train(
        files, model, method, token, init_word, steps, preview_every, name, batch_size, lr, vectors, te
    ):
        options = options_from_form(method, batch_size, lr, vectors, te)
        start(studio, files, model, method, token, init_word, steps, preview_every, name, options)
        return panel.redraw()

    inputs = [
        files,
        model,
        method,
        token,
        init_word,
        steps,
        preview_every,
        name,
        batch_size,
        lr,
        num_vectors,
        text_encoder,
    ]
    restore_on_load(panel.job, inputs[1:], form_values)
    files.upload(guarded(check_upload), files, None, show_progress="hidden")
    train.click(guarded(on_train), inputs, panel.outputs)
    panel.bind(timer)
