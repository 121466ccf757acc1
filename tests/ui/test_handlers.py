"""The tabs' handlers on the bundled reference models: training jobs, classifying, sampling, the library."""

import json
import re
import zipfile
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from studio.core import method_configs
from studio.ui.errors import guarded
from studio.ui.forms import MethodForm
from studio.ui.tabs import control, fewshot, personalize, vit
from studio.ui.tasks.diffusion import PipelineCache, export_artifact, sample
from studio.ui.tasks.fewshot import classify


def test_vit_job_trains_evaluates_and_publishes_a_loadable_adapter(studio):
    job_id = vit.start(studio, "bundled task", "novel-shapes", None, "studio/shapes-vit", "", "ssf", 1, 1e-2, 32,
                       "", {"init_std": 0.0})  # fmt: skip
    job = studio.jobs.wait(job_id, 240)
    assert job.status == "done", job.message
    assert len(job.losses) == job.step
    entry = studio.library.entries()[0]
    assert (entry.domain, entry.method, entry.base_model) == ("vision", "ssf", "studio/shapes-vit")
    # Two steps already lift 4-class validation accuracy well above chance (0.25); the page shows that number.
    assert job.metrics[-1]["accuracy"] == entry.metrics["val_accuracy"] > 0.4
    assert entry.metrics["test_accuracy"] > 0.4
    config = json.loads((studio.library.path(entry.name) / "adapter_config.json").read_text())
    assert config["method"] == "ssf" and config["metadata"]["classes"] == entry.extra["classes"]
    with zipfile.ZipFile(studio.library.zip(entry.name)) as zf:
        assert {"adapter_model.safetensors", "adapter_config.json"} <= set(zf.namelist())


def test_fewshot_fit_then_classify(studio, fewshot_files, home):
    files, classes, test = fewshot_files
    with pytest.raises(ValueError, match="fit a classifier first"):
        fewshot.chosen_classifier(studio, None)
    job = studio.jobs.wait(fewshot.start(studio, files, ", ".join(classes), "studio/shapes-clip", "", "tip_adapter",
                                         "shapes", {"augment_views": 1}), 120)  # fmt: skip
    assert job.status == "done", job.message
    assert fewshot.classifier_choices(studio) == ["shapes"]
    assert fewshot.chosen_classifier(studio, "") == "shapes"  # an image dropped before the dropdown fills
    assert fewshot.chosen_classifier(studio, "other") == "other"
    probs = classify(studio, studio.classifiers, "shapes", test[0][0])
    assert list(probs) == classes and abs(sum(probs.values()) - 1) < 1e-6
    # The fit learned its labelled uploads: most come back as their own class (chance: 1 in 4).
    predicted = [
        max(p, key=p.get) for p in (classify(studio, studio.classifiers, "shapes", f) for f in files)
    ]
    labels = [Path(f).stem.rsplit("_", 1)[0] for f in files]
    assert sum(map(str.__eq__, predicted, labels)) >= 0.75 * len(files)
    assert list(
        (home / ".cache" / "adaptation-studio" / "clip-features").rglob("*.safetensors")
    )  # default cache


def test_fewshot_unlabelled_image_is_refused_before_queueing(studio, png):
    with pytest.raises(ValueError, match="cannot tell the class of photo.png"):
        fewshot.start(
            studio, [png("photo.png")], "star, heart", "studio/shapes-clip", "", "tip_adapter", "", {}
        )
    assert not studio.jobs.jobs


def test_personalize_previews_then_generate_with_the_token(studio, concept_files):
    options = {"batch_size": 2, "preview_steps": 2}
    job_id = personalize.start(studio, concept_files, "studio/shapes-sd", "textual_inversion", "<my-star>", "shape",
                               2, 2, "star", options)  # fmt: skip
    job = studio.jobs.wait(job_id, 240)
    assert job.status == "done", job.message
    assert [p["step"] for p in job.previews] == [2]
    assert (studio.jobs.job_folder(job.id) / job.previews[0]["path"]).is_file()
    entry = studio.library.get("star")
    assert entry.extra["token"] == "<my-star>"
    assert (studio.library.path("star") / "learned_embeds.safetensors").is_file()

    settings = {"model": "studio/shapes-sd", "prompt": "a <my-star>", "negative_prompt": "", "seed": 3, "steps": 2,
                "guidance": 7.5, "adapters": ["star"]}  # fmt: skip
    cache = PipelineCache()
    (first, caption), (again, _) = sample(studio, cache, settings)[0], sample(studio, cache, settings)[0]
    assert np.array_equal(np.asarray(Image.open(first)), np.asarray(Image.open(again)))  # seeded
    assert "seed 3" in caption and "star" in caption
    record = json.loads(Path(first).with_suffix(".json").read_text())
    assert record["prompt"] == "a <my-star>" and record["adapters"] == ["star"]
    path, note = export_artifact(studio, "star")
    assert path.suffix == ".zip" and "load_textual_inversion" in note


def test_condition_preview_and_bad_control_option(studio, png):
    edges = control.preview_condition(Image.open(png(size=32)), "canny", 100, 200)
    assert edges.mode == "L" and edges.size == (32, 32)
    assert control.preview_condition(None, "canny", 100, 200) is None
    with pytest.raises(ValueError, match="lr must be > 0"):
        control.start(
            studio, [png()], "studio/shapes-sd", "controlnet", "canny", 100, 200, 2, 0, "", {"lr": 0.0}
        )


def test_errors_reach_the_page_as_one_readable_line(studio):
    handler = guarded(lambda: vit.start(studio, "upload", "", None, "studio/shapes-vit", "", "vpt", 1, 1e-2, 8, "",
                                        {"num_tokens": -1}))  # fmt: skip
    with pytest.raises(gr.Error) as err:
        handler()
    assert "num_tokens" in err.value.message and "Traceback" not in err.value.message
    with pytest.raises(gr.Error, match="type a prompt"):
        guarded(sample)(studio, PipelineCache(), {"prompt": " ", "model": "studio/shapes-sd"})
    with pytest.raises(gr.Error, match="no file uploaded"):
        guarded(personalize.start)(studio, [], "studio/shapes-sd", "svdiff", "<x>", "cat", 2, 0, "")


def test_library_rename_delete_and_unknown_names(studio, tmp_path):
    from studio.ui.library import Entry

    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text("{}")
    (source / "checkpoints").mkdir()  # training leftovers are not published
    studio.library.publish(source, Entry("my adapter", "vision", "ssf", "studio/shapes-vit"))
    assert [e.name for e in studio.library.entries()] == ["my-adapter"]
    assert not (studio.library.path("my-adapter") / "checkpoints").exists()
    assert studio.library.rename("my-adapter", "pets v2") == "pets-v2"
    with pytest.raises(ValueError, match="no artifact named"):
        studio.library.get("../jobs")
    with pytest.raises(ValueError, match="export applies to diffusion"):
        export_artifact(studio, "pets-v2")
    studio.library.delete("pets-v2")
    assert studio.library.rows() == []


def test_method_forms_round_trip_every_default_with_help_texts():
    from studio.ui.forms import MethodForm

    with gr.Blocks():
        form = MethodForm(method_configs("vision"), "ssf")
    values = [c.value for c in form.inputs]
    assert all(c.info for c in form.inputs)  # every option has its config's help text
    for method, cls in method_configs("vision").items():
        assert cls(**form.options(method, values)) == cls()
    for bad, message in ((2.5, "whole number"), (float("inf"), "num_tokens must be a finite number")):
        with pytest.raises(ValueError, match=message):
            form.options(
                "vpt",
                [bad if c.label == "num tokens" else v for c, v in zip(form.inputs, values, strict=True)],
            )


def test_build_app_has_every_tab(tmp_path, home):
    from studio.ui import build_app

    app = build_app(tmp_path / "ws")
    labels = {b.label for b in app.blocks.values() if isinstance(b, gr.Tab)}
    assert labels == {"Personalize", "Control", "Generate", "ViT fine-tune", "Few-shot CLIP", "Library"}
    assert (tmp_path / "ws" / "jobs").is_dir() and app.studio.workspace.root == (tmp_path / "ws").resolve()
    default = build_app().studio.workspace.root  # the default workspace, under the (temporary) home
    assert default == (home / ".cache" / "adaptation-studio" / "workspace").resolve()


def test_a_bad_image_among_good_ones_is_named_before_anything_is_queued(studio, concept_files, tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    files = [*concept_files, str(empty), concept_files[0]]  # the bad file is not the first one
    with pytest.raises(ValueError, match=r"^empty\.png is not a readable image \(an empty file\)"):
        personalize.start(studio, files, "studio/shapes-sd", "textual_inversion", "<x>", "shape", 10, 0, "")
    assert not studio.jobs.jobs


@pytest.mark.parametrize(
    ("steps", "preview_every", "message"),
    [
        (1e12, 0, "steps must be ≤ 100,000, got 1e+12"),
        (0, 0, "steps must be ≥ 1, got 0"),
        (2.5, 0, "steps must be a whole number"),
        (10, -1, "preview every must be ≥ 0"),
        (float("nan"), 0, "steps must be a finite number"),
    ],
)
def test_training_numbers_are_bounded_with_the_reason(studio, concept_files, steps, preview_every, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        personalize.start(
            studio, concept_files, "studio/shapes-sd", "svdiff", "<x>", "cat", steps, preview_every, ""
        )
    assert not studio.jobs.jobs


@pytest.mark.parametrize(
    ("batch", "lr", "message"),
    [(1e9, "", "batch size must be ≤ 64"), (4, "-1", "lr must be a finite number > 0, got -1.0"),
     (4, "fast", "lr must be a number or None, got 'fast'")],
)  # fmt: skip
def test_personalize_options_are_bounded(studio, concept_files, batch, lr, message):
    with gr.Blocks():
        form = MethodForm(personalize.methods(), "textual_inversion")
    values = [lr if f.name == "lr" else control.value for _, f, control in form.controls]
    with pytest.raises(ValueError, match=re.escape(message)):
        options = personalize.options_from_form(form, "textual_inversion", batch, values)
        personalize.start(
            studio, concept_files, "studio/shapes-sd", "textual_inversion", "<x>", "", 2, 0, "", options
        )
    assert not studio.jobs.jobs


def test_the_personalize_tab_offers_the_registered_methods(tmp_path):
    from studio.core import method_names
    from studio.ui import build_app

    app = build_app(tmp_path / "ws")
    (radio,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "personalize-method"]
    assert [value for _, value in radio.choices] == method_names("diffusion", "personalize")
    groups = [
        b.label for b in app.blocks.values() if isinstance(b, gr.Accordion) and b.label.endswith(" options")
    ]
    assert {f"{name} options" for name in method_names("diffusion", "personalize")} <= set(groups)


def test_vit_numbers_and_sampling_seed_are_bounded(studio):
    with pytest.raises(ValueError, match=re.escape("learning rate must be > 0, got -1")):
        vit.start(
            studio, "bundled task", "novel-shapes", None, "studio/shapes-vit", "", "ssf", 1, -1, 8, "", {}
        )
    settings = {"model": "studio/shapes-sd", "prompt": "a star", "seed": 1e20, "steps": 2, "guidance": 7.5}
    with pytest.raises(gr.Error, match=re.escape("seed must be ≤ 4,294,967,295, got 1e+20")):
        guarded(sample)(studio, PipelineCache(), settings)
    with pytest.raises(gr.Error, match="seed must be ≥ 0"):
        guarded(sample)(studio, PipelineCache(), {**settings, "seed": -1})
    assert not studio.jobs.jobs


def test_library_delete_asks_first_and_leaves_nothing_else_selected(studio, tmp_path):
    from studio.ui.library import Entry
    from studio.ui.tabs import library

    source = tmp_path / "adapter"
    source.mkdir()
    (source / "adapter_config.json").write_text("{}")
    for name in ("older", "newer"):
        studio.library.publish(source, Entry(name, "vision", "ssf", "studio/shapes-vit"))
    row, question, pending = library.ask_delete("older")
    assert row.visible is True and "older" in question and pending == "older"
    assert [e.name for e in studio.library.entries()] == ["newer", "older"]  # nothing deleted yet
    new_name, row, pending = library.select("newer")  # a new pick withdraws the question
    assert new_name == "newer" and row.visible is False and pending is None
    table, choices, new_name, note, row, pending = library.confirm_delete(studio, "older")
    assert [e.name for e in studio.library.entries()] == ["newer"] and note == "deleted older"
    assert choices.value is None and new_name == "" and row.visible is False and pending is None
    assert [r[0] for r in table] == ["newer"]
    gone = library.refreshed_choices(studio, "older")  # a poll clears a deleted pick, never jumps to another
    assert gone.constructor_args["value"] is None and gone.constructor_args["choices"] == ["newer"]
    for read in (None, "newer"):  # a poll's (maybe stale) read of the pick is never written back
        assert "value" not in library.refreshed_choices(studio, read).constructor_args
    with pytest.raises(ValueError, match="press Delete first"):
        library.confirm_delete(studio, None)
    with pytest.raises(ValueError, match="pick an artifact to delete"):
        library.ask_delete(None)
    _, choices, new_name, _ = library.rename(studio, "newer", "renamed")
    assert choices.value == new_name == "renamed"


def test_a_reload_fills_the_personalize_form_from_the_job_it_shows(
    studio, concept_files, tmp_path, monkeypatch
):
    from dataclasses import asdict

    from studio.core import write_json
    from studio.ui import build_app
    from studio.ui.jobs import Job

    typed = ["studio/shapes-sd", "svdiff", "<kitty>", "cat", 7, 0, "my-kitty", 2, "12"]
    chosen = {"lr": 3e-3, "train_text_encoder": True, "scale": 0.5}
    sent = {}
    monkeypatch.setattr(
        studio.jobs,
        "submit",
        lambda kind, params, title: sent.update(params) or Job("j", kind, title, params),
    )
    personalize.start(studio, concept_files, *typed[:7], {"batch_size": typed[7], **chosen}, typed[8])
    workspace = tmp_path / "reloaded"
    write_json(
        workspace / "jobs" / "j" / "job.json",
        asdict(Job("j", "personalize", "svdiff", sent, status="running")),
    )
    fill = _page_load_handler(build_app(workspace))
    restored = fill.fn()
    assert restored[:9] == typed
    options = {
        o.label: value for o, value in zip(fill.outputs[9:], restored[9:], strict=True) if value != gr.skip()
    }
    assert options == {"lr": 3e-3, "train text encoder": True, "scale": 0.5}  # other methods' stay untouched
    labels = fill.outputs
    untouched = _page_load_handler(build_app(tmp_path / "fresh")).fn()  # no job: the defaults stay
    assert untouched == [gr.skip()] * len(labels)


def _page_load_handler(app, label="token"):
    """The page-load handler that fills the form holding a control labelled `label`."""
    (handler,) = [
        f
        for f in app.fns.values()
        if any(event == "load" for _, event in f.targets) and label in [o.label for o in f.outputs]
    ]
    return handler


def test_a_reload_fills_the_vit_form_and_its_method_options_from_the_job(studio, tmp_path):
    from dataclasses import asdict

    from studio.core import write_json
    from studio.ui import build_app
    from studio.ui.jobs import Job

    params = {"data": "uploads/x", "model": "studio/shapes-vit", "weights": "", "method": "vpt",
              "options": {"num_tokens": 7, "deep": True}, "epochs": 3, "lr": 0.05, "batch_size": 8, "name": "mine"}  # fmt: skip
    write_json(
        tmp_path / "ws" / "jobs" / "j" / "job.json", asdict(Job("j", "vit", "vpt", params, status="done"))
    )
    fill = _page_load_handler(build_app(tmp_path / "ws"), "backbone")
    restored = fill.fn()
    assert restored[:7] == ["studio/shapes-vit", "", "vpt", 3, 0.05, 8, "mine"]
    options = {
        o.label: value for o, value in zip(fill.outputs[7:], restored[7:], strict=True) if value != gr.skip()
    }
    assert options == {"num tokens": 7, "deep": True}  # vpt's own controls; other methods' stay untouched


def test_model_boxes_cannot_make_the_server_read_outside_its_folders(studio, fewshot_files, concept_files):
    files, classes, _ = fewshot_files
    with pytest.raises(ValueError, match=r"^pretrained: '/etc/passwd' is outside the folders"):
        fewshot.start(
            studio, files, ", ".join(classes), "studio/shapes-clip", "/etc/passwd", "tip_adapter", "", {}
        )
    with pytest.raises(ValueError, match=r"^weights: '/etc/hostname' is outside"):
        vit.start(studio, "bundled task", "novel-shapes", None, "studio/shapes-vit", "/etc/hostname", "ssf", 1, 0.01,
                  8, "", {})  # fmt: skip
    with pytest.raises(ValueError, match=r"^base model: '/etc' is outside"):
        personalize.start(studio, concept_files, "/etc", "svdiff", "<x>", "cat", 2, 0, "")
    settings = {"model": "local-dir:/", "prompt": "a star", "seed": 0, "steps": 2, "guidance": 7.5}
    with pytest.raises(gr.Error, match="model: 'local-dir:/' is outside"):
        guarded(sample)(studio, PipelineCache(), settings)
    assert not studio.jobs.jobs


@pytest.mark.parametrize(
    ("method", "options", "inside", "loader"),
    [
        ("difffit", {}, {"unet/diffusion_pytorch_model.safetensors"}, "UNet2DConditionModel.from_pretrained"),
        ("svdiff", {"train_text_encoder": True},
         {"unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"}, "CLIPTextModel"),
        ("lora", {}, {"pytorch_lora_weights.safetensors"}, "load_lora_weights"),
    ],
)  # fmt: skip
def test_export_offers_what_stock_diffusers_loads(studio, tmp_path, method, options, inside, loader):
    import diffusion
    from studio.ui.library import Entry
    from tests.diffusion.tiny import concept_images

    pipe = diffusion.load_pipeline("studio/shapes-sd", disable_progress_bar=True)
    art = diffusion.personalize(pipe, concept_images(1), method, token="<q>", steps=1, batch_size=1,
                                output_dir=tmp_path / method, progress=False, **options)  # fmt: skip
    studio.library.publish(art, Entry(method, "diffusion", method, "studio/shapes-sd"))
    path, note = export_artifact(studio, method)
    # merged components for DiffFit and SVDiff (its text-encoder shifts too), the LoRA file as it is
    assert inside <= set(zipfile.ZipFile(path).namelist())
    assert loader in note
