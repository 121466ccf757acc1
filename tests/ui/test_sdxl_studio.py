"""The studio on an SDXL base the user put in the workspace: the base model box takes its folder by a path relative
to the workspace, a personalization trains on it with previews, the Generate tab samples with the artifact at
the pipeline's own resolution (picking the artifact sets the base model), and the download says how stock
diffusers loads it on SDXL."""

import shutil
import zipfile

import pytest
from diffusers import UNet2DConditionModel
from PIL import Image

from studio.ui.tabs import personalize
from studio.ui.tabs.generate import base_model_of_choice
from studio.ui.tasks.diffusion import PipelineCache, export_artifact, sample
from tests.diffusion.tiny import build_tiny_sdxl_pipeline

MODEL = "models/tiny-sdxl"  # as the user types it: relative to the workspace


@pytest.fixture(scope="module")
def sdxl_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdxl") / "tiny-sdxl"
    build_tiny_sdxl_pipeline().save_pretrained(folder, safe_serialization=True)
    return folder


@pytest.fixture
def sdxl_studio(studio, sdxl_folder):
    shutil.copytree(sdxl_folder, studio.workspace.root / MODEL)
    return studio


def test_a_relative_model_path_is_the_workspace_folder_and_never_one_outside(sdxl_studio, tmp_path):
    local = str(sdxl_studio.workspace.root / MODEL)
    assert sdxl_studio.models.check("base model", MODEL) == local  # not taken for a hub id
    assert sdxl_studio.models.check("base model", "org/name") == "org/name"  # no such folder: a hub id
    (tmp_path / "outside").mkdir()
    with pytest.raises(ValueError, match=r"^base model: '\.\./outside' is outside the folders"):
        sdxl_studio.models.check("base model", "../outside")


@pytest.mark.parametrize(
    ("method", "note"), [("custom_diffusion", "state['clip_g']"), ("difffit", "from_pretrained")]
)
def test_personalize_then_generate_and_export_on_an_sdxl_base(sdxl_studio, concept_files, method, note):
    studio = sdxl_studio
    job = studio.jobs.wait(personalize.start(studio, concept_files, MODEL, method, "<q>", "circle", 2, 2, method,
                                             {"batch_size": 2}), 240)  # fmt: skip
    assert job.status == "done", job.message
    (preview,) = job.previews
    assert Image.open(studio.jobs.job_folder(job.id) / preview["path"]).size == (16, 16)
    entry = studio.library.get(method)
    assert entry.base_model == str(studio.workspace.root / MODEL)
    assert base_model_of_choice(studio, [method], "studio/shapes-sd") == entry.base_model

    settings = {"model": entry.base_model, "prompt": "a <q> circle", "seed": 1, "steps": 2, "guidance": 4.0,
                "adapters": [method]}  # fmt: skip
    ((path, caption),) = sample(studio, PipelineCache(), settings)
    assert Image.open(path).size == (16, 16)  # the pipeline's own resolution, not a fixed 512 or 64
    assert method in caption

    archive, shown = export_artifact(studio, method)
    assert note in shown
    if method == "difffit":  # the merged SDXL UNet, loadable with stock from_pretrained
        out = archive.parent / "unzipped"
        zipfile.ZipFile(archive).extractall(out)
        unet = UNet2DConditionModel.from_pretrained(out, subfolder="unet")
        assert unet.config.addition_embed_type == "text_time"
