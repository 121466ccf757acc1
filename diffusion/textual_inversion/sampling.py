"""Sampling with Textual Inversion artifacts through diffusers' own loader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from ..artifacts import ArtifactInfo
from .model import read_embeddings


@contextlib.contextmanager
def textual_inversions_loaded(pipe, infos: Sequence[ArtifactInfo]) -> Iterator[list[str]]:
    """Load Textual Inversion embeddings with diffusers' own loader, then unload exactly those tokens.

    The files are read here (safetensors, or `torch.load(weights_only=True)` for `.pt`/`.bin`), and the
    tensors handed to `pipe.load_textual_inversion`, so sampling is what a stock pipeline would do.

    Args:
        pipe: the pipeline to sample with.
        infos: the Textual Inversion artifacts (several tokens at once are fine).

    Yields:
        The tokens loaded.
    """
    loaded: list[str] = []
    tokens: list[str] = []
    try:
        for info in infos:
            token, embeddings = read_embeddings(info.path)
            token = info.extra.get("token") or token
            if not token:
                raise ValueError(f"{info.path} stores no token name; rename the file's key or re-export it")
            pipe.load_textual_inversion(embeddings, token=token)
            tokens.append(token)
            loaded += [token] + [f"{token}_{i}" for i in range(1, embeddings.shape[0])]
        yield tokens
    finally:
        if loaded:
            pipe.unload_textual_inversion(tokens=loaded)
