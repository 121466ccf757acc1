"""Personalization methods come from the registry: each trainer takes `config=` (object or dict) like
`personalize` takes keywords, and every option reaches the artifact from Python and from the CLI."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import diffusion
from diffusion.artifacts import read_artifact
from diffusion.custom_diffusion import WEIGHTS_FILE, CustomDiffusionConfig, train_custom_diffusion
from diffusion.difffit import DiffFitConfig, train_difffit
from diffusion.lora import KOHYA_FILE, LORA_FILE, DiffusionLoRAConfig, train_lora
from diffusion.svdiff import SVDiffConfig, train_svdiff
from diffusion.textual_inversion import TextualInversionConfig, train_textual_inversion
from studio.cli import build_parser, main
from studio.core import get_method, method_names
from tests.diffusion.tiny import concept_images

RUN = dict(token="<r>", class_word="circle", steps=1, batch_size=2, progress=False)


def _tensors(file):
    return load_file(file)


def _same_artifact(a, b, files):
    for name in files:
        x, y = _tensors(a / name), _tensors(b / name)
        # two SVDiff runs agree to float rounding, not bit for bit (as the prior-loss test notes)
        assert x.keys() == y.keys() and all(torch.allclose(x[k], y[k], atol=1e-5) for k in x), name
    hyper = (read_artifact(a).hyperparameters, read_artifact(b).hyperparameters)
    assert hyper[0] == hyper[1]


@pytest.mark.parametrize(
    ("trainer", "config", "options", "files"),
    [
        (
            train_textual_inversion,
            TextualInversionConfig(init_token="red", num_vectors=2, lr=0.05),
            {"init_token": "red", "num_vectors": 2, "lr": 0.05},
            ["learned_embeds.safetensors"],
        ),
        (
            train_svdiff,
            SVDiffConfig(lr=0.1, lr_norm=0.01, include_norms=False, train_text_encoder=True),
            {"lr": 0.1, "lr_norm": 0.01, "include_norms": False, "train_text_encoder": True},
            ["unet/adapter_model.safetensors", "text_encoder/adapter_model.safetensors"],
        ),
        (
            train_lora,
            DiffusionLoRAConfig(r=2, alpha=1.0, lr=0.01, train_text_encoder=True),
            {"r": 2, "alpha": 1.0, "lr": 0.01, "train_text_encoder": True},
            [LORA_FILE, KOHYA_FILE],
        ),
        (
            train_difffit,
            DiffFitConfig(lr=0.01, train_norms=False),
            {"lr": 0.01, "train_norms": False},
            ["unet/adapter_model.safetensors"],
        ),
        (
            train_custom_diffusion,
            CustomDiffusionConfig(lr=0.001, train_q_out=True),
            {"lr": 0.001, "train_q_out": True},
            [WEIGHTS_FILE, "learned_embeds.safetensors"],
        ),
    ],
)
def test_each_trainer_takes_a_config_object_or_dict_like_personalize_takes_keywords(
    tiny_pipe, tmp_path, trainer, config, options, files
):
    method = config.method
    assert get_method(method, "diffusion").train is trainer  # registered as the folder's trainer
    by_keywords = diffusion.personalize(
        tiny_pipe, concept_images(2), method, output_dir=tmp_path / "kw", **RUN, **options
    )
    by_object = trainer(tiny_pipe, concept_images(2), config, output_dir=tmp_path / "obj", **RUN)
    by_dict = trainer(tiny_pipe, concept_images(2), config.to_dict(), output_dir=tmp_path / "dict", **RUN)
    _same_artifact(by_keywords, by_object, files)
    _same_artifact(by_keywords, by_dict, files)
    recorded = read_artifact(by_keywords).hyperparameters
    assert {k: recorded[k] for k in options} == options  # the options reached the run, not the defaults


def test_an_option_of_another_method_is_an_error_listing_the_known_ones(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['num_vectors'\] for svdiff.*lr_norm"):
        diffusion.personalize(tiny_pipe, concept_images(1), "svdiff", num_vectors=2, output_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown TextualInversionConfig fields"):
        train_textual_inversion(tiny_pipe, concept_images(1), {"scale": 0.5}, output_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_svdiff_options_set_from_the_cli_reach_the_saved_artifact(tiny_sd_dir, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, image in enumerate(concept_images(2)):
        image.save(images / f"{i}.png")
    art = tmp_path / "art"
    code = main(["diffusion", "personalize", "--model", str(tiny_sd_dir), "--images", str(images),
                 "--method", "svdiff", "--token", "<q>", "--class-word", "circle", "--steps", "1",
                 "--batch-size", "2", "--set", "scale=0.5", "--set", "include_norms=false", "--out", str(art)])  # fmt: skip
    assert code == 0
    saved = json.loads((art / "unet" / "adapter_config.json").read_text())["config"]
    assert saved["scale"] == 0.5 and saved["include_norms"] is False
    assert not any("norm" in k for k in _tensors(art / "unet" / "adapter_model.safetensors"))


def test_a_bad_set_option_is_refused_in_one_line_before_the_model_loads(tmp_path, capsys):
    code = main(["diffusion", "personalize", "--model", str(tmp_path / "missing"), "--images", str(tmp_path),
                 "--method", "svdiff", "--token", "<q>", "--set", "num_vectors=2", "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 2
    assert "unknown SVDiffConfig fields ['num_vectors']" in capsys.readouterr().err


def test_the_cli_offers_the_registered_personalization_methods():
    parser = build_parser()
    personalize = _subparser(_subparser(parser, "diffusion"), "personalize")
    (method,) = [a for a in personalize._actions if a.dest == "method"]
    assert list(method.choices) == method_names("diffusion", "personalize")
    assert method_names("diffusion", "personalize") == [
        "custom_diffusion", "difffit", "lora", "svdiff", "textual_inversion"
    ]  # fmt: skip
    help_text = personalize.format_help()
    assert all(f"  {name}: " in help_text for name in method_names("diffusion", "personalize"))
    assert "num_vectors=1" in help_text and "include_norms=True" in help_text
    # diffusers' models run without dropout, so train/eval mode of the frozen parts is not offered
    assert "frozen_eval" not in help_text
    assert all("frozen_eval" not in [f.name for f in get_method(name, "diffusion").config_cls.options()]
               for name in method_names("diffusion", "personalize"))  # fmt: skip


def _subparser(parser, name):
    (commands,) = [a for a in parser._actions if a.choices and name in a.choices]
    return commands.choices[name]


def test_a_new_method_is_its_folder_and_one_registration(tiny_sd_dir, tmp_path, scratch_registry):
    from studio.core import MethodConfig, hfield, register_method
    from studio.ui import build_app

    @dataclass
    class ToyConfig(MethodConfig):
        method = "toy"
        strength: float = hfield(1.0, "How strongly the toy learns.")

    calls = []

    def train_toy(pipe, images, config=None, *, run=None, **options):
        calls.append((config, options))
        return Path(options["output_dir"])

    register_method(ToyConfig, domain="diffusion", task="personalize", train=train_toy)
    code = main(["diffusion", "personalize", "--model", str(tiny_sd_dir), "--images", str(tmp_path),
                 "--method", "toy", "--token", "<q>", "--set", "strength=2", "--out", str(tmp_path / "a")])  # fmt: skip
    assert code == 0
    assert calls[0][0] == ToyConfig(strength=2.0) and calls[0][1]["token"] == "<q>"
    personalize = _subparser(_subparser(build_parser(), "diffusion"), "personalize")
    assert "  toy: strength=1.0" in personalize.format_help()
    app = build_app(tmp_path / "ws")
    (radio,) = [b for b in app.blocks.values() if getattr(b, "elem_id", None) == "personalize-method"]
    assert "toy" in [value for _, value in radio.choices]
