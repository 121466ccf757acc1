"""The Generate tab tells the user when the text encoder cut their prompt."""

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
