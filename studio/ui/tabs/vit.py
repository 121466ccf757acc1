"""ViT fine-tune tab: a bundled task or an uploaded ImageFolder zip, a backbone, a method, a live accuracy curve."""

from __future__ import annotations

import gradio as gr

from studio.core import method_configs

from ..confusion import result_markdown
from ..errors import guarded
from ..forms import MethodForm, number, restore_on_load
from ..tasks.vit import BUNDLED_TASKS, CONFUSION_PICTURE, RESULT_FILE, bundled_dataset, read_result
from .progress import ProgressPanel

TITLE = "ViT fine-tune"
SOURCES = ("bundled task", "upload")


def start(studio, source, task, files, model, weights, method, epochs, lr, batch_size, name, options) -> str:
    """Queue a ViT fine-tuning job; returns its id.

    Args:
        studio: the app's `Studio`.
        source: `"bundled task"` or `"upload"`.
        task: the bundled task's name.
        files: uploaded zip(s) of an ImageFolder (`class/image`, optionally under `train/`, `val/`, `test/`).
        model: timm architecture or bundled model name.
        weights: empty (pretrained), `none` (random init) or a local checkpoint path.
        method: a `method_configs("vision")` name.
        epochs: passes over the training split.
        lr: peak learning rate.
        batch_size: images per step.
        name: the library name of the adapter.
        options: the method's config values.

    Raises:
        ValueError: bad settings (an invalid option, no upload, a bad zip).
    """
    method_configs("vision")[method](**options)  # a bad option fails here, before anything is queued
    if not (model or "").strip():
        raise ValueError("name a backbone, e.g. studio/shapes-vit or vit_small_patch16_224")
    if source == "upload":
        data = studio.workspace.import_files(files, "vit-data")
        label = "upload"
    else:
        data, label = bundled_dataset(studio, task), task
    params = {
        "data": str(data.relative_to(studio.workspace.root)),
        "model": studio.models.check("backbone", model),
        "weights": studio.models.check("weights", weights, keywords=("none",)),
        "method": method,
        "options": options,
        "epochs": number("epochs", epochs, minimum=1, maximum=10_000, whole=True),
        "lr": number("learning rate", lr, above=0, maximum=1),
        "batch_size": number("batch size", batch_size, minimum=1, maximum=4096, whole=True),
        "name": name or f"vit-{method}-{label}",
    }
    return studio.jobs.submit("vit", params, title=f"{method} on {label}").id


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    with gr.Row():
        source = gr.Radio(
            list(SOURCES),
            value=SOURCES[0],
            label="data",
            info="A bundled task from the image world, or your own images.",
        )
        task = gr.Dropdown(
            list(BUNDLED_TASKS), value="novel-shapes", label="bundled task",
            info="; ".join(f"{k}: {v[1]}" for k, v in BUNDLED_TASKS.items()),
        )  # fmt: skip
        files = gr.File(
            label="image-folder zip (class/image.png, optionally inside train/ val/ test/)",
            file_count="multiple", file_types=[".zip"],
        )  # fmt: skip
    with gr.Row():
        model = gr.Textbox(
            "studio/shapes-vit",
            label="backbone",
            info="A timm architecture (vit_base_patch16_224), an hf-hub: id, or the bundled studio/shapes-vit.",
        )
        weights = gr.Textbox(
            "",
            label="weights",
            info="Empty: the model's pretrained weights (bundled, or timm's from the hub); 'none': random init; or a local .safetensors file.",
        )
        method = gr.Dropdown(
            list(method_configs("vision")),
            value="ssf",
            label="method",
            info="VPT, AdaptFormer and SSF train a few hundred kB; the others are baselines.",
        )
    form = MethodForm(method_configs("vision"), "ssf")
    with gr.Row():
        epochs = gr.Number(
            5,
            label="epochs",
            precision=0,
            minimum=1,
            info="Passes over the training images.",
            elem_id="vit-epochs",
        )
        lr = gr.Number(
            1e-2,
            label="learning rate",
            info="Peak learning rate (warmup, then cosine decay); SSF and VPT like 1e-2.",
        )
        batch_size = gr.Number(
            16, label="batch size", precision=0, minimum=1, info="Images per optimizer step."
        )
        name = gr.Textbox(
            "", label="adapter name", info="Its name in the library (default: method and data)."
        )
    train = gr.Button("Train", variant="primary", elem_id="vit-train")
    panel = ProgressPanel(studio, ("vit",), metric_plot=True)
    with gr.Row():
        result = gr.Markdown("", elem_id="vit-result")
        confusion = gr.Image(
            label="confusion matrix (rows: true class, columns: predicted)", type="filepath", interactive=False,
            visible=False, format="png", elem_id="vit-confusion",
        )  # fmt: skip
    with gr.Row():
        download = gr.Button("Download the adapter", size="sm", elem_id="vit-download")
        file = gr.File(label="adapter (zip)", interactive=False, elem_id="vit-file")
    shown = gr.State(None)

    def on_train(source, task, files, model, weights, method, epochs, lr, batch_size, name, *values):
        options = form.options(method, list(values))
        start(studio, source, task, files, model, weights, method, epochs, lr, batch_size, name, options)
        return panel.redraw()

    def on_download():
        job = panel.job()
        if job is None or not job.artifact:
            raise ValueError("no finished fine-tuning yet")
        return str(studio.library.zip(studio.workspace.inside(job.artifact).name))

    def on_tick(previous):
        job = panel.job()
        folder = None if job is None else studio.jobs.job_folder(job.id)
        written = job is not None and job.status == "done" and (folder / RESULT_FILE).is_file()
        key = (job and job.id, written)
        if key == previous:  # the result is read once, when it appears, not on every tick
            return gr.skip(), gr.skip(), previous
        record = read_result(folder) if written else None
        if record is None:
            return "", gr.Image(value=None, visible=False), key
        text = result_markdown(record["split"], record["confusion"], record["classes"])
        return text, gr.Image(value=str(folder / CONFUSION_PICTURE), visible=True), key

    inputs = [source, task, files, model, weights, method, epochs, lr, batch_size, name, *form.inputs]
    restore_on_load(panel.job, inputs[3:], lambda p: [
        p["model"], p["weights"], p["method"], p["epochs"], p["lr"], p["batch_size"], p["name"],
        *form.values(p["method"], p["options"]),
    ])  # fmt: skip
    train.click(guarded(on_train), inputs, panel.outputs)
    method.change(form.show, method, list(form.groups.values()), queue=False)
    download.click(guarded(on_download), None, file)
    timer.tick(on_tick, shown, [result, confusion, shown], show_progress="hidden", queue=False)
    panel.bind(timer)
