"""The artifact library: every trained artifact in `artifacts/<name>/`, with what the page lists about it.

Each entry folder holds the artifact in its ecosystem format (an adapter folder, `learned_embeds.safetensors`,
a `save_pretrained` folder, an IP-Adapter file, ...) and `library.json`: its domain, method, base model,
creation date, metrics, the job that made it, and where inside the folder the artifact is (`"."` for the
folder itself, or a file name).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.core import write_json

from .workspace import Workspace, folder_size, safe_name

ENTRY_FILE = "library.json"
SKIPPED_ON_PUBLISH = ("checkpoints", "previews")  # training leftovers, not part of the artifact


@dataclass
class Entry:
    """One library entry (what `library.json` holds, plus its name).

    Args:
        name: the folder name under `artifacts/`.
        domain: `"vision"`, `"vlm"` or `"diffusion"`.
        method: e.g. `"ssf"`, `"tip_adapter"`, `"textual_inversion"`.
        base_model: the base model id it was trained on.
        created: epoch seconds.
        metrics: e.g. `{"test_accuracy": 0.9}`.
        job: the id of the job that made it (None for imports).
        artifact: the artifact inside the folder: `"."` or a file name.
        extra: anything the tabs need later (a TI token, a control condition, class names...).
    """

    name: str
    domain: str
    method: str
    base_model: str | None
    created: float = field(default_factory=time.time)
    metrics: dict[str, float] = field(default_factory=dict)
    job: str | None = None
    artifact: str = "."
    extra: dict[str, Any] = field(default_factory=dict)


class Library:
    """Lists, publishes, renames, deletes and zips the artifacts of a workspace.

    Args:
        workspace: the studio's workspace.
    """

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def folder(self, name: str) -> Path:
        """The entry folder of `name` (which must exist).

        Raises:
            ValueError: no such entry (or a name that would leave the library).
        """
        folder = self.workspace.inside("artifacts", safe_name(name))
        if safe_name(name) != name or not (folder / ENTRY_FILE).is_file():
            raise ValueError(f"no artifact named {name!r} in the library")
        return folder

    def path(self, name: str) -> Path:
        """The artifact of entry `name` itself (the folder or the file the domain API loads)."""
        entry = self.get(name)
        return (self.folder(name) / entry.artifact).resolve()

    def get(self, name: str) -> Entry:
        """The entry called `name`."""
        data = json.loads((self.folder(name) / ENTRY_FILE).read_text())
        return Entry(name=name, **{k: v for k, v in data.items() if k != "name"})

    def entries(self, domain: str | None = None, methods: tuple[str, ...] | None = None) -> list[Entry]:
        """Every entry, newest first, optionally only of one domain or of some methods."""
        found = []
        for record in self.workspace.artifacts.glob(f"*/{ENTRY_FILE}"):
            try:
                entry = self.get(record.parent.name)
            except (ValueError, TypeError, OSError):
                continue  # a half-written or foreign folder is not listed
            if (domain is None or entry.domain == domain) and (methods is None or entry.method in methods):
                found.append(entry)
        return sorted(found, key=lambda e: (e.created, e.name), reverse=True)

    def unique_name(self, wanted: str) -> str:
        """`wanted` made safe, with `-2`, `-3`, ... appended when the name is taken."""
        base = safe_name(wanted, "artifact")
        name, n = base, 1
        while (self.workspace.artifacts / name).exists():
            n += 1
            name = f"{base}-{n}"
        return name

    def publish(self, source: str | Path, entry: Entry) -> Entry:
        """Copy a trained artifact (a folder or one file) into a new library entry.

        Args:
            source: what the domain API wrote (checkpoints and previews inside it are left out).
            entry: its description; `entry.name` is made unique and `entry.artifact` set.

        Returns:
            The stored entry.
        """
        source = Path(source)
        entry.name = self.unique_name(entry.name)
        tmp = self.workspace.new_folder("tmp", entry.name)
        if source.is_dir():
            shutil.copytree(source, tmp / "a", ignore=shutil.ignore_patterns(*SKIPPED_ON_PUBLISH))
            entry.artifact = "."
            staged = tmp / "a"
        else:
            staged = tmp / "a"
            staged.mkdir()
            shutil.copy2(source, staged / source.name)
            entry.artifact = source.name
        write_json(staged / ENTRY_FILE, {k: v for k, v in asdict(entry).items() if k != "name"})
        staged.rename(self.workspace.artifacts / entry.name)  # appears complete or not at all
        shutil.rmtree(tmp, ignore_errors=True)
        return entry

    def rename(self, name: str, new_name: str) -> str:
        """Rename entry `name`; returns the new (sanitised) name.

        Raises:
            ValueError: no such entry, an empty name, or the name is taken.
        """
        folder = self.folder(name)
        target = safe_name(new_name, "")
        if not target:
            raise ValueError("the new name is empty (use letters, digits, '.', '_' or '-')")
        if (self.workspace.artifacts / target).exists():
            raise ValueError(f"an artifact named {target!r} already exists")
        folder.rename(self.workspace.inside("artifacts", target))
        return target

    def delete(self, name: str) -> None:
        """Delete entry `name` and its files."""
        shutil.rmtree(self.folder(name))

    def zip(self, name: str) -> Path:
        """A zip of entry `name` (its artifact and record) in `tmp/`, for download."""
        folder = self.folder(name)
        out = self.workspace.new_folder("tmp", f"download-{name}") / name
        return Path(shutil.make_archive(str(out), "zip", root_dir=folder))

    def rows(self) -> list[list[Any]]:
        """One table row per entry: name, domain, method, base model, size, date, metrics."""
        return [
            [
                e.name,
                e.domain,
                e.method,
                e.base_model or "",
                _human_size(folder_size(self.workspace.artifacts / e.name)),
                time.strftime("%Y-%m-%d %H:%M", time.localtime(e.created)),
                ", ".join(f"{k} {v:.3g}" for k, v in e.metrics.items()),
            ]
            for e in self.entries()
        ]


LIBRARY_HEADERS = ["name", "domain", "method", "base model", "size", "created", "metrics"]


def _human_size(size: int) -> str:
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"
