"""The studio's workspace: one folder holding every upload, dataset, job, artifact and generated image.

Nothing the browser sends may write outside it: uploaded files get names chosen here, zip members are
checked before extraction, and every path built from user text goes through `Workspace.inside`. Every image
of an upload is decoded once on arrival, so a damaged file is named (by the name the user gave it) before
any job is queued, not halfway through a training.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from studio.images import IMAGE_SUFFIXES, UnreadableImageError, check_image

CAPTION_SUFFIXES = (".txt", ".jsonl")
DEFAULT_MAX_UPLOAD_MB = 200
MAX_ZIP_MEMBERS = 20_000
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str = "item") -> str:
    """A file or folder name made of letters, digits, `.`, `_` and `-` only (no separators, no `..`).

    Args:
        text: what the user typed or the browser sent.
        fallback: used when nothing printable is left.
    """
    name = _SAFE_NAME.sub("-", str(text)).strip(".-_")
    return name[:100] or fallback


def unreadable(path: str | os.PathLike) -> str | None:
    """Why the image file `path` cannot be used, or None when it decodes completely.

    The same full decode as every domain's loader (`studio.images.check_image`), so a file accepted here
    also loads in training.

    Args:
        path: an image file.
    """
    try:
        check_image(path)
    except UnreadableImageError as err:
        return err.problem
    return None


def check_images(files: dict[Path, str]) -> None:
    """Refuse an upload holding any unreadable image, naming each by the name the user gave it.

    Args:
        files: image file -> its name in the upload (a file name, or a zip member's path).

    Raises:
        ValueError: one line listing every unreadable image and why.
    """
    bad = [(name, reason) for path, name in files.items() if (reason := unreadable(path))]
    if len(bad) == 1:
        name, reason = bad[0]
        raise ValueError(f"{name} is not a readable image ({reason}): remove or replace it and upload again")
    if bad:
        listed = "; ".join(f"{name} ({reason})" for name, reason in bad)
        raise ValueError(
            f"{len(bad)} files are not readable images: {listed}. Remove or replace them and upload again"
        )


def check_upload(files: Iterable[str | os.PathLike] | None) -> None:
    """Check the images of a fresh upload as soon as the browser sends them (zips are checked on import).

    Args:
        files: the paths of the upload (gradio keeps each file's original name).

    Raises:
        ValueError: an unreadable image, named.
    """
    paths = [Path(f) for f in files or []]
    check_images({p: p.name for p in paths if p.suffix.lower() in IMAGE_SUFFIXES})


class Workspace:
    """The studio's folder: `uploads/`, `datasets/`, `jobs/`, `artifacts/`, `generations/`, `tmp/`.

    Args:
        root: the folder (created if needed).
        max_upload_mb: the most megabytes one upload (all its files, or a zip's extracted content) may hold.
    """

    SUBDIRS = ("uploads", "datasets", "jobs", "artifacts", "generations", "tmp")

    def __init__(self, root: str | os.PathLike, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB) -> None:
        self.root = Path(root).expanduser().resolve()
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        for sub in self.SUBDIRS:
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name: str) -> Path:
        # `ws.jobs`, `ws.artifacts`, ...: the subfolders as attributes.
        if name in Workspace.SUBDIRS:
            return self.root / name
        raise AttributeError(name)

    def inside(self, *parts: str | os.PathLike) -> Path:
        """`root/parts...`, refusing anything that resolves outside the workspace.

        Raises:
            ValueError: the path escapes the workspace (`..`, an absolute path, a symlink out).
        """
        path = self.root.joinpath(*map(str, parts)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"{'/'.join(map(str, parts))!r} is outside the studio's workspace")
        return path

    def new_folder(self, kind: str, label: str = "") -> Path:
        """A new, empty, uniquely named folder under `kind` (one of `SUBDIRS`).

        Args:
            kind: the subfolder, e.g. `"uploads"`.
            label: a readable prefix for the name.
        """
        if kind not in self.SUBDIRS:
            raise ValueError(f"unknown workspace folder {kind!r}")
        prefix = safe_name(label, "") + "-" if label else ""
        folder = self.inside(kind, f"{prefix}{uuid.uuid4().hex[:8]}")
        folder.mkdir(parents=True)
        return folder

    def import_files(
        self, files: Iterable[str | os.PathLike], label: str = "upload", suffixes=IMAGE_SUFFIXES
    ) -> Path:
        """Copy uploaded files (and the content of uploaded zips) into a new folder under `uploads/`.

        Args:
            files: paths the browser's upload produced (outside the workspace, in gradio's temp folder).
            label: prefix of the new folder's name.
            suffixes: file types kept (case-insensitive); zips are extracted, other types are an error.

        Returns:
            The folder. Plain files land at its top under their (sanitised) names; zip members keep their sub-folders.

        Raises:
            ValueError: nothing uploaded, a file type not accepted, more than the upload limit, or an image
                that does not decode (named as uploaded).
        """
        files = [Path(f) for f in files or []]
        if not files:
            raise ValueError("no file uploaded")
        total = sum(f.stat().st_size for f in files)
        self._check_size(total)
        dest = self.new_folder("uploads", label)
        names: dict[Path, str] = {}  # every file written -> its name as the user knows it
        try:
            for i, src in enumerate(files):
                suffix = src.suffix.lower()
                if suffix == ".zip":
                    names.update(self.extract_zip(src, dest, suffixes))
                elif suffix in suffixes:
                    # The original name (made safe) keeps captions paired with their images.
                    target = dest / f"{safe_name(src.stem)}{suffix}"
                    if target.exists():
                        target = dest / f"{safe_name(src.stem)}-{i}{suffix}"
                    shutil.copyfile(src, target)
                    names[target] = src.name
                else:
                    raise ValueError(
                        f"{src.name}: not an accepted file type (expected {', '.join(suffixes)} or .zip)"
                    )
            check_images({p: n for p, n in names.items() if p.suffix.lower() in IMAGE_SUFFIXES})
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return dest

    def extract_zip(self, archive: str | os.PathLike, dest: Path, suffixes=IMAGE_SUFFIXES) -> dict[Path, str]:
        """Extract the members of `archive` with an accepted suffix into `dest`, safely.

        Absolute names, `..`, symlinks and device entries are refused; names are sanitised part by part;
        the declared and the actual extracted sizes are both held to the upload limit (zip bombs).

        Args:
            archive: the zip file.
            dest: a folder inside the workspace.
            suffixes: member types kept; others (e.g. `__MACOSX/` junk, READMEs) are skipped.

        Returns:
            Each extracted file with its member name in the zip.

        Raises:
            ValueError: an unsafe member, too many members, more than the upload limit, or a bad zip.
        """
        dest = self.inside(dest.relative_to(self.root) if dest.is_absolute() else dest)
        try:
            with zipfile.ZipFile(archive) as zf:
                members = [m for m in zf.infolist() if not m.is_dir()]
                if len(members) > MAX_ZIP_MEMBERS:
                    raise ValueError(
                        f"the zip has {len(members)} files; at most {MAX_ZIP_MEMBERS} are accepted"
                    )
                self._check_size(sum(m.file_size for m in members))
                written, extracted = 0, {}
                for member in members:
                    target = self._member_target(member, dest)
                    if target is None or target.suffix.lower() not in suffixes:
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(target, "wb") as out:
                        while chunk := src.read(1 << 20):
                            written += len(chunk)
                            self._check_size(written)  # the declared size may lie
                            out.write(chunk)
                    extracted[target] = f"{Path(archive).name}:{member.filename}"
        except zipfile.BadZipFile as err:
            raise ValueError(f"{Path(archive).name} is not a valid zip file ({err})") from None
        return extracted

    def _member_target(self, member: zipfile.ZipInfo, dest: Path) -> Path | None:
        name = PurePosixPath(member.filename.replace("\\", "/"))
        kind = stat.S_IFMT(member.external_attr >> 16)  # 0 when the archiver recorded no file type
        if name.is_absolute() or ".." in name.parts or (kind and kind != stat.S_IFREG):
            raise ValueError(
                f"refusing unsafe zip member {member.filename!r} (absolute path, '..' or a link)"
            )
        if any(part.startswith(".") or part == "__MACOSX" for part in name.parts):
            return None  # hidden files and macOS resource forks
        parts = [safe_name(p) for p in name.parts[:-1]] + [safe_name(name.stem) + name.suffix.lower()]
        target = dest.joinpath(*parts)
        if not target.resolve().is_relative_to(dest):
            raise ValueError(f"refusing zip member {member.filename!r} outside the upload folder")
        return target

    def _check_size(self, size: int) -> None:
        if size > self.max_upload_bytes:
            raise ValueError(
                f"the upload holds {size / 2**20:.1f} MB; the studio accepts at most "
                f"{self.max_upload_bytes / 2**20:.0f} MB per upload (start it with a larger --max-upload-mb)"
            )


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under `folder`, recursively, in sorted order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def folder_size(path: str | os.PathLike) -> int:
    """Bytes of a file, or of every file under a folder."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
