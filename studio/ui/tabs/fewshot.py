"""Few-shot CLIP tab: labelled uploads and class names, a method, Fit; then drop images to classify."""

from __future__ import annotations

import gradio as gr

import vlm  # noqa: F401  (registers the few-shot methods)
from studio.core import MethodConfig, method_configs

from ..errors import guarded
from ..forms import MethodForm, restore_on_load
from ..tasks.fewshot import classify, labelled_images, parse_classnames
from .progress import ProgressPanel
from .uploads import upload_gallery

TITLE = "Few-shot CLIP"
DEFAULT_METHOD = "tip_adapter"


def method_choices() -> dict[str, type[MethodConfig]]:
    """The few-shot methods the tab offers (every one registered for vlm's few-shot task): name -> config."""
    return method_configs("vlm", "fewshot")


def start(studio, files, classnames, model, pretrained, method, name, options) -> str:
    """Queue a few-shot fit; returns the job id.

    Args:
        studio: the app's `Studio`.
        files: uploaded images named after their class (`star_1.png`), or zips of class folders.
        classnames: class names, comma-separated.
        model: open_clip architecture, `hf-hub:`/`local-dir:` id, or the bundled studio/shapes-clip.
        pretrained: open_clip pretrained tag or checkpoint path (empty: the model's own weights).
        method: a `method_choices()` name.
        name: the classifier's library name.
        options: the method's config values.

    Raises:
        ValueError: bad class names, an image without a class, an invalid option.
    """
    method_choices()[method].from_dict(options)  # a bad option fails here, before anything is queued
    names = parse_classnames(classnames)
    folder = studio.workspace.import_files(files, "fewshot")
    images, labels = labelled_images(folder, names)  # fails now, in the page, on an unlabelled image
    params = {
        "data": str(folder.relative_to(studio.workspace.root)),
        "classnames": names,
        "model": studio.models.check("CLIP model", model) or "studio/shapes-clip",
        "pretrained": studio.models.check("pretrained", pretrained),
        "method": method,
        "options": options,
        "name": name or f"clip-{method}",
    }
    title = f"{method} on {len(images)} images of {len(names)} classes"
    return studio.jobs.submit("fewshot", params, title=title).id


def classifier_choices(studio) -> list[str]:
    """Names of the few-shot classifiers in the library, newest first."""
    return [e.name for e in studio.library.entries(domain="vlm")]


def chosen_classifier(studio, name: str | None) -> str:
    """The classifier to use: `name`, or the newest in the library when none is picked.

    The dropdown fills on a timer tick, so an image dropped right after a fit finishes may arrive before it does.

    Raises:
        ValueError: nothing picked and no classifier in the library.
    """
    if name:
        return name
    if choices := classifier_choices(studio):
        return choices[0]
    raise ValueError("fit a classifier first (or pick one from the library)")


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    with gr.Row():
        files = gr.File(
            label="labelled images (file names start with the class, e.g. star_1.png) or a zip of class folders",
            file_count="multiple", file_types=["image", ".zip"], elem_id="fewshot-files",
        )  # fmt: skip
        classnames = gr.Textbox(
            "",
            label="class names",
            info="Comma-separated, e.g. 'star, heart, crescent, arrow'.",
            elem_id="fewshot-classnames",
        )
    upload_gallery(files, "fewshot-uploads")
    with gr.Row():
        model = gr.Textbox(
            "studio/shapes-clip",
            label="CLIP model",
            info="An open_clip architecture (ViT-B-32), an hf-hub: or local-dir: id, or the bundled studio/shapes-clip.",
        )
        pretrained = gr.Textbox(
            "",
            label="pretrained",
            info="An open_clip pretrained tag (laion2b_s34b_b79k) or a checkpoint file; empty: the model's own weights.",
        )
        method = gr.Dropdown(
            list(method_choices()),
            value=DEFAULT_METHOD,
            label="method",
            elem_id="fewshot-method",
            info="Tip-Adapter fits in seconds without training; the others train on cached image features "
            "(CoCoOp, which runs the text tower for every image, the longest).",
        )
        name = gr.Textbox("", label="classifier name", info="Its name in the library.")
    form = MethodForm(method_choices(), DEFAULT_METHOD)
    fit = gr.Button("Fit", variant="primary", elem_id="fewshot-fit")
    panel = ProgressPanel(studio, ("fewshot",))
    gr.Markdown("### Classify")
    with gr.Row():
        classifier = gr.Dropdown(
            classifier_choices(studio),
            label="classifier",
            info="A fitted classifier from the library; empty: the newest.",
            allow_custom_value=True,
        )
        # The file itself, unconverted: vlm reads it with studio.images (Gradio's RGB conversion whitens 16-bit)
        image = gr.Image(
            type="filepath", image_mode=None, label="image to classify", height=220, elem_id="fewshot-image"
        )
        probabilities = gr.Label(
            label="class probabilities", num_top_classes=10, elem_id="fewshot-probabilities"
        )
    classify_button = gr.Button("Classify")
    seen = gr.State(None)

    def on_fit(files, classnames, model, pretrained, method, name, *values):
        start(studio, files, classnames, model, pretrained, method, name, form.options(method, list(values)))
        return panel.redraw()

    def on_classify(name, picture):
        return classify(studio, studio.classifiers, chosen_classifier(studio, name), picture)

    def on_tick(previous):
        choices = classifier_choices(studio)
        if choices == previous:
            return gr.skip(), previous
        return gr.Dropdown(choices=choices, value=choices[0] if choices else None), choices

    inputs = [files, classnames, model, pretrained, method, name, *form.inputs]
    fit.click(guarded(on_fit), inputs, panel.outputs)
    restore_on_load(panel.job, inputs[1:], lambda p: [
        ", ".join(p["classnames"]), p["model"], p["pretrained"] or "", p["method"], p["name"],
        *form.values(p["method"], p["options"]),
    ])  # fmt: skip
    method.change(form.show, method, list(form.groups.values()), queue=False)
    classify_button.click(guarded(on_classify), [classifier, image], probabilities)
    image.upload(guarded(on_classify), [classifier, image], probabilities)
    timer.tick(on_tick, seen, [classifier, seen], show_progress="hidden", queue=False)
    panel.bind(timer)
