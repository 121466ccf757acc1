"""Personalize tab: a few images of a concept, Textual Inversion or SVDiff, a live loss plot and previews."""

from __future__ import annotations

import gradio as gr

import diffusion

from ..errors import guarded
from ..tasks.diffusion import PERSONALIZE_METHODS
from ..workspace import list_images
from .progress import ProgressPanel
from .training import base_model_box, run_controls, run_params
from .uploads import upload_gallery

TITLE = "Personalize"
MAX_IMAGES = 50
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
        batch_size = gr.Number(4, label="batch size", precision=0, minimum=1, info="Images per step.")
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
        options = {"batch_size": int(batch_size), **({"lr": float(lr)} if lr else {})}
        options.update(
            {"num_vectors": int(vectors)} if method == "textual_inversion" else {"train_text_encoder": te}
        )
        job = start(studio, files, model, method, token, init_word, steps, preview_every, name, options)
        return panel.render(studio.jobs.get(job))

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
    train.click(guarded(on_train), inputs, panel.outputs)
    panel.bind(timer)
