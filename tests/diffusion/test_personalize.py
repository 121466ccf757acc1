"""`personalize`: exact resume, previews through callbacks, prior preservation, and clear errors."""

import importlib
import json

import pytest
import torch
from safetensors.torch import load_file

import diffusion
from diffusion.artifacts import artifact_metadata, check_artifact, read_artifact, write_artifact_info
from diffusion.concept import Concept
from diffusion.control.sampling import PreparedCall
from diffusion.denoise import cubic_timesteps, denoising_loss, prediction_target, training_scheduler
from diffusion.latents import encode_latents
from tests.diffusion.tiny import concept_images
from tests.helpers import StopAt


def _ti(pipe, out, **kwargs):
    args = dict(token="<r>", init_token="red", steps=4, batch_size=2, lr=0.05, output_dir=out, progress=False)
    return diffusion.personalize(pipe, concept_images(), **{**args, **kwargs})


def test_resume_ends_exactly_where_an_uninterrupted_run_does(tiny_pipe, tmp_path):
    full = load_file(_ti(tiny_pipe, tmp_path / "full") / "learned_embeds.safetensors")["<r>"]
    stopped = _ti(tiny_pipe, tmp_path / "split", callbacks=[StopAt(2)])
    assert read_artifact(stopped).extra["steps_done"] == 2
    resumed = _ti(tiny_pipe, tmp_path / "split", resume=True)
    assert read_artifact(resumed).extra["steps_done"] == 4
    assert torch.equal(load_file(resumed / "learned_embeds.safetensors")["<r>"], full)


def test_previews_arrive_through_callbacks(tiny_pipe, tmp_path):
    seen = []
    _ti(tiny_pipe, tmp_path / "p", steps=2, preview_every=1, preview_steps=2,
        on_preview=lambda step, images: seen.append((step, images[0].size)))  # fmt: skip
    assert seen == [(1, (16, 16)), (2, (16, 16))]
    assert sorted(p.name for p in (tmp_path / "p" / "previews").iterdir()) == [
        "step-000001.png",
        "step-000002.png",
    ]


def test_prior_preservation_generates_class_images_once(tiny_pipe, tmp_path):
    art = diffusion.personalize(
        tiny_pipe, concept_images(2), method="svdiff", token="<r>", class_word="circle", steps=1, batch_size=2,
        prior_preservation=True, num_class_images=2, output_dir=tmp_path / "s", progress=False,
    )  # fmt: skip
    assert len(list((art / "class_images").glob("*.png"))) == 2
    assert read_artifact(art).hyperparameters["prior_preservation"] is True


def test_the_prior_loss_changes_the_update(tiny_pipe, tmp_path):
    def shifts(weight):
        art = diffusion.personalize(
            tiny_pipe, concept_images(2), method="svdiff", token="<r>", class_word="circle", steps=2,
            batch_size=2, lr=0.1, prior_preservation=True, class_images=concept_images(2, seed=5),
            prior_loss_weight=weight, output_dir=tmp_path / str(weight), progress=False,
        )  # fmt: skip
        return load_file(art / "unet" / "adapter_model.safetensors")

    without, weighted = shifts(0.0), shifts(1.0)
    assert without.keys() == weighted.keys()
    # the class images' term steers the shifts: measured 0.3 apart (two identical runs: within 1e-5)
    assert max((without[k] - weighted[k]).abs().max().item() for k in without) > 1e-2


def test_each_concepts_class_takes_the_users_class_images(tiny_pipe, tmp_path):
    def shifts(seed):
        art = diffusion.personalize(
            tiny_pipe, concept_images(2), method="svdiff", token="<r>", class_word="circle", steps=2,
            batch_size=2, lr=0.1, concepts=[Concept("<s>", concept_images(2, seed=2), "square")],
            prior_preservation=True, num_class_images=2, class_images={"square": concept_images(2, seed=seed)},
            output_dir=tmp_path / str(seed), progress=False,
        )  # fmt: skip
        assert len(list((art / "class_images").glob("*.png"))) == 2  # the first class's are drawn ...
        assert not (art / "class_images-square").exists()  # ... the second's are the user's
        return load_file(art / "unet" / "adapter_model.safetensors")

    one, other = shifts(5), shifts(6)
    assert max((one[k] - other[k]).abs().max().item() for k in one) > 1e-2  # and they steer the update
    with pytest.raises(ValueError, match=r"class word\(s\) \['dog'\] that no concept has"):
        diffusion.personalize(tiny_pipe, concept_images(1), token="<z>", class_word="circle",
                              class_images={"dog": concept_images(1)}, output_dir=tmp_path / "x")  # fmt: skip


def test_bad_inputs_are_clear_errors(tiny_pipe, tmp_path):
    with pytest.raises(ValueError, match="at least 1 image"):
        diffusion.personalize(tiny_pipe, [], token="<z>", output_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown personalization method"):
        diffusion.personalize(tiny_pipe, concept_images(1), method="dreambooth", output_dir=tmp_path)
    with pytest.raises(ValueError, match="class_word"):
        diffusion.personalize(tiny_pipe, concept_images(1), prior_preservation=True, output_dir=tmp_path)
    with pytest.raises(ValueError, match="one word without spaces"):
        diffusion.personalize(tiny_pipe, concept_images(1), token="my cat", output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_generate_is_seeded_and_uses_the_negative_prompt(tiny_pipe):
    run = lambda **kw: diffusion.generate(tiny_pipe, "a red circle", num_inference_steps=2, **kw)[0].tobytes()  # noqa: E731
    assert run(seed=1) == run(seed=1) != run(seed=2)
    assert run(seed=1, negative_prompt="blue") != run(seed=1)
    assert run(seed=1, scheduler="euler_a") != run(seed=1)


def test_control_inputs_go_through_the_control_seam(tiny_pipe, monkeypatch):
    gen = importlib.import_module("diffusion.generate")  # the module, not the function it exports
    calls = []

    def prepare(pipe, adapters, control_image=None, ip_image=None, **kw):
        calls.append((adapters, control_image))
        return PreparedCall(pipe, {}, lambda: calls.append("undone"))

    monkeypatch.setattr(gen, "prepare_control", prepare)
    diffusion.generate(tiny_pipe, "a", control_image="edges", num_inference_steps=1)
    assert calls == [([], "edges"), "undone"]


def test_artifact_records_and_detection(tmp_path):
    (tmp_path / "ti").mkdir()
    write_artifact_info(tmp_path / "ti", artifact_metadata("textual_inversion", "studio/shapes-sd", {"n": 1}))
    info = read_artifact(tmp_path / "ti")
    assert info.kind == "textual_inversion" and info.base_model == "studio/shapes-sd"
    with pytest.raises(ValueError, match="expected svdiff"):
        check_artifact(info, kinds=("svdiff",))
    with pytest.raises(ValueError, match="for base model 'studio/shapes-sd'"):
        check_artifact(info, base_model="stable-diffusion-v1-5/stable-diffusion-v1-5")
    check_artifact(info, base_model=str(diffusion.pipeline.resolve_asset("studio/shapes-sd")))  # same model
    (tmp_path / "cn").mkdir()
    (tmp_path / "cn" / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    assert read_artifact(tmp_path / "cn").is_control
    with pytest.raises(ValueError, match="not a known artifact"):
        read_artifact(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_artifact(tmp_path / "missing")


def test_denoising_targets_samplers_and_latent_flips(tiny_pipe):
    scheduler = training_scheduler(tiny_pipe)
    latents, noise, t = torch.randn(2, 4, 8, 8), torch.randn(2, 4, 8, 8), torch.tensor([5, 900])
    assert torch.equal(prediction_target(scheduler, latents, noise, t), noise)
    v_scheduler = training_scheduler(
        scheduler.__class__.from_config(scheduler.config, prediction_type="v_prediction")
    )
    assert torch.allclose(
        prediction_target(v_scheduler, latents, noise, t), v_scheduler.get_velocity(latents, noise, t)
    )
    seen = []
    loss = denoising_loss(lambda x, tt: seen.append(tt) or noise, latents, scheduler, noise=noise,
                          timestep_sampler=lambda b, n, d: torch.full((b,), n - 1, device=d))  # fmt: skip
    assert loss.item() == 0.0 and seen[0].tolist() == [999, 999]
    assert (cubic_timesteps(4000, 1000, "cpu").float().mean() > 600).item()  # biased to early sampling steps
    pixels = torch.rand(3, 3, 16, 16) * 2 - 1
    cache = encode_latents(tiny_pipe.vae, pixels, flip=True)
    assert len(cache) == 6 and cache.source_index(4) == 1 and cache.mean.shape[1:] == (4, 8, 8)
