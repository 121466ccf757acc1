"""The workspace: uploads stay inside it, zips are extracted safely, sizes are limited."""

import re
import stat
import zipfile

import pytest
from PIL import Image

from studio.ui.models import ModelPaths
from studio.ui.workspace import Workspace, check_upload, safe_name


def test_uploads_are_copied_inside_under_safe_names(tmp_path, png):
    ws = Workspace(tmp_path / "ws")
    folder = ws.import_files([png("a b.png"), png("../evil.png")], "up")
    assert folder.is_relative_to(ws.root / "uploads")
    assert sorted(p.name for p in folder.iterdir()) == ["a-b.png", "evil.png"]


def test_paths_from_user_text_never_leave_the_workspace(tmp_path):
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="outside"):
        ws.inside("..", "elsewhere")
    with pytest.raises(ValueError, match="outside"):
        ws.inside("/etc/passwd")
    assert safe_name("../../x/y") == "x-y" and "/" not in safe_name("a/b\\c")


def test_zip_members_land_in_subfolders_and_junk_is_skipped(tmp_path, png):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(png(), "train/star/1.png")
        zf.write(png(), "__MACOSX/train/._1.png")
        zf.writestr("notes.exe", b"x")
    ws = Workspace(tmp_path / "ws")
    folder = ws.import_files([archive])
    assert [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()] == [
        "train/star/1.png"
    ]


@pytest.mark.parametrize("name", ["../escape.png", "/abs/escape.png", "a/../../escape.png"])
def test_zip_with_an_escaping_member_is_refused(tmp_path, png, name):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), png().read_bytes())  # ZipInfo keeps the name as given
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(ValueError, match="unsafe zip member"):
        ws.import_files([archive])
    assert not (tmp_path / "escape.png").exists() and not list(ws.uploads.iterdir())  # nothing left behind


def test_zip_symlink_member_is_refused(tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(ValueError, match="unsafe zip member"):
        Workspace(tmp_path / "ws").import_files([archive])


def test_upload_and_zip_bomb_size_limits(tmp_path, png):
    ws = Workspace(tmp_path / "ws", max_upload_mb=0.01)
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 20_000)
    with pytest.raises(ValueError, match="at most"):
        ws.import_files([big])
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.png", b"\0" * 1_000_000)  # compresses to ~1 kB
    assert bomb.stat().st_size < ws.max_upload_bytes
    with pytest.raises(ValueError, match="at most"):
        ws.import_files([bomb])


def test_bad_files_give_readable_errors(tmp_path):
    ws = Workspace(tmp_path / "ws")
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(ValueError, match="not an accepted file type"):
        ws.import_files([text])
    fake = tmp_path / "fake.zip"
    fake.write_text("not a zip")
    with pytest.raises(ValueError, match="not a valid zip"):
        ws.import_files([fake])
    with pytest.raises(ValueError, match="no file uploaded"):
        ws.import_files([])


@pytest.fixture
def bad_images(tmp_path, png):
    """An empty file, a text file renamed .png and a truncated JPEG (its header alone passes a verify)."""
    empty = tmp_path / "bad" / "empty.png"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    text = tmp_path / "bad" / "notes.png"
    text.write_text("not an image")
    full = tmp_path / "full.jpg"
    Image.effect_noise((64, 64), 50).convert("RGB").save(full, quality=95)
    cut = tmp_path / "bad" / "cut.jpg"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    return {"empty.png": empty, "notes.png": text, "cut.jpg": cut}


@pytest.mark.parametrize("name", ["empty.png", "notes.png", "cut.jpg"])
def test_an_unreadable_image_is_refused_on_arrival_by_its_name(tmp_path, png, bad_images, name):
    ws = Workspace(tmp_path / "ws")
    good = [png(f"good{i}.png") for i in range(5)]
    with pytest.raises(ValueError, match=rf"^{name} is not a readable image \(") as err:
        ws.import_files([*good, bad_images[name]])
    assert "image 5" not in str(err.value) and "Resume" not in str(err.value)
    assert not list(ws.uploads.iterdir())  # nothing half-imported stays behind
    with pytest.raises(ValueError, match=name):
        check_upload([*good, bad_images[name]])


def test_every_unreadable_image_of_a_zip_is_listed_by_its_member_name(tmp_path, png, bad_images):
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(png(), "train/star/ok.png")
        zf.write(bad_images["cut.jpg"], "train/star/cut.jpg")
        zf.write(bad_images["empty.png"], "train/heart/empty.png")
    with pytest.raises(ValueError, match="2 files are not readable images") as err:
        Workspace(tmp_path / "ws").import_files([archive])
    message = str(err.value)
    assert re.search(r"data\.zip:train/star/cut\.jpg \([^)]*truncated", message)
    assert "data.zip:train/heart/empty.png (an empty file)" in message


@pytest.mark.parametrize(
    "typed",
    [
        "/etc/passwd",
        "~/.ssh/id_rsa",
        "../outside.safetensors",
        "local-dir:/etc",
        "studio/../../etc",
        "x/../../y.pt",
    ],
)
def test_a_local_model_path_outside_the_allowed_folders_is_refused(tmp_path, typed):
    paths = ModelPaths(tmp_path / "ws")
    with pytest.raises(ValueError, match=r"^pretrained: .* (outside the folders|not a bundled)") as err:
        paths.check("pretrained", typed)
    assert "\n" not in str(err.value)


def test_names_hub_ids_and_files_in_the_allowed_folders_pass(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "clip.pt").write_bytes(b"")
    ws = Workspace(tmp_path / "ws")
    (ws.root / "mine.safetensors").write_bytes(b"")
    only_workspace, both = ModelPaths(ws.root), ModelPaths(ws.root, models)
    for name in ("studio/shapes-sd", "org/model", "hf-hub:org/model", "ViT-B-32", "laion2b_s34b_b79k", ""):
        assert both.check("model", name) == name
    assert both.check("weights", "none", keywords=("none",)) == "none"
    assert both.check("weights", "mine.safetensors") == str(
        ws.root / "mine.safetensors"
    )  # inside the workspace
    assert both.check("pretrained", str(models / "clip.pt")) == str(models / "clip.pt")
    assert both.check("model", f"local-dir:{models}") == f"local-dir:{models}"
    with pytest.raises(ValueError, match="start the studio with --models-dir"):
        only_workspace.check("pretrained", str(models / "clip.pt"))
    with pytest.raises(ValueError, match="no such folder"):
        ModelPaths(ws.root, tmp_path / "missing")
