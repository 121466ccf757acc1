"""Prompt templates for CLIP text classifiers: open_clip's ImageNet ensemble, a single prompt, or your own."""

from __future__ import annotations

from collections.abc import Sequence

from open_clip import OPENAI_IMAGENET_TEMPLATES, SIMPLE_IMAGENET_TEMPLATES

SINGLE_TEMPLATE = "a photo of a {}."
ENSEMBLES = {
    "ensemble": tuple(t("{}") for t in OPENAI_IMAGENET_TEMPLATES),
    "simple": tuple(t("{}") for t in SIMPLE_IMAGENET_TEMPLATES),
    "single": (SINGLE_TEMPLATE,),
}


def resolve_templates(templates: str | Sequence[str]) -> list[str]:
    """Turn a template choice into a list of format strings with one `{}` for the class name.

    Args:
        templates: `"ensemble"` (open_clip's 80 OpenAI ImageNet prompts), `"simple"` (its 7-prompt subset),
            `"single"` (`"a photo of a {}."`), or a list of strings such as `["a photo of a {}, a shape."]`.

    Returns:
        The templates, each containing exactly one `{}`.
    """
    if isinstance(templates, str):
        if templates not in ENSEMBLES:
            raise ValueError(
                f"unknown templates {templates!r}; use one of {sorted(ENSEMBLES)} or a list of strings with '{{}}'"
            )
        return list(ENSEMBLES[templates])
    resolved = list(templates)
    if not resolved:
        raise ValueError("templates must not be empty")
    for template in resolved:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(f"each template needs exactly one '{{}}' for the class name, got {template!r}")
    return resolved
