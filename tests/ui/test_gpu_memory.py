"""The training tabs' "GPU memory" choice: offered on both tabs, queued with the job, handed to the trainer."""

import pytest

from studio.ui.tabs import personalize
from studio.ui.tabs.training import GPU_MEMORY_LABELS
from studio.ui.tasks import diffusion as tasks


def test_both_training_tabs_offer_the_presets(tmp_path):
    from studio.ui import build_app

    app = build_app(tmp_path / "ws")
    for kind in ("personalize", "control"):
        (choice,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == f"{kind}-gpu-memory"]
        assert [value for _, value in choice.choices] == ["auto", "24", "16", "12", "8", "none"]
    assert [label for label, _ in GPU_MEMORY_LABELS][1] == "≥ 24 GB"


def test_the_choice_travels_with_the_job_to_the_trainer(studio, concept_files, monkeypatch):
    from studio.ui.jobs import Job

    sent = {}
    monkeypatch.setattr(
        studio.jobs,
        "submit",
        lambda kind, params, title: sent.update(params) or Job("j", kind, title, params),
    )
    personalize.start(
        studio, concept_files, "studio/shapes-sd", "textual_inversion", "<x>", "", 2, 0, "", None, "12"
    )
    assert sent["gpu_memory"] == "12"
    params = sent

    class Ctx:
        output_dir, callback, resume = "out", None, False

    Ctx.params = params
    assert tasks._training_extras(Ctx)["memory"] == "12"


def test_an_unknown_preset_is_refused_before_queueing(studio, concept_files):
    with pytest.raises(ValueError, match="gpu_memory='6'"):
        personalize.start(
            studio, concept_files, "studio/shapes-sd", "textual_inversion", "<x>", "", 2, 0, "", None, "6"
        )
    assert not studio.jobs.jobs
