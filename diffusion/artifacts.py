"""What every diffusion artifact records (base model, method, hyperparameters, library version), reading it
back, telling an artifact's kind from its files, and refusing an artifact made for another base or method.

What the module knows about each method's artifacts comes from the registry: every diffusion method registers
an `ArtifactSpec` as its `spec` (`studio.core.register_method(..., domain="diffusion", spec=...)`).

A folder artifact carries `studio_artifact.json` beside its ecosystem-format files (which stock loaders read
and ignore the extra file); a single-file artifact (e.g. an IP-Adapter `.safetensors`) carries the same JSON in
its safetensors metadata under `"studio_artifact"`. Artifacts from elsewhere (a Civitai embedding, a hub
ControlNet) have no record; their kind is detected from their files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open

from studio.core import (
    get_method,
    is_asset_name,
    library_version,
    list_methods,
    method_names,
    resolve_asset,
    write_json,
)

METADATA_FILE = "studio_artifact.json"
METADATA_KEY = "studio_artifact"
DOMAIN = "diffusion"


@dataclass(frozen=True)
class ArtifactSpec:
    """What `diffusion` knows about one method's artifacts: the `spec` each diffusion method registers.

    Args:
        recognize: `path -> bool`: whether a file or folder without a studio record (a Civitai embedding, a
            hub ControlNet) is this method's artifact. Called only on existing paths.
        loads_with: how stock diffusers loads the artifact (shown beside a download).
        applied: for personalization methods, `(pipe, infos) -> context manager` that applies this method's
            artifacts for sampling and restores the pipeline after; None for control methods, which
            `diffusion.control.prepare` applies.
        merged_unet: `(pipe, artifact, output_dir) -> Path` writing the base UNet with the artifact merged in
            as a stock `UNet2DConditionModel` folder (SVDiff, LoRA, DiffFit); None when the method has none.
        merged_components: for a method whose artifact stock diffusers does not load (SVDiff, DiffFit),
            `(pipe, artifact, output_dir) -> list[str]` writing every component the artifact adapts, merged, as
            stock folders `output_dir/<component>`; a download offers these instead of the artifact. None when
            stock diffusers loads the artifact itself (`loads_with`).
        changes_layers: the artifact is applied by wrapping the pipeline's own layers (SVDiff, LoRA, DiffFit,
            Custom Diffusion); such adapters do not stack, so `generate` takes at most one such artifact.
    """

    recognize: Callable[[Path], bool]
    loads_with: str
    applied: Callable[[Any, list[ArtifactInfo]], AbstractContextManager] | None = None
    merged_unet: Callable[[Any, Path, Path], Path] | None = None
    merged_components: Callable[[Any, Path, Path], list[str]] | None = None
    changes_layers: bool = False


def artifact_kinds() -> list[str]:
    """The names of every registered diffusion method (the kinds an artifact can be)."""
    return method_names(DOMAIN)


def artifact_spec(kind: str) -> ArtifactSpec:
    """The registered `ArtifactSpec` of the diffusion method `kind`."""
    return get_method(kind, DOMAIN).spec


def safetensors_keys(file: Path, what: str = "safetensors file") -> list[str]:
    """The tensor names in a safetensors file (for `ArtifactSpec.recognize`); `what` names the file in the
    error for an unreadable one (e.g. "Textual Inversion embedding")."""
    return _safetensors_record(file, what)[0]


def config_class_name(folder: Path) -> str | None:
    """The `_class_name` in a diffusers `save_pretrained` folder's `config.json` (None without one)."""
    config = folder / "config.json"
    return json.loads(config.read_text()).get("_class_name") if config.is_file() else None


@dataclass
class ArtifactInfo:
    """An artifact on disk and what it records.

    Args:
        kind: the method, one of `artifact_kinds()`.
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
        """Whether this is a control artifact (a method trained by `train_control`, applied by
        `diffusion.control.prepare`)."""
        return get_method(self.kind, DOMAIN).task == "control"


def base_model_of(pipe) -> str | None:
    """The id `diffusion.load_pipeline` recorded on a pipeline (`pipe.base_model_id`), or its `name_or_path`."""
    recorded = getattr(pipe, "base_model_id", None)
    return recorded or getattr(getattr(pipe, "config", None), "_name_or_path", None) or None


def artifact_metadata(
    kind: str, base_model: str | None, hyperparameters: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """The JSON-ready record of an artifact.

    Args:
        kind: the method, one of `artifact_kinds()`.
        base_model: the base pipeline's id (`base_model_of(pipe)`).
        hyperparameters: the method's settings (JSON-ready values).
        **extra: more JSON-ready fields (token, steps, ...).

    Returns:
        A dict with `kind`, `base_model`, `hyperparameters`, `library` and `extra`.
    """
    if kind not in artifact_kinds():
        raise ValueError(f"unknown artifact kind {kind!r}; known: {', '.join(artifact_kinds())}")
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


def _safetensors_record(
    file: Path, what: str = "safetensors file"
) -> tuple[list[str], dict[str, Any] | None]:
    try:
        with safe_open(str(file), framework="pt") as f:
            keys, header = list(f.keys()), f.metadata() or {}
    except Exception as err:  # safetensors raises its own error types for bad headers
        raise ValueError(f"{file} is not a readable {what} ({err})") from None
    record = json.loads(header[METADATA_KEY]) if METADATA_KEY in header else None
    return keys, record


def _recognized(path: Path) -> str:
    if path.is_file() and path.suffix not in (".safetensors", ".pt", ".bin"):
        raise ValueError(f"{path}: unknown artifact file type (expected .safetensors, .pt or .bin)")
    for method in list_methods(DOMAIN):
        if method.spec.recognize(path):
            return method.name
    raise ValueError(
        f"{path} is not a known artifact: expected {METADATA_FILE} or the files of one of "
        f"{', '.join(artifact_kinds())} (in diffusers' formats)"
    )


def _checked_kind(record: dict[str, Any], source: Path) -> str:
    if record.get("kind") not in artifact_kinds():
        raise ValueError(f"{source} names unknown kind {record.get('kind')!r}; known: {artifact_kinds()}")
    return record["kind"]


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
    if path.is_file() and path.suffix == ".safetensors":
        _, record = _safetensors_record(path)
        if record is not None:
            return _info(_checked_kind(record, path), path, record)
    record_file = path / METADATA_FILE
    if record_file.is_file():
        try:
            record = json.loads(record_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{record_file} is not valid JSON: {err}") from None
        return _info(_checked_kind(record, record_file), path, record)
    return _info(_recognized(path), path, None)


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
