"""What every diffusion artifact records (base model, method, hyperparameters, library version), reading it
back, telling an artifact's kind from its files, and refusing an artifact made for another base or method.

A folder artifact carries `studio_artifact.json` beside its ecosystem-format files (which stock loaders read
and ignore the extra file); a single-file artifact (e.g. an IP-Adapter `.safetensors`) carries the same JSON in
its safetensors metadata under `"studio_artifact"`. Artifacts from elsewhere (a Civitai embedding, a hub
ControlNet) have no record; their kind is detected from their files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open

from studio.core import is_asset_name, library_version, resolve_asset, write_json

METADATA_FILE = "studio_artifact.json"
METADATA_KEY = "studio_artifact"
PERSONALIZATION_KINDS = ("textual_inversion", "svdiff")
CONTROL_KINDS = ("controlnet", "t2i_adapter", "ip_adapter")
KINDS = PERSONALIZATION_KINDS + CONTROL_KINDS
TI_FILES = ("learned_embeds.safetensors", "learned_embeds.bin")
_CONFIG_CLASSES = {
    "ControlNetModel": "controlnet",
    "T2IAdapter": "t2i_adapter",
    "MultiAdapter": "t2i_adapter",
}


@dataclass
class ArtifactInfo:
    """An artifact on disk and what it records.

    Args:
        kind: the method, one of `KINDS`.
        path: the artifact folder or file.
        base_model: id of the base pipeline it was trained on (None for foreign artifacts).
        hyperparameters: the method's settings as trained.
        library: e.g. `"adaptation-studio 0.1.0"` (None for foreign artifacts).
        extra: anything else recorded (token, class word, steps done, ...).
    """

    kind: str
    path: Path
    base_model: str | None = None
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    library: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_control(self) -> bool:
        """Whether this is a control artifact (ControlNet, T2I-Adapter, IP-Adapter)."""
        return self.kind in CONTROL_KINDS


def base_model_of(pipe) -> str | None:
    """The id `diffusion.load_pipeline` recorded on a pipeline (`pipe.base_model_id`), or its `name_or_path`."""
    recorded = getattr(pipe, "base_model_id", None)
    return recorded or getattr(getattr(pipe, "config", None), "_name_or_path", None) or None


def artifact_metadata(
    kind: str, base_model: str | None, hyperparameters: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The JSON-ready record of an artifact.

    Args:
        kind: the method, one of `KINDS`.
        base_model: the base pipeline's id (`base_model_of(pipe)`).
        hyperparameters: the method's settings (JSON-ready values).
        **extra: more JSON-ready fields (token, steps, ...).

    Returns:
        A dict with `kind`, `base_model`, `hyperparameters`, `library` and `extra`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown artifact kind {kind!r}; known: {', '.join(KINDS)}")
    return {
        "kind": kind,
        "base_model": base_model,
        "hyperparameters": hyperparameters,
        "library": library_version(),
        "extra": extra,
    }


def write_artifact_info(folder: str | os.PathLike, metadata: dict[str, Any]) -> Path:
    """Write `metadata` (from `artifact_metadata`) as `folder/studio_artifact.json`, atomically.

    Returns:
        The file written.
    """
    path = Path(folder) / METADATA_FILE
    write_json(path, metadata)
    return path


def safetensors_metadata(metadata: dict[str, Any]) -> dict[str, str]:
    """`metadata` as a safetensors header entry, for single-file artifacts (`save_file(..., metadata=...)`)."""
    return {METADATA_KEY: json.dumps(metadata, sort_keys=True)}


def _info(kind: str, path: Path, data: dict[str, Any] | None) -> ArtifactInfo:
    data = data or {}
    return ArtifactInfo(
        kind=kind,
        path=path,
        base_model=data.get("base_model"),
        hyperparameters=dict(data.get("hyperparameters") or {}),
        library=data.get("library"),
        extra=dict(data.get("extra") or {}),
    )


def _safetensors_record(file: Path) -> tuple[list[str], dict[str, Any] | None]:
    try:
        with safe_open(str(file), framework="pt") as f:
            keys, header = list(f.keys()), f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{file} is not a readable safetensors file ({err})") from None
    record = json.loads(header[METADATA_KEY]) if METADATA_KEY in header else None
    return keys, record


def _kind_of_file(file: Path) -> tuple[str, dict[str, Any] | None]:
    if file.suffix in (".pt", ".bin"):
        return "textual_inversion", None  # A1111 / diffusers embeddings; loaded with weights_only=True
    if file.suffix != ".safetensors":
        raise ValueError(f"{file}: unknown artifact file type (expected .safetensors, .pt or .bin)")
    keys, record = _safetensors_record(file)
    if record and record.get("kind") in KINDS:
        return record["kind"], record
    if any(k.startswith(("image_proj.", "ip_adapter.")) for k in keys):
        return "ip_adapter", record
    if len(keys) == 1 or {"clip_l", "clip_g"} <= set(keys) or "emb_params" in keys:
        return "textual_inversion", record
    raise ValueError(f"{file}: cannot tell what artifact this is (tensor keys {keys[:5]}...)")


def _kind_of_folder(folder: Path) -> str:
    if any((folder / name).is_file() for name in TI_FILES):
        return "textual_inversion"
    for adapter_config in (folder / "adapter_config.json", folder / "unet" / "adapter_config.json"):
        if adapter_config.is_file() and json.loads(adapter_config.read_text()).get("method") == "svdiff":
            return "svdiff"
    config = folder / "config.json"
    if config.is_file():
        kind = _CONFIG_CLASSES.get(json.loads(config.read_text()).get("_class_name", ""))
        if kind:
            return kind
    raise ValueError(
        f"{folder} is not a known artifact: expected {METADATA_FILE}, {TI_FILES[0]}, an SVDiff adapter folder, "
        "or a ControlNet / T2I-Adapter save_pretrained folder"
    )


def read_artifact(path: str | os.PathLike) -> ArtifactInfo:
    """Read an artifact's record, or detect the kind of a foreign artifact from its files.

    Args:
        path: an artifact folder or file.

    Returns:
        Its `ArtifactInfo`.

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if it is not an artifact this project can use (the message says what was expected).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"artifact {path} does not exist")
    if path.is_file():
        kind, record = _kind_of_file(path)
        return _info(kind, path, record)
    record_file = path / METADATA_FILE
    if record_file.is_file():
        try:
            record = json.loads(record_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{record_file} is not valid JSON: {err}") from None
        if record.get("kind") not in KINDS:
            raise ValueError(f"{record_file} names unknown kind {record.get('kind')!r}; known: {KINDS}")
        return _info(record["kind"], path, record)
    return _info(_kind_of_folder(path), path, None)


def _canonical(model_id: str) -> str:
    # One base model can be named as "studio/shapes-sd", as its folder, or via a relative path.
    if is_asset_name(model_id) and not Path(model_id).exists():
        try:
            return str(resolve_asset(model_id).resolve())
        except FileNotFoundError:
            return model_id
    path = Path(model_id)
    return str(path.resolve()) if path.exists() else model_id


def same_base_model(a: str | None, b: str | None) -> bool:
    """Whether two base-model ids name the same model; an unknown id (None) matches anything."""
    if not a or not b:
        return True
    return _canonical(a) == _canonical(b)


def check_artifact(
    info: ArtifactInfo, *, kinds: tuple[str, ...] | None = None, base_model: str | None = None
) -> ArtifactInfo:
    """Refuse an artifact of another kind, or one recorded for another base model.

    Args:
        info: from `read_artifact`.
        kinds: the kinds accepted here (None: any).
        base_model: the id of the pipeline it will be used with (None: no check).

    Returns:
        `info`, for chaining.

    Raises:
        ValueError: naming the artifact, what it is and what was expected.
    """
    if kinds is not None and info.kind not in kinds:
        raise ValueError(f"{info.path} is a {info.kind} artifact; expected {' or '.join(kinds)}")
    if not same_base_model(info.base_model, base_model):
        raise ValueError(
            f"{info.path} is a {info.kind} artifact for base model {info.base_model!r}, but the pipeline is "
            f"{base_model!r}; load it onto the model it was trained on (or pass check_base_model=False)"
        )
    return info
