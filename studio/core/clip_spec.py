"""The one spelling of a CLIP model that `vlm` and `diffusion` both accept.

A spec is a bundled model (`"studio/shapes-clip"`), an open_clip name that brings its own weights
(`"hf-hub:org/repo"`, `"local-dir:/path"`), or an architecture with an optional pretrained tag or checkpoint
after the first colon (`"ViT-B-32"`, `"ViT-B-32:laion2b_s34b_b79k"`, `"ViT-B-32:/path/weights.safetensors"`).
Both domains load open_clip themselves (no domain imports another); this module only reads the string.
"""

from __future__ import annotations

OPEN_CLIP_SCHEMES = ("hf-hub:", "local-dir:")


def split_clip_spec(spec: str) -> tuple[str, str | None]:
    """Split a spec into the open_clip model name and its pretrained tag or checkpoint.

    Args:
        spec: see the module docstring.

    Returns:
        `(name, pretrained)`; `pretrained` is None when the spec names none (and always for `hf-hub:` and
        `local-dir:` names, which carry their own weights).
    """
    if spec.startswith(OPEN_CLIP_SCHEMES):
        return spec, None
    name, _, pretrained = spec.partition(":")
    return name, pretrained or None


def join_clip_spec(name: str, pretrained: str | None) -> str:
    """The spec of an open_clip name with a pretrained tag: the inverse of `split_clip_spec`.

    Args:
        name: an architecture or an `hf-hub:`/`local-dir:` name.
        pretrained: a pretrained tag or checkpoint path, or None.

    Returns:
        `"name:pretrained"`, or `name` alone when there is no tag or the name brings its own weights.
    """
    return f"{name}:{pretrained}" if pretrained and not name.startswith(OPEN_CLIP_SCHEMES) else name


def open_clip_weights(name: str, pretrained: str | bool | None) -> dict[str, object]:
    """Keyword arguments for `open_clip.create_model_and_transforms` that choose the weights.

    Args:
        name: the open_clip model name (from `split_clip_spec`).
        pretrained: a tag or checkpoint path; None or False for random weights (for an `hf-hub:`/`local-dir:`
            name, False skips its own weights and None keeps them).

    Returns:
        `{"load_weights": ...}` for `hf-hub:`/`local-dir:` names, else `{"pretrained": tag or None}`.
    """
    if name.startswith(OPEN_CLIP_SCHEMES):
        return {"load_weights": pretrained is not False}
    return {"pretrained": pretrained or None}
