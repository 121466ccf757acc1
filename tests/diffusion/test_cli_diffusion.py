"""`studio diffusion personalize|generate`: the shell mirrors the Python API; bad input exits with code 2."""

import pytest
import torch
from diffusers import UNet2DConditionModel
from PIL import Image
from transformers import CLIPTextModel

from diffusion.artifacts import read_artifact
from studio.cli import main
from tests.diffusion.tiny import concept_images


def test_personalize_then_generate_from_the_shell(tiny_sd_dir, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i, image in enumerate(concept_images(2)):
        image.save(images / f"{i}.png")
    art = tmp_path / "art"
    code = main(["diffusion", "personalize", "--model", str(tiny_sd_dir), "--images", str(images),
                 "--token", "<q>", "--set", "init_token=red", "--steps", "1", "--batch-size", "2", "--out", str(art)])  # fmt: skip
    assert code == 0 and (art / "learned_embeds.safetensors").is_file()
    code = main(["diffusion", "generate", "--model", str(tiny_sd_dir), "--prompt", "a <q>", "--adapter", str(art),
                 "--steps", "2", "--scheduler", "dpm++", "--num-images", "2", "--out", str(tmp_path / "out")])  # fmt: skip
    assert code == 0
    written = sorted((tmp_path / "out").glob("*.png"))
    assert len(written) == 2 and Image.open(written[0]).size == (16, 16)
    capsys.readouterr()
    code = main(["diffusion", "generate", "--model", str(tiny_sd_dir), "--prompt", "a", "--adapter",
                 str(images), "--steps", "1", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert code == 2 and "not a known artifact" in capsys.readouterr().err


def test_several_concepts_and_cut_mix_unmix_from_the_shell(tiny_sd_dir, tmp_path, capsys):
    folders = []
    for seed in (1, 2):
        folders.append(tmp_path / f"images{seed}")
        folders[-1].mkdir()
        for i, image in enumerate(concept_images(2, seed=seed)):
            image.save(folders[-1] / f"{i}.png")
    base = ["diffusion", "personalize", "--model", str(tiny_sd_dir), "--method", "svdiff", "--images",
            str(folders[0]), "--token", "<a>", "--class-word", "circle", "--steps", "1", "--batch-size", "2"]  # fmt: skip
    art = tmp_path / "art"
    code = main([*base, "--concept", "<b>", "square", str(folders[1]), "--set", "cut_mix_unmix=true",
                 "--set", "cut_mix_probability=1", "--out", str(art)])  # fmt: skip
    assert code == 0
    info = read_artifact(art)
    assert info.hyperparameters["cut_mix_unmix"] is True
    assert info.extra["concepts"] == [{"token": "<b>", "class_word": "square"}]
    capsys.readouterr()
    missing = str(tmp_path / "no-model")  # refused before the model loads: this one would fail to
    code = main([*base, "--model", missing, "--set", "cut_mix_unmix=true", "--out", str(tmp_path / "one")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("studio: error:")]
    assert code == 2 and len(errors) == 1 and "cut_mix_unmix needs two or more concepts" in errors[0]
    assert "--concept TOKEN CLASS_WORD IMAGES" in errors[0]


def test_class_images_for_each_concepts_class_from_the_shell(tiny_sd_dir, tmp_path, capsys):
    folders = {}
    for word, seed in (("circle", 1), ("square", 2)):
        folders[word] = tmp_path / word
        folders[word].mkdir()
        for i, image in enumerate(concept_images(2, seed=seed)):
            image.save(folders[word] / f"{i}.png")
    base = ["diffusion", "personalize", "--model", str(tiny_sd_dir), "--method", "svdiff", "--images",
            str(folders["circle"]), "--token", "<a>", "--class-word", "circle", "--concept", "<b>", "square",
            str(folders["square"]), "--prior-preservation", "--steps", "1", "--batch-size", "2"]  # fmt: skip
    art = tmp_path / "art"
    given = ["--class-images", str(folders["circle"]), "--class-images", f"square={folders['square']}"]
    assert main([*base, *given, "--out", str(art)]) == 0
    assert not list(art.glob("class_images*"))  # both classes used the user's images; none were drawn

    for bad, message in (
        (["--class-images", "a", "--class-images", "b"], "one plain FOLDER"),
        (["--class-images", f"triangle={folders['square']}"], "['triangle'] that no concept has"),
    ):
        capsys.readouterr()
        code = main([*base, *bad, "--out", str(tmp_path / "bad")])
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("studio: error:")]
        assert code == 2 and len(errors) == 1 and message in errors[0] and "Traceback" not in err


def test_exports_from_the_shell_keep_the_text_encoder_shifts(tiny_sd_dir, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    for i, image in enumerate(concept_images(2)):
        image.save(images / f"{i}.png")
    art, model = tmp_path / "art", ["--model", str(tiny_sd_dir)]
    code = main(["diffusion", "personalize", *model, "--method", "svdiff", "--images", str(images), "--token", "<q>",
                 "--set", "train_text_encoder=true", "--set", "lr=0.5", "--steps", "1", "--batch-size", "2",
                 "--out", str(art)])  # fmt: skip
    assert code == 0

    def export(command, out):
        capsys.readouterr()
        code = main(["diffusion", command, *model, "--adapter", str(art), "--out", str(tmp_path / out)])
        return code, capsys.readouterr()

    code, printed = export("export-merged", "merged")
    assert code == 0 and printed.out.split() == [
        str(tmp_path / "merged" / n) for n in ("unet", "text_encoder")
    ]
    shifted = CLIPTextModel.from_pretrained(tmp_path / "merged", subfolder="text_encoder").state_dict()
    base = CLIPTextModel.from_pretrained(tiny_sd_dir / "text_encoder").state_dict()
    assert any(not torch.equal(shifted[k], base[k]) for k in base)  # the shifts are in the export

    with pytest.warns(UserWarning, match="also adapts text_encoder, which a merged UNet leaves out"):
        code, printed = export("export-unet", "unet")
    assert code == 0 and printed.out.strip() == str(tmp_path / "unet")
    alone, merged = (UNet2DConditionModel.from_pretrained(tmp_path / "unet"),
                     UNet2DConditionModel.from_pretrained(tmp_path / "merged", subfolder="unet"))  # fmt: skip
    assert all(torch.equal(a, b) for a, b in zip(alone.parameters(), merged.parameters(), strict=True))

    art = tmp_path / "unet"  # a UNet folder is no artifact
    code, printed = export("export-merged", "bad")
    errors = [line for line in printed.err.splitlines() if line.startswith("studio: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in printed.err
