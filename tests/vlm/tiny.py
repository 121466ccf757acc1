"""A tiny random open_clip model for the vlm tests: built in code, or saved as an open_clip `local-dir:` folder."""

from __future__ import annotations

import json

import open_clip
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg
from safetensors.torch import save_file

EMBED_DIM = 32
VISION = {"image_size": 32, "patch_size": 8, "width": 32, "layers": 1, "head_width": 16}
TEXT = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}


def tiny_clip_model(seed: int = 0) -> CLIP:
    """The tiny CLIP's weights drawn from `seed`, in eval mode."""
    torch.manual_seed(seed)
    return CLIP(embed_dim=EMBED_DIM, vision_cfg=CLIPVisionCfg(**VISION), text_cfg=CLIPTextCfg(**TEXT)).eval()


def tiny_clip(seed: int = 0):
    """`(model, preprocess, tokenizer)` as `vlm.FewShotCLIP.from_model` takes them."""
    preprocess = open_clip.image_transform(VISION["image_size"], is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=TEXT["context_length"])
    return tiny_clip_model(seed), preprocess, tokenizer


def save_tiny_clip(folder, seed: int = 0) -> str:
    """Write the tiny CLIP as `open_clip_config.json` + safetensors weights; returns its `local-dir:` name."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "model_cfg": {"embed_dim": EMBED_DIM, "vision_cfg": VISION, "text_cfg": TEXT},
        "preprocess_cfg": {},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    state = {k: v.contiguous() for k, v in tiny_clip_model(seed).state_dict().items()}
    save_file(state, folder / "open_clip_model.safetensors")
    return f"local-dir:{folder}"
