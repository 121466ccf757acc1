"""LoRA files in the two layouts people load.

- diffusers (`pytorch_lora_weights.safetensors`): peft-style keys `unet.<module>.lora_A.weight` /
  `.lora_B.weight` (and `text_encoder.…`), read by stock `pipe.load_lora_weights(folder)`. The scale
  `alpha / r` is folded into `lora_B`, so a loader that assumes `alpha = r` computes the same update.
- kohya (`lora_kohya.safetensors`): `lora_unet_<module_with_underscores>.lora_down.weight` / `.lora_up.weight`
  / `.alpha` (`lora_te_…` for the text encoder; `lora_te1_…` / `lora_te2_…` for SDXL's two), read by A1111,
  ComfyUI and stock diffusers alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from studio.core import LoRALinear, adapter_layers, read_tensors, save_tensors

from ..architecture import architecture_of
from ..artifacts import safetensors_keys

LORA_FILE = "pytorch_lora_weights.safetensors"
KOHYA_FILE = "lora_kohya.safetensors"


def kohya_prefixes(pipe) -> dict[str, str]:
    """Pipeline component -> its kohya key prefix, for the components a LoRA file may adapt: the UNet and
    the pipeline's text encoders."""
    return {"unet": "lora_unet", **{slot.encoder: slot.kohya_prefix for slot in architecture_of(pipe).slots}}


ROLES = {
    ".lora_A.weight": "A",
    ".lora_B.weight": "B",
    ".lora_down.weight": "A",
    ".lora_up.weight": "B",
    ".alpha": "alpha",
}
"""Key suffix -> its part of an update, in both layouts."""

Weights = dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]]
"""Component -> module name -> `(A [r, in], B [out, r] with alpha / r folded in)`."""


def lora_weights(pipe) -> Weights:
    """The LoRA updates injected into `pipe`'s components, with the scale folded into B."""
    weights: Weights = {}
    for component in kohya_prefixes(pipe):
        model = getattr(pipe, component, None)
        layers = [(n, m) for n, m in adapter_layers(model)] if model is not None else []
        found = {n: (m.lora_A[0], m.lora_B[0] * m.scaling) for n, m in layers if isinstance(m, LoRALinear)}
        if found:
            weights[component] = {n: (a.detach().float(), b.detach().float()) for n, (a, b) in found.items()}
    return weights


def save_lora(pipe, folder: str | os.PathLike, metadata: dict[str, str] | None = None) -> list[Path]:
    """Write the pipeline's LoRA in both layouts (atomically), for stock diffusers and for A1111/ComfyUI.

    Args:
        pipe: a pipeline whose UNet (and maybe text encoder) carry LoRA layers.
        folder: the artifact folder.
        metadata: safetensors header entries to store in both files.

    Returns:
        The two files written.
    """
    weights = lora_weights(pipe)
    if not weights:
        raise ValueError("the pipeline carries no LoRA layers to save")
    peft_style, kohya, prefixes = {}, {}, kohya_prefixes(pipe)
    for component, layers in weights.items():
        for name, (a, b) in layers.items():
            peft_style[f"{component}.{name}.lora_A.weight"] = a.contiguous()
            peft_style[f"{component}.{name}.lora_B.weight"] = b.contiguous()
            key = f"{prefixes[component]}_{name.replace('.', '_')}"
            # With alpha = r the kohya scale is 1, and lora_up already carries alpha / r.
            kohya[f"{key}.lora_down.weight"] = a.contiguous()
            kohya[f"{key}.lora_up.weight"] = b.contiguous()
            kohya[f"{key}.alpha"] = torch.tensor(float(a.shape[0]))
    files = [Path(folder) / LORA_FILE, Path(folder) / KOHYA_FILE]
    for file, tensors in zip(files, (peft_style, kohya), strict=True):
        save_tensors(file, tensors, metadata=metadata)
    return files


def lora_file(path: Path) -> Path:
    """The LoRA weights file of an artifact: the file itself, or the folder's diffusers-layout file."""
    if path.is_file():
        return path
    for name in (LORA_FILE, KOHYA_FILE):
        if (path / name).is_file():
            return path / name
    raise FileNotFoundError(f"{path} holds no {LORA_FILE} or {KOHYA_FILE}")


def read_lora(path: str | os.PathLike, pipe) -> Weights:
    """Read a LoRA file in either layout and match its keys to `pipe`'s modules.

    Args:
        path: an artifact folder or a `.safetensors` LoRA file (diffusers or kohya layout).
        pipe: the pipeline it will be applied to (kohya names are matched against its module names).

    Returns:
        The updates by component and module, with the scale folded into B.

    Raises:
        ValueError: a key of neither layout, or one naming a module the pipeline lacks (a LoRA for another
            architecture).
    """
    file = lora_file(Path(path))
    tensors = read_tensors(file, "LoRA file")
    pairs: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    prefixes = kohya_prefixes(pipe)
    by_kohya_name = {
        f"{prefix}_{name.replace('.', '_')}": (component, name)
        for component, prefix in prefixes.items()
        for name, _ in _linears(getattr(pipe, component, None))
    }
    for key, tensor in tensors.items():
        suffix = next((s for s in ROLES if key.endswith(s)), None)
        stem = key[: -len(suffix)] if suffix else ""
        if stem in by_kohya_name:
            component, name = by_kohya_name[stem]
        else:
            component, _, name = stem.partition(".")
        if suffix is None or component not in prefixes:
            raise ValueError(f"{file.name}: key {key!r} is in neither diffusers' nor kohya's LoRA layout")
        pairs.setdefault((component, name), {})[ROLES[suffix]] = tensor.float()
    weights: Weights = {}
    modules = {c: dict(_linears(getattr(pipe, c, None))) for c in prefixes}
    for (component, name), parts in pairs.items():
        if name not in modules.get(component, {}):
            raise ValueError(
                f"{file.name}: {component} has no linear layer {name!r} (a LoRA for another model?)"
            )
        a, b = parts["A"], parts["B"]
        if "alpha" in parts:
            b = b * (parts["alpha"].item() / a.shape[0])
        weights.setdefault(component, {})[name] = (a, b)
    return weights


def _linears(model: nn.Module | None) -> list[tuple[str, nn.Module]]:
    if model is None:
        return []
    return [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear | LoRALinear)]


def is_lora_artifact(path: Path) -> bool:
    """Whether `path` is a LoRA in either layout: a folder with one of the two files, or a `.safetensors`
    file with `lora_A`/`lora_B` or `lora_down`/`lora_up` keys."""
    if path.is_dir():
        return any((path / name).is_file() for name in (LORA_FILE, KOHYA_FILE))
    keys = safetensors_keys(path) if path.suffix == ".safetensors" else []
    return any(k.endswith(suffix) for k in keys for suffix in ROLES if suffix != ".alpha")
