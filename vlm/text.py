"""The CLIP text tower: class text features, and `encode_text` on token embeddings (for prompt learning)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from open_clip.transformer import TextTransformer, text_global_pool
from torch import nn

_PARTS = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


def text_tower(model: nn.Module) -> tuple[nn.Module, str, int | None]:
    """The module holding the text transformer's parts, with its pooling type and end-of-text token id.

    Args:
        model: an open_clip `CLIP` (built-in text tower) or a `CustomTextCLIP` whose text tower is an
            open_clip `TextTransformer` without a CoCa class token or padding mask.

    Returns:
        `(tower, pool_type, eos_id)`; `tower` has `token_embedding`, `positional_embedding`, `transformer`,
        `ln_final`, `text_projection` and `attn_mask`.
    """
    if all(hasattr(model, part) for part in _PARTS):
        return model, model.text_pool_type, getattr(model, "text_eos_id", None)
    text = getattr(model, "text", None)
    if (
        isinstance(text, TextTransformer)
        and text.cls_emb is None
        and not getattr(text, "use_pad_mask", False)
    ):
        return text, text.pool_type, getattr(text, "eos_id", None)
    raise TypeError(
        f"prompt learning needs an open_clip text transformer (a CLIP model with a built-in text tower); "
        f"{type(model).__name__} has a {type(text).__name__} text tower, which is not supported"
    )


def token_embeddings(model: nn.Module, tokens: torch.Tensor) -> torch.Tensor:
    """The input embeddings of token ids, before positional embeddings.

    Args:
        model: a model accepted by `text_tower`.
        tokens: token ids `(n, context_length)`.
    """
    tower, _, _ = text_tower(model)
    return tower.token_embedding(tokens)


def encode_text_embeddings(
    model: nn.Module, embeddings: torch.Tensor, tokens: torch.Tensor, normalize: bool = True
) -> torch.Tensor:
    """open_clip's `CLIP.encode_text` starting from token embeddings instead of token ids.

    Args:
        model: a model accepted by `text_tower`.
        embeddings: input embeddings `(n, context_length, width)`, e.g. learned context vectors spliced
            into the embeddings of a tokenized prompt.
        tokens: token ids `(n, context_length)` of the same prompts; only their end-of-text positions are
            used, for pooling.
        normalize: L2-normalise the output features.

    Returns:
        Text features `(n, embed_dim)`.
    """
    tower, pool_type, eos_id = text_tower(model)
    cast_dtype = tower.transformer.get_cast_dtype()
    length, mask = embeddings.shape[1], tower.attn_mask
    if mask is not None and pool_type in ("argmax", "eos"):
        # open_clip's text mask is causal: no position attends to a later one, so the positions after the
        # last pooled (end-of-text) token cannot change the output; dropping them is exact, and it makes
        # prompt learning several times cheaper (a prompt fills a fraction of the context)
        pooled = tokens.argmax(-1) if pool_type == "argmax" else (tokens == eos_id).int().argmax(-1)
        length = int(pooled.max()) + 1
        mask, embeddings, tokens = mask[:length, :length], embeddings[:, :length], tokens[:, :length]
    x = embeddings.to(cast_dtype) + tower.positional_embedding[:length].to(cast_dtype)
    x = tower.transformer(x, attn_mask=mask)
    x = tower.ln_final(x)
    x = text_global_pool(x, tokens, pool_type, eos_token_id=eos_id)
    projection = tower.text_projection
    if projection is not None:
        x = projection(x) if isinstance(projection, nn.Linear) else x @ projection
    return F.normalize(x, dim=-1) if normalize else x


@torch.no_grad()
def class_text_features(
    model: nn.Module, tokenizer: Callable, classnames: Sequence[str], templates: Sequence[str]
) -> torch.Tensor:
    """The zero-shot classifier: per class, the L2-normalised mean of L2-normalised template features.

    Args:
        model: any open_clip model (its own `encode_text` is used).
        tokenizer: the model's tokenizer.
        classnames: class names, in label order.
        templates: format strings with one `{}`.

    Returns:
        Float32 tensor `(num_classes, embed_dim)` on the model's device.
    """
    device = next(model.parameters()).device
    weights = []
    for name in classnames:
        tokens = tokenizer([t.format(name) for t in templates]).to(device)
        features = F.normalize(model.encode_text(tokens).float(), dim=-1)
        weights.append(F.normalize(features.mean(0), dim=-1))
    return torch.stack(weights)
