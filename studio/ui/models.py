"""Model names typed into the page: which local files and folders the studio may read.

A model box or a weights box accepts a bundled name (`studio/shapes-sd`), a hub id (`org/name`,
`hf-hub:org/name`), an architecture or pretrained tag (`ViT-B-32`), or a local path (a relative one is taken
inside the workspace, then inside the models folder, and wins over a hub id of the same name). A local path reaches
the loaders only when it lies inside the workspace or a folder the person who started the studio named
(`--models-dir`), so a client of the page cannot make the server open or probe any other file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

BUNDLED = re.compile(r"studio/[A-Za-z0-9_][\w.-]*")
HUB_ID = re.compile(r"[A-Za-z0-9_][\w.-]*(/[A-Za-z0-9_][\w.-]*)?")  # a name or org/name, never a path
LOCAL_PREFIX = "local-dir:"  # open_clip's scheme for a local folder
HUB_PREFIX = "hf-hub:"
# File types the loaders read: a name ending in one is a file, not a hub id or a tag.
MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".json")


class ModelPaths:
    """Checks the model references the page sends and confines local paths to the allowed folders.

    Args:
        workspace: the studio's workspace (relative paths are taken inside it).
        models_dir: one more folder the studio may read models from (`studio ui --models-dir`), or None.
    """

    def __init__(self, workspace: str | os.PathLike, models_dir: str | os.PathLike | None = None) -> None:
        self.workspace = Path(workspace).expanduser().resolve()
        self.roots = [self.workspace]
        if models_dir is not None:
            folder = Path(models_dir).expanduser().resolve()
            if not folder.is_dir():
                raise ValueError(f"--models-dir {models_dir}: no such folder")
            self.roots.append(folder)

    def check(self, field: str, value: str | None, keywords: tuple[str, ...] = ()) -> str:
        """`value` as the loaders should get it: unchanged for names and hub ids, an absolute path inside an
        allowed folder for a local path.

        Args:
            field: the box's name as the page shows it (for the error).
            value: what was typed (empty stays empty).
            keywords: words the box gives a meaning of its own (e.g. `"none"`), passed on unchanged.

        Returns:
            The reference to pass on.

        Raises:
            ValueError: a local path outside the allowed folders (one line naming the field, the value and
                the folders), or a bundled name that is not one folder name.
        """
        text = (value or "").strip()
        if not text or text.lower() in keywords:
            return text
        if text.startswith("studio/"):
            if not BUNDLED.fullmatch(text) or ".." in text:
                raise ValueError(f"{field}: {text!r} is not a bundled model name (studio/<name>)")
            return text
        if text.startswith(HUB_PREFIX) and HUB_ID.fullmatch(text.removeprefix(HUB_PREFIX)):
            return text
        if text.startswith(LOCAL_PREFIX):
            return LOCAL_PREFIX + str(self._confined(field, text.removeprefix(LOCAL_PREFIX), text))
        names_a_file = text.lower().endswith(MODEL_SUFFIXES)
        if HUB_ID.fullmatch(text) and not names_a_file and self._local(text) is None:
            return text  # a hub id, an architecture or a pretrained tag
        return str(self._confined(field, text, text))

    def _local(self, path_text: str) -> Path | None:
        # A relative path names a file or folder inside the workspace (or the models folder), never one
        # beside wherever the server happened to be started.
        for root in self.roots:
            path = (root / Path(path_text).expanduser()).resolve()
            if path.is_relative_to(root) and path.exists():
                return path
        return None

    def _confined(self, field: str, path_text: str, shown: str) -> Path:
        path = Path(path_text).expanduser()
        if not path.is_absolute():
            path = self._local(path_text) or self.workspace / path
        path = path.resolve()
        if any(path.is_relative_to(root) for root in self.roots):
            return path
        folders = " or ".join(str(root) for root in self.roots)
        hint = "" if len(self.roots) > 1 else "; start the studio with --models-dir FOLDER to allow another"
        raise ValueError(
            f"{field}: {shown!r} is outside the folders the studio may read models from ({folders}): "
            f"copy it there{hint}"
        )
