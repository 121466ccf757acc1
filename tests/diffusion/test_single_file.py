"""Offline single-file checkpoints: the shipped configs describe the real SD 1.x, SD 2.x and SDXL
architectures, the CLIP vocabulary is derived offline, the family is read off the keys, and `load_pipeline`
hands diffusers' `from_single_file` the shipped configs with the hub switched off."""

import json
import shutil

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import (
    AutoencoderKL,
    EulerDiscreteScheduler,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

import diffusion
from diffusion.single_file import checkpoint_family, shipped_config
from tests.diffusion.tiny import build_tiny_pipeline, build_tiny_sdxl_pipeline

# Parameter counts of the published models' components.
SIZES = {
    "sd1": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd2": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,
        "text_encoder_2": 694_659_840,
    },
}
BUILDERS = {
    "unet": lambda folder: UNet2DConditionModel.from_config(json.loads((folder / "config.json").read_text())),
    "vae": lambda folder: AutoencoderKL.from_config(json.loads((folder / "config.json").read_text())),
    "text_encoder": lambda folder: CLIPTextModel(CLIPTextConfig.from_pretrained(folder)),
    "text_encoder_2": lambda folder: CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(folder)),
}


def _key_file(path, key):
    save_file({key: torch.zeros(1)}, str(path))
    return path


@pytest.mark.parametrize("family", list(SIZES))
def test_shipped_configs_describe_the_published_architectures(family):
    with shipped_config(family) as folder, init_empty_weights():
        for component, size in SIZES[family].items():
            model = BUILDERS[component](folder / component)
            assert sum(p.numel() for p in model.parameters()) == size, component
        tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer")
    assert len(tokenizer) == 49408
    assert tokenizer("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_the_family_is_read_off_the_keys(tmp_path):
    assert (
        checkpoint_family(
            _key_file(tmp_path / "a.safetensors", "conditioner.embedders.1.model.ln_final.weight")
        )
        == "sdxl"
    )
    assert (
        checkpoint_family(_key_file(tmp_path / "b.safetensors", "cond_stage_model.model.ln_final.weight"))
        == "sd2"
    )
    sd1 = "cond_stage_model.transformer.text_model.final_layer_norm.weight"
    assert checkpoint_family(_key_file(tmp_path / "c.safetensors", sd1)) == "sd1"
    refiner = _key_file(tmp_path / "refiner.safetensors", "conditioner.embedders.0.model.ln_final.weight")
    with pytest.raises(ValueError, match=r"refiner\.safetensors is not a full SDXL base, SD 2\.x .*config="):
        diffusion.load_pipeline(refiner)


def test_an_sdxl_file_loads_offline_with_the_shipped_configs(tmp_path, monkeypatch):
    """diffusers' own `from_single_file` runs offline with an empty hub cache; the weights' conversion is
    diffusers' (the tiny model's components are handed in, as no original-layout tiny file exists), while the
    pipeline class, the tokenizers and the scheduler come from the shipped configs."""
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    tiny = build_tiny_sdxl_pipeline()
    components = {name: getattr(tiny, name) for name in ("unet", "vae", "text_encoder", "text_encoder_2")}
    real = StableDiffusionXLPipeline.from_single_file.__func__
    seen = {}

    def from_single_file(cls, path, **kwargs):
        seen.update(kwargs)
        return real(cls, path, **components, **kwargs)

    monkeypatch.setattr(StableDiffusionXLPipeline, "from_single_file", classmethod(from_single_file))
    file = _key_file(tmp_path / "xl.safetensors", "conditioner.embedders.1.model.ln_final.weight")
    pipe = diffusion.load_pipeline(file)
    assert type(pipe) is StableDiffusionXLPipeline and seen["local_files_only"] is True
    assert isinstance(pipe.scheduler, EulerDiscreteScheduler) and len(pipe.tokenizer_2) == 49408
    assert pipe.tokenizer.pad_token == "<|endoftext|>" and pipe.tokenizer_2.pad_token == "!"
    assert pipe.unet is tiny.unet and pipe.base_model_id == str(file)


def test_a_users_config_folder_replaces_the_shipped_one(tiny_sd_dir, tmp_path, monkeypatch):
    seen = {}

    def from_single_file(cls, path, **kwargs):
        seen.update(kwargs)
        return build_tiny_pipeline()

    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", classmethod(from_single_file))
    file = _key_file(tmp_path / "unet_only.safetensors", "model.diffusion_model.out.0.weight")
    diffusion.load_pipeline(file, config=tiny_sd_dir)  # no architecture guess from the keys is needed
    assert seen == {"config": str(tiny_sd_dir), "local_files_only": True}
    partial = tmp_path / "partial"
    shutil.copytree(tiny_sd_dir, partial, ignore=shutil.ignore_patterns("tokenizer.json"))
    with pytest.raises(FileNotFoundError, match=r"partial lacks tokenizer/vocab\.json"):
        diffusion.load_pipeline(file, config=partial)
