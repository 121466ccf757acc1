"""The Personalize tab's more-concepts rows: each row's images, token and class word reach
`diffusion.personalize(concepts=...)`, a token used twice is refused before anything is queued, and a reload
shows the job's rows."""

from dataclasses import asdict
from types import SimpleNamespace

import pytest

from studio.core import write_json
from studio.ui import build_app
from studio.ui.jobs import Job
from studio.ui.tabs import personalize
from studio.ui.tasks import diffusion as tasks
from tests.ui.test_handlers import _page_load_handler


def _submitted(studio, monkeypatch) -> dict:
    sent: dict = {}
    monkeypatch.setattr(
        studio.jobs,
        "submit",
        lambda kind, params, title: sent.update(params, title=title) or Job("j", kind, title, params),
    )
    return sent


def test_more_concepts_reach_personalize_and_a_reload_shows_them(
    studio, concept_files, tmp_path, monkeypatch
):
    sent = _submitted(studio, monkeypatch)
    rows = [(concept_files[:2], " <b> ", "square"), (None, "", "")]  # an empty row is left out
    options = {"cut_mix_unmix": True}
    personalize.start(studio, concept_files, "studio/shapes-sd", "svdiff", "<a>", "star", 2, 0, "ab", options,
                      "auto", rows)  # fmt: skip
    (concept,) = sent["concepts"]
    assert {k: concept[k] for k in ("token", "class_word")} == {"token": "<b>", "class_word": "square"}
    assert len(list((studio.workspace.root / concept["data"]).iterdir())) == 2
    assert sent["title"] == "svdiff <a> <b> on 5 images"

    called = {}
    monkeypatch.setattr(tasks, "_pipeline", lambda ctx, model: "pipe")
    monkeypatch.setattr(tasks.diffusion, "personalize", lambda *a, **k: called.update(k))
    ctx = SimpleNamespace(params=sent, report=print, should_stop=lambda: True, output_dir=tmp_path / "out",
                          callback=None, resume=False, add_preview=None)  # fmt: skip
    tasks.run_personalize(studio, ctx)
    (given,) = called["concepts"]
    assert given["token"] == "<b>" and given["class_word"] == "square" and len(given["images"]) == 2
    assert called["cut_mix_unmix"] is True

    workspace = tmp_path / "reloaded"
    write_json(
        workspace / "jobs" / "j" / "job.json",
        asdict(Job("j", "personalize", "svdiff", sent, status="running")),
    )
    fill = _page_load_handler(build_app(workspace))
    shown = {o.label: v for o, v in zip(fill.outputs, fill.fn(), strict=True)}
    assert shown["token 2"] == "<b>" and shown["class word 2"] == "square"


def test_a_token_used_twice_is_refused_before_anything_is_queued(studio, concept_files, monkeypatch):
    sent = _submitted(studio, monkeypatch)
    with pytest.raises(ValueError, match="token '<a>' names two concepts"):
        personalize.start(studio, concept_files, "studio/shapes-sd", "svdiff", "<a>", "", 2, 0, "", None, "auto",
                          [(concept_files, "<a>", "")])  # fmt: skip
    assert not sent and not list((studio.workspace.root / "uploads").glob("*"))


def test_cut_mix_unmix_with_one_concept_is_refused_before_anything_is_queued(
    studio, concept_files, monkeypatch
):
    sent = _submitted(studio, monkeypatch)
    with pytest.raises(
        ValueError, match="cut_mix_unmix needs two or more concepts.*studio: the more-concepts rows"
    ):
        personalize.start(studio, concept_files, "studio/shapes-sd", "svdiff", "<a>", "", 2, 0, "",
                          {"cut_mix_unmix": True}, "auto", [(None, "", "")])  # fmt: skip
    assert not sent and not list((studio.workspace.root / "uploads").glob("*"))


def test_textual_inversion_with_two_concepts_is_refused_before_anything_is_queued(
    studio, concept_files, monkeypatch
):
    sent = _submitted(studio, monkeypatch)
    with pytest.raises(ValueError, match="textual_inversion learns one concept per run, got 2"):
        personalize.start(studio, concept_files, "studio/shapes-sd", "textual_inversion", "<a>", "", 2, 0, "", None,
                          "auto", [(concept_files, "<b>", "")])  # fmt: skip
    assert not sent and not list((studio.workspace.root / "uploads").glob("*"))
