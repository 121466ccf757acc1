"""`personalize`: teach a pipeline a concept from a few images, with any registered personalization method.

Each method's trainer lives in its folder (`diffusion.textual_inversion.train_textual_inversion`,
`diffusion.svdiff.train_svdiff`) and registers as the `train` of its `studio.core.register_method` call; this
entry looks the method up and routes keyword options to the method's config or the shared `ConceptRun`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from studio.core import Method, MethodConfig, get_method, method_names

from .concept import ConceptRun

DOMAIN, TASK = "diffusion", "personalize"
DEFAULT_METHOD = "textual_inversion"


def personalize(
    pipe,
    images,
    method: str = DEFAULT_METHOD,
    token: str | None = None,
    init_token: str | None = None,
    class_word: str | None = None,
    *,
    config: MethodConfig | dict[str, Any] | None = None,
    run: ConceptRun | None = None,
    **options: Any,
) -> Path:
    """Teach `pipe` a concept from a few images; the pipeline itself is left unchanged.

    Args:
        pipe: a Stable-Diffusion-format pipeline (`diffusion.load_pipeline`).
        images: the concept's images: a folder, paths, PIL images (any mode, EXIF rotation and size).
        method: a personalization method (`studio.core.method_names("diffusion", "personalize")`):
            `"textual_inversion"` learns the token's embedding, `"svdiff"` shifts singular values.
        token: the placeholder used in prompts, e.g. `"<my-cat>"` (default `"<concept>"`).
        init_token: Textual Inversion's starting word (default: `class_word`, else random).
        class_word: the concept's class ("cat"); SVDiff prompts say "a photo of <token> cat"; needed for prior
            preservation.
        config: the method's config, or a dict of its fields (None: the defaults).
        run: the shared run options (`diffusion.concept.ConceptRun`); None: the defaults.
        **options: `ConceptRun` fields (`steps`, `batch_size`, `output_dir`, `resume`, `prior_preservation`,
            `preview_every`, `seed`, `concepts` (more concepts learnt jointly, each a `diffusion.concept.Concept`
            with its own token), ...) and fields of the method's config (`lr`, `num_vectors`, `lr_norm`,
            `train_text_encoder`, `scale`, ...), which override `config`'s.

    Returns:
        The artifact folder, with the method's files and `studio_artifact.json`.

    Raises:
        ValueError: an unknown method or option (the message lists the known ones), a bad value, no usable
            images, a token already in the vocabulary, prior preservation without a class word.
    """
    if init_token is not None:
        options["init_token"] = init_token
    entry, config, options = method_options(method, config, options)
    concept = {k: v for k, v in (("token", token), ("class_word", class_word)) if v is not None}
    return entry.train(pipe, images, config, run=run, **concept, **options)


def method_options(
    method: str, config: MethodConfig | dict[str, Any] | None, options: dict[str, Any]
) -> tuple[Method, MethodConfig, dict[str, Any]]:
    """Route `personalize`'s keyword options: fields of `method`'s config go into `config`, the rest must be
    `ConceptRun` fields. Checks everything a config checks (with `concepts` among the options, also that the
    method trains that many concepts), so a caller (e.g. a form) can refuse bad options before any work.

    Args:
        method: a personalization method's name.
        config: its config, a dict of its fields, or None (the defaults).
        options: keyword options, config fields and run options mixed.

    Returns:
        The registered method, its config with the options set, and the run options.

    Raises:
        ValueError: an unknown method or option (the message lists the known ones), or a bad value.
    """
    try:
        entry = get_method(method, DOMAIN)
    except KeyError:
        entry = None
    if entry is None or entry.task != TASK or entry.train is None:
        known = ", ".join(method_names(DOMAIN, TASK))
        raise ValueError(f"unknown personalization method {method!r}; choose one of {known}")
    config_fields = {f.name for f in dataclasses.fields(entry.config_cls)}
    run_fields = set(ConceptRun.fields())
    unknown = sorted(set(options) - config_fields - run_fields)
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for {method}; run options: {', '.join(ConceptRun.fields())}; "
            f"{method} options: {', '.join(f.name for f in entry.config_cls.options())}"
        )
    settings = {k: v for k, v in options.items() if k not in run_fields}
    config = entry.config_cls.coerce(config)
    if settings:
        config = dataclasses.replace(config, **settings)
    check_concepts = getattr(config, "check_concepts", None)
    if check_concepts is not None and "concepts" in options:
        check_concepts(1 + len(options["concepts"]))
    return entry, config, {k: v for k, v in options.items() if k in run_fields}
