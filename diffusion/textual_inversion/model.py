"""Textual Inversion on a Stable-Diffusion text encoder: adding a concept's tokens for training, and the
`learned_embeds.safetensors` format (plus A1111 `.pt` embeddings) for loading.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from studio.core import get_adapter_state, inject, read_tensors, save_tensors

from ..architecture import Architecture, architecture_of
from ..artifacts import safetensors_keys
from .config import TextualInversionConfig
from .layer import ConceptEmbedding

EMBEDDINGS_FILE = "learned_embeds.safetensors"
EMBEDDING_FILES = (EMBEDDINGS_FILE, "learned_embeds.bin")


def apply_textual_inversion(model: nn.Module, config: TextualInversionConfig) -> None:
    """Give a text encoder `config.num_vectors` new, trainable token embeddings (used by `inject`)."""
    table = model.get_input_embeddings()
    layer = ConceptEmbedding(table, config.num_vectors, first_id=table.num_embeddings)
    model.set_input_embeddings(layer)


def check_new_token(tokenizer, config: TextualInversionConfig) -> None:
    """Refuse a token (or one of its `_i` vector names) that the vocabulary already has.

    Raises:
        ValueError: naming the token.
    """
    vocab = tokenizer.get_vocab()

    def known(name: str) -> bool:
        # A whole existing word ("circle" is "circle</w>" in CLIP's vocabulary) counts as taken as well:
        # adding it as a token would silently change that word in every prompt.
        pieces = tokenizer.tokenize(name)
        return name in vocab or (len(pieces) == 1 and pieces[0] in vocab)

    taken = [name for name in config.token_names() if known(name)]
    if taken:
        raise ValueError(
            f"token {taken[0]!r} is already in the tokenizer's vocabulary; choose a new placeholder "
            f"such as '<{config.token.strip('<>')}-concept>'"
        )


def initial_embedding(tokenizer, table: torch.Tensor, init_token: str, generator=None) -> torch.Tensor:
    """The starting vector: the embedding of `init_token` (the mean of its pieces if it splits into several),
    or, for an empty word, a random vector with the table's scale.

    Args:
        tokenizer: the tokenizer.
        table: the embedding table `[V, D]`.
        init_token: an existing word.
        generator: RNG for the random case.

    Returns:
        A `[D]` tensor.

    Raises:
        ValueError: if `init_token` tokenizes to nothing.
    """
    if not init_token:
        return torch.randn(table.shape[1], generator=generator) * table.std().item()
    ids = tokenizer(init_token, add_special_tokens=False).input_ids
    if not ids:
        raise ValueError(f"init_token {init_token!r} produces no token")
    return table[torch.tensor(ids)].float().mean(0)


def add_concept(
    tokenizer, text_encoder: nn.Module, config: TextualInversionConfig | Sequence[TextualInversionConfig]
):
    """Prepare a text encoder for training a new concept (or several): freeze it and add trainable rows for the
    tokens.

    The pipeline's tokenizer is left alone: the tokens are added to a copy, which is returned.

    Args:
        tokenizer: the pipeline's tokenizer.
        text_encoder: the pipeline's text encoder (changed in place; undo with `diffusion.unload.remove_adapter`).
        config: the concept, or several: their rows follow one another in the order given.

    Returns:
        `(tokenizer_with_tokens, layer)`: the tokenizer copy and the `ConceptEmbedding` holding the rows.

    Raises:
        ValueError: if a token is already in the vocabulary, or the text encoder carries another adapter.
    """
    configs = [config] if isinstance(config, TextualInversionConfig) else list(config)
    for one in configs:
        check_new_token(tokenizer, one)
    tokenizer = copy.deepcopy(tokenizer)
    table = text_encoder.get_input_embeddings().weight.detach()
    inits = [
        initial_embedding(tokenizer, table, one.init_token).expand(one.num_vectors, -1) for one in configs
    ]
    names = [name for one in configs for name in one.token_names()]
    tokenizer.add_tokens(names)
    inject(text_encoder, dataclasses.replace(configs[0], num_vectors=len(names)))
    layer = text_encoder.get_input_embeddings()
    layer.first_id = tokenizer.convert_tokens_to_ids(names[0])
    with torch.no_grad():
        layer.new_embeddings.copy_(torch.cat(inits))
    return tokenizer, layer


def add_concept_to_pipeline(
    pipe, config: TextualInversionConfig | Sequence[TextualInversionConfig]
) -> tuple[list, list[ConceptEmbedding]]:
    """`add_concept` on each of the pipeline's text encoders (one on SD 1.x/2.x, two on SDXL).

    Args:
        pipe: the pipeline; its text encoders are changed in place, its tokenizers left alone.
        config: the concept, or several.

    Returns:
        `(tokenizers, layers)`: per text encoder, the tokenizer copy with the tokens and the trainable rows.
    """
    arch = architecture_of(pipe)
    pairs = [
        add_concept(t, e, config) for t, e in zip(arch.tokenizers(pipe), arch.encoders(pipe), strict=True)
    ]
    return [tokenizer for tokenizer, _ in pairs], [layer for _, layer in pairs]


def expand_prompt(prompt: str, config: TextualInversionConfig) -> str:
    """Replace the token by all its vector names ("<t>" -> "<t> <t>_1 <t>_2"), as diffusers does at sampling."""
    return prompt.replace(config.token, " ".join(config.token_names()))


def concept_layer(text_encoder: nn.Module) -> ConceptEmbedding:
    """The `ConceptEmbedding` that `add_concept` put into `text_encoder`."""
    state = get_adapter_state(text_encoder)
    layer = text_encoder.get_input_embeddings()
    if state is None or not isinstance(layer, ConceptEmbedding):
        raise ValueError("this text encoder carries no Textual Inversion concept (call add_concept first)")
    return layer


def save_embeddings(
    folder: str | os.PathLike,
    token: str,
    embeddings: torch.Tensor | dict[str, torch.Tensor],
    file_name: str = EMBEDDINGS_FILE,
) -> Path:
    """Write `folder/learned_embeds.safetensors`: `{token: [n_vectors, dim]}` (diffusers' format) for one text
    encoder, `{"clip_l": ..., "clip_g": ...}` (the format SDXL embeddings are shared in) for two.

    Args:
        folder: output folder.
        token: the placeholder token.
        embeddings: `[n_vectors, dim]`, or one such tensor per text encoder by its key
            (`diffusion.architecture.TextSlot.key`).
        file_name: the file's name in `folder` (stock loading: `load_textual_inversion(folder, weight_name=...)`).

    Returns:
        The file written.
    """
    if isinstance(embeddings, torch.Tensor):
        embeddings = {token: embeddings}
    elif len(embeddings) == 1:
        embeddings = {token: next(iter(embeddings.values()))}
    path = Path(folder) / file_name
    save_tensors(path, {k: v.detach().float().reshape(-1, v.shape[-1]) for k, v in embeddings.items()})
    return path


def _from_state_dict(state: dict, source: Path) -> tuple[str | None, torch.Tensor]:
    if "string_to_param" in state:  # A1111: {"name": ..., "string_to_param": {"*": tensor}, ...}
        params = state["string_to_param"]
        tensor = params.get("*", next(iter(params.values()), None)) if isinstance(params, dict) else None
        name = state.get("name")
        return (name if isinstance(name, str) else None), tensor
    if "emb_params" in state:  # A1111 saved as safetensors
        return None, state["emb_params"]
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != 1:
        raise ValueError(
            f"{source}: expected one embedding tensor (diffusers) or 'string_to_param' (A1111), "
            f"found keys {list(state)[:6]}"
        )
    return next(iter(tensors.items()))


def read_embeddings(path: str | os.PathLike) -> tuple[str | None, torch.Tensor]:
    """Read a Textual Inversion embedding without unpickling arbitrary objects.

    Args:
        path: a folder with `learned_embeds.safetensors` (or `.bin`), a `.safetensors` file, or a `.pt`/`.bin`
            file (A1111 or diffusers), the latter read with `torch.load(weights_only=True)`.

    Returns:
        `(token, embeddings)`: the token stored in the file (None if it has none) and a `[n_vectors, dim]`
        float tensor.

    Raises:
        ValueError: a file that is not an embedding, or that would need unpickling of code objects.
    """
    path = Path(path)
    if path.is_dir():
        candidates = [path / name for name in EMBEDDING_FILES]
        path = next((c for c in candidates if c.is_file()), candidates[0])
    if not path.is_file():
        raise FileNotFoundError(f"no embedding file at {path}")
    if path.suffix == ".safetensors":
        state = read_tensors(path, "Textual Inversion embedding")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # pickle errors come in many types; none of them may pass silently
            raise ValueError(
                f"{path} cannot be read as plain tensors (torch.load weights_only=True: {err}); "
                "only embeddings made of tensors, strings and numbers are accepted"
            ) from None
        if isinstance(state, torch.Tensor):
            state = {"": state}
        if not isinstance(state, dict):
            raise ValueError(f"{path}: expected a dict of tensors, got {type(state).__name__}")
    token, tensor = _from_state_dict(state, path)
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (1, 2):
        raise ValueError(f"{path}: the embedding must be a [n_vectors, dim] tensor")
    return (token or None), tensor.detach().float().reshape(-1, tensor.shape[-1])


def read_encoder_embeddings(
    path: str | os.PathLike, architecture: Architecture
) -> tuple[str | None, dict[str, torch.Tensor]]:
    """Read an embedding for each text encoder of `architecture`: an SDXL file's `clip_l` and `clip_g`, or a
    single-encoder embedding (`read_embeddings`) for SD 1.x/2.x.

    Args:
        path: as for `read_embeddings`.
        architecture: the pipeline's architecture.

    Returns:
        `(token, {slot key: [n_vectors, dim]})`; an SDXL file's token is its file name (as A1111 does) when
        it stores none.

    Raises:
        ValueError: an embedding made for the other architecture, or one `read_embeddings` refuses.
    """
    path = Path(path)
    file = next((path / n for n in EMBEDDING_FILES if (path / n).is_file()), path) if path.is_dir() else path
    keys = [slot.key for slot in architecture.slots]
    pair = file.suffix == ".safetensors" and {"clip_l", "clip_g"} <= set(
        safetensors_keys(file, "Textual Inversion embedding")
    )
    if pair and len(keys) == 2:
        state = read_tensors(file, "Textual Inversion embedding")
        return None if path.is_dir() else file.stem, {
            k: state[k].float().reshape(-1, state[k].shape[-1]) for k in keys
        }
    if pair or len(keys) == 2:
        made_for, wanted = ("SDXL", "SD 1.x/2.x") if pair else ("SD 1.x/2.x", "SDXL")
        raise ValueError(
            f"{file} is a {made_for} embedding and the pipeline is {wanted}; use an embedding made for {wanted}"
        )
    token, tensor = read_embeddings(file)
    return token, {keys[0]: tensor}


def is_embedding_artifact(path: Path) -> bool:
    """Whether `path` holds a Textual Inversion embedding in a format `read_embeddings` reads: a folder with
    `learned_embeds.*`, an A1111 / diffusers `.pt` or `.bin` file, or a safetensors file with one tensor
    (diffusers), `clip_l` + `clip_g` (SDXL) or `emb_params` (A1111)."""
    if path.is_dir():
        return any((path / name).is_file() for name in EMBEDDING_FILES)
    if path.suffix in (".pt", ".bin"):
        return True
    keys = set(safetensors_keys(path)) if path.suffix == ".safetensors" else set()
    return len(keys) == 1 or {"clip_l", "clip_g"} <= keys or "emb_params" in keys
