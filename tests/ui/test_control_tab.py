"""The Control tab: the sample dataset, a ControlNet trained on it with previews, what IP-Adapter shows."""

from types import SimpleNamespace

import gradio as gr
import pytest

from diffusion.control.dataset import read_control_folder
from studio.core import method_names
from studio.ui.tabs import control
from studio.ui.tabs.control import FROM_DATASET, SAMPLE_PAIRS, SAMPLE_SIZE, sample_dataset, shown_for, start
from studio.ui.workspace import CAPTION_SUFFIXES, IMAGE_SUFFIXES
from tests.diffusion.toy_control import register_toy_control


def test_the_sample_data_is_captioned_pairs_with_conditions(studio):
    path = sample_dataset(studio)
    assert sample_dataset(studio) == path  # written once, then reused
    folder = studio.workspace.import_files([path], "control-data", IMAGE_SUFFIXES + CAPTION_SUFFIXES)
    examples = read_control_folder(folder, SAMPLE_SIZE)  # the dataset's own conditions/, as training reads it
    assert len(examples) == SAMPLE_PAIRS
    assert all(e.condition is not None and e.condition.size == e.image.size for e in examples)
    assert len({e.caption for e in examples}) > 1 and all(e.caption.startswith("a") for e in examples)


@pytest.mark.slow  # minutes on a busy CPU; the browser test trains on the sample data with a preview by default
@pytest.mark.parametrize("condition", ["canny", FROM_DATASET])
def test_a_controlnet_trains_on_the_sample_data_with_previews(studio, condition):
    job_id = start(
        studio, [sample_dataset(studio)], "studio/shapes-sd", "controlnet", condition, 100, 200, 2, 1, ""
    )
    job = studio.jobs.wait(job_id, timeout=300)
    assert job.status == "done", job.message
    assert [p["step"] for p in job.previews] == [1] * 3 + [2] * 3  # the condition beside two samples
    assert "(canny)" in job.title if condition == "canny" else "dataset conditions" in job.title


def test_ip_adapter_shows_no_condition_or_canny_controls(studio):
    condition, low, high = shown_for("ip_adapter", "canny")
    assert condition.visible is low.visible is high.visible is False
    assert all(box.visible for box in shown_for("controlnet", "canny"))
    assert shown_for("t2i_adapter", "sketch")[1].visible is False


def test_the_method_choices_are_the_registered_control_methods(studio, monkeypatch, scratch_registry):
    """A newly registered control method shows in the tab's choices with its options' form, and is queued."""
    toy = register_toy_control()
    with gr.Blocks() as blocks:
        control.build(studio, gr.Timer())
    radio = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "control-method")
    choices = [value for _, value in radio.choices]
    assert choices == method_names("diffusion", "control") and toy in choices
    labels = {getattr(b, "label", None) for b in blocks.blocks.values()}
    assert "toy option" in labels  # the toy config's own field has its form control
    assert shown_for(toy, "canny")[0].visible  # a condition-guided method shows the condition box
    submitted = []
    monkeypatch.setattr(studio.jobs, "submit", lambda kind, params, title: submitted.append(params) or job)
    job = SimpleNamespace(id="queued")
    data = [sample_dataset(studio)]
    assert (
        start(studio, data, "studio/shapes-sd", toy, "canny", 100, 200, 1, 0, "", {"toy_option": 2})
        == "queued"
    )
    assert submitted[0]["method"] == toy and submitted[0]["options"] == {"toy_option": 2}
    with pytest.raises(ValueError, match="toy_option must be an integer"):
        start(studio, data, "studio/shapes-sd", toy, "canny", 100, 200, 1, 0, "", {"toy_option": "x"})
    with pytest.raises(ValueError, match="unknown control method 'lora'"):
        start(studio, data, "studio/shapes-sd", "lora", "canny", 100, 200, 1, 0, "")
