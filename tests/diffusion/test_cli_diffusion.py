"""`studio diffusion personalize|generate`: the shell mirrors the Python API; bad input exits with code 2."""

from PIL import Image

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
