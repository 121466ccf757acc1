"""The Few-shot CLIP tab offers the registry's few-shot methods, each with its own option form."""

from __future__ import annotations

import gradio as gr

from studio.core import method_names
from studio.ui.tabs import fewshot


def test_the_method_choices_are_the_registered_few_shot_methods(studio):
    with gr.Blocks() as page:
        fewshot.build(studio, gr.Timer(active=False))
    components = list(page.blocks.values())
    (method,) = [c for c in components if getattr(c, "elem_id", None) == "fewshot-method"]
    forms = [c.label.removesuffix(" options") for c in components if isinstance(c, gr.Accordion)]
    assert [value for value, _ in method.choices] == method_names("vlm", "fewshot")
    assert forms == method_names("vlm", "fewshot")
    assert method.value == "tip_adapter"
