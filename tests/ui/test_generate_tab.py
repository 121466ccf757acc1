"""The Generate tab tells the user when the text encoder cut their prompt."""

import pytest

import diffusion
from studio.ui.tabs.generate import truncation_note


def test_a_prompt_longer_than_the_text_encoder_reads_is_reported_with_the_cut_words():
    tokenizer = diffusion.load_pipeline("studio/shapes-sd", disable_progress_bar=True).tokenizer
    assert truncation_note(tokenizer, "a red star on a grey background") == ""
    tokenizer.add_tokens(["<my-star>"])  # as a loaded Textual Inversion does (it changes how ids decode)
    words = ["a red star on a grey background"] * (tokenizer.model_max_length // 6) + ["and a purple moon"]
    note = truncation_note(tokenizer, " ".join(words))
    assert f"reads {tokenizer.model_max_length - 2}" in note
    assert 'and a purple moon" on were cut' in note  # the words that had no effect, named


@pytest.mark.parametrize(
    ("steps", "seed", "message"),
    [(2.5, 0, "steps must be a whole number"), (2, float("nan"), "seed must be a finite number")],
)
def test_the_generate_button_reports_a_bad_number_by_its_field(studio, steps, seed, message):
    import gradio as gr

    from studio.ui import build_app

    app = build_app(studio.workspace.root)
    (handler,) = [f.fn for f in app.fns.values() if f.fn.__name__ == "on_generate"]
    with pytest.raises(gr.Error, match=message):  # the form's number reaches the check as typed
        handler("a star", "", "studio/shapes-sd", seed, steps, 1.0, [], None, None, [])
