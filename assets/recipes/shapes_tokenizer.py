"""The offline CLIP tokenizer of `studio/shapes-sd`: byte-level BPE whose merges make every caption word one token.

A sibling of `shapes_sd.py` (the recipes are scripts, not a package; `shapes_sd.py` puts this folder on
`sys.path`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import pre_tokenizers
from transformers import CLIPTokenizer

from studio.world import BACKGROUNDS, COLOURS, POSITIONS, SHAPES, SIZES, TEXTURES

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 32


def caption_words() -> list[str]:
    """Every word the world's captions use (all shapes, held-out ones included, so later prompts stay whole)."""
    phrases = [
        "a an on background at the in of",
        *SHAPES,
        *COLOURS,
        *BACKGROUNDS,
        *SIZES,
        *TEXTURES,
        *POSITIONS,
    ]
    return sorted({w for phrase in phrases for w in phrase.split()})


def build_tokenizer(words: list[str]) -> CLIPTokenizer:
    """A CLIP BPE tokenizer: every byte as a token (with and without `</w>`), plus merges that make each
    caption word a single token.

    Merges are added in rounds: each round joins, left to right, the pieces a word still splits into, so a
    merge learnt for one word ("ce" of "center") cannot leave another ("crescent") in pieces.
    """
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate([*alphabet, *(c + "</w>" for c in alphabet)])}
    merges: list[tuple[str, str]] = []
    pending = {word: [*word[:-1], word[-1] + "</w>"] for word in words}
    while pending:
        for pieces in pending.values():
            left = pieces[0]
            for right in pieces[1:]:
                if (left, right) not in merges:
                    merges.append((left, right))
                left += right
                vocab.setdefault(left, len(vocab))
        tokenizer = CLIPTokenizer(vocab={**vocab, BOS: len(vocab), EOS: len(vocab) + 1}, merges=merges)
        pending = {w: p for w in words if len(p := tokenizer.tokenize(w)) > 1}
    tokenizer.model_max_length = MAX_LENGTH
    return tokenizer


def tokenize(tokenizer: CLIPTokenizer, captions: list[list[str]]) -> torch.Tensor:
    """Token ids of every caption variant plus the empty prompt, padded as the pipeline pads them."""
    flat = [c for variants in captions for c in [*variants, ""]]
    ids = tokenizer(flat, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="pt")
    return ids.input_ids.view(len(captions), -1, MAX_LENGTH)


def write_legacy_tokenizer_files(tokenizer: CLIPTokenizer, folder: Path) -> None:
    """`vocab.json` + `merges.txt` next to `tokenizer.json`, for tools that read CLIP's original files."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    (folder / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (folder / "merges.txt").write_text("\n".join(["#version: 0.2", *merges]) + "\n")
