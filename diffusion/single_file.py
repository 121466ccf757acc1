"""Offline loading of an original-layout single-file checkpoint (SD 1.x, SD 2.x, SDXL base).

diffusers' `from_single_file` needs the diffusers configs of the checkpoint's architecture, which it normally
fetches from the hub. The package ships them (`single_file_configs/<family>/`, about 20 small JSON files); the
CLIP tokenizer's vocabulary (1.6 MB) is not shipped but derived from the BPE merges that `open_clip` (a
dependency) installs, which is how CLIP itself builds it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from .artifacts import safetensors_keys

CONFIGS = "single_file_configs"
FAMILIES = {
    "sdxl": ("conditioner.embedders.1.model.", "SDXL base"),
    "sd2": ("cond_stage_model.model.", "SD 2.x (768 px, v-prediction)"),
    "sd1": ("cond_stage_model.transformer.", "SD 1.x"),
}
"""Checkpoint family -> (a key prefix only its text encoder has, its name); the first match wins."""

CLIP_MERGES = 49152 - 256 - 2
"""How many BPE merges CLIP's vocabulary uses (49408 tokens = 2 × 256 bytes + merges + 2 special tokens)."""


def checkpoint_family(path: str | os.PathLike) -> str:
    """Which shipped config family an original-layout `.safetensors` checkpoint belongs to, from its keys.

    Args:
        path: the checkpoint.

    Returns:
        `"sd1"`, `"sd2"` or `"sdxl"`.

    Raises:
        ValueError: a checkpoint of none of them (an SDXL refiner, a UNet-only file, another model).
    """
    keys = safetensors_keys(Path(path))
    for family, (prefix, _) in FAMILIES.items():
        if any(key.startswith(prefix) for key in keys):
            return family
    names = ", ".join(name for _, name in FAMILIES.values())
    raise ValueError(
        f"{path} is not a full {names} checkpoint in the original layout (no text-encoder keys found); pass "
        "its diffusers config folder as config=, or load a diffusers folder instead"
    )


def clip_vocabulary() -> tuple[dict[str, int], list[str]]:
    """CLIP's tokenizer vocabulary and BPE merges, derived from `open_clip`'s merges file as CLIP does.

    Returns:
        `(vocab, merges)`: token -> id (49408 entries) and the merges as `"a b"` lines.
    """
    # Imported when needed: open_clip is slow to import.
    from open_clip.tokenizer import bytes_to_unicode, default_bpe

    with gzip.open(default_bpe(), "rt", encoding="utf-8") as f:
        merges = f.read().split("\n")[1 : CLIP_MERGES + 1]
    byte_chars = list(bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars] + [m.replace(" ", "") for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: i for i, token in enumerate(tokens)}, merges


def check_config_folder(folder: str | os.PathLike) -> None:
    """Refuse a config folder that lacks a file `from_single_file` needs (offline it would not fail but, for a
    tokenizer, silently build one with an empty vocabulary).

    Args:
        folder: a diffusers folder; configs and tokenizer files suffice.

    Raises:
        FileNotFoundError: naming the first missing file.
    """
    folder = Path(folder)
    index = folder / "model_index.json"
    if not index.is_file():
        raise FileNotFoundError(f"{folder} is not a diffusers config folder (no model_index.json)")
    for name, entry in json.loads(index.read_text()).items():
        if not isinstance(entry, list) or entry[0] is None:
            continue
        if name.startswith("tokenizer"):
            needs = [] if (folder / name / "tokenizer.json").is_file() else ["vocab.json", "merges.txt"]
        else:
            needs = ["scheduler_config.json" if name == "scheduler" else "config.json"]
        missing = [f"{name}/{file}" for file in needs if not (folder / name / file).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} lacks {missing[0]}: a single-file checkpoint's config folder needs each component's "
                "config and the tokenizers' vocab.json and merges.txt"
            )


@contextlib.contextmanager
def shipped_config(family: str) -> Iterator[Path]:
    """A temporary diffusers config folder for `family`: the shipped configs plus the derived tokenizer files.

    Args:
        family: `"sd1"`, `"sd2"` or `"sdxl"`.

    Yields:
        The folder, for `from_single_file(config=...)`; it is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="studio-config-") as tmp:
        folder = Path(tmp) / family
        with resources.as_file(resources.files(__package__) / CONFIGS / family) as source:
            shutil.copytree(source, folder)
        vocab, merges = clip_vocabulary()
        for tokenizer in sorted(folder.glob("tokenizer*")):
            (tokenizer / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
            (tokenizer / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        yield folder
