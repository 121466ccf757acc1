"""Sampling with Textual Inversion artifacts through diffusers' own loader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

from ..architecture import architecture_of
from ..artifacts import ArtifactInfo
from .model import read_encoder_embeddings


@contextlib.contextmanager
def textual_inversions_loaded(pipe, infos: Sequence[ArtifactInfo]) -> Iterator[list[str]]:
    """Load Textual Inversion embeddings with diffusers' own loader, then unload exactly those tokens.

    The files are read here (safetensors, or `torch.load(weights_only=True)` for `.pt`/`.bin`), and the
    tensors handed to `pipe.load_textual_inversion`, so sampling is what a stock pipeline would do; on SDXL
    once per text encoder (`clip_l`, `clip_g`).

    Args:
        pipe: the pipeline to sample with.
        infos: the Textual Inversion artifacts (several tokens at once are fine).

    Yields:
        The tokens loaded.
    """
    arch = architecture_of(pipe)
    loaded: list = []
    tokens: list[str] = []
    try:
        for info in infos:
            token, embeddings = read_encoder_embeddings(info.path, arch)
            token = info.extra.get("token") or token
            if not token:
                raise ValueError(f"{info.path} stores no token name; rename the file's key or re-export it")
            # Unloading walks every text encoder by tokenizer; record the names before loading the next one.
            names = [token] + [f"{token}_{i}" for i in range(1, embeddings["clip_l"].shape[0])]
            for slot in arch.slots:
                pipe.load_textual_inversion(
                    embeddings[slot.key],
                    token=token,
                    text_encoder=getattr(pipe, slot.encoder),
                    tokenizer=getattr(pipe, slot.tokenizer),
                )
                loaded.append((slot, names))
            tokens.append(token)
        yield tokens
    finally:
        for slot, names in reversed(loaded):
            pipe.unload_textual_inversion(
                tokens=names,
                tokenizer=getattr(pipe, slot.tokenizer),
                text_encoder=getattr(pipe, slot.encoder),
            )
