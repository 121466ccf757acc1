"""The Control tab: the sample dataset, a ControlNet trained on it with previews, what IP-Adapter shows."""

import pytest

from diffusion.control.dataset import read_control_folder
from studio.ui.tabs.control import FROM_DATASET, SAMPLE_PAIRS, SAMPLE_SIZE, sample_dataset, shown_for, start
from studio.ui.workspace import CAPTION_SUFFIXES, IMAGE_SUFFIXES


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
