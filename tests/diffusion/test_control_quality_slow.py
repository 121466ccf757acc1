"""Control works on the bundled `studio/shapes-sd` (slow): after training, samples follow the condition mask,
and IP-Adapter samples take the reference image's colour.

Numbers are printed (run with `-s`) and recorded in the report; the assertions keep a margin below them.
"""

import numpy as np
import pytest

import diffusion
from diffusion.conditions import mask as foreground
from studio.world import COLOURS, Scene, render_with_conditions, sample_scenes
from tests.diffusion.tiny import write_control_pairs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
SIZE = 64
SAMPLE = {"num_inference_steps": 20, "guidance_scale": 5.0}


def _iou(image, truth) -> float:
    ours, truth = np.asarray(foreground(image)) > 127, np.asarray(truth) > 127
    return float((ours & truth).sum() / max((ours | truth).sum(), 1))


def _colour_of(image) -> str:
    """The palette colour nearest to the mean of the sample's foreground pixels."""
    pixels = np.asarray(image, dtype=np.float32)[np.asarray(foreground(image)) > 127]
    if len(pixels) == 0:
        return "none"
    mean = pixels.mean(0)
    return min(COLOURS, key=lambda c: np.linalg.norm(mean - np.asarray(COLOURS[c], np.float32)))


@pytest.fixture(scope="module")
def pipe():
    return diffusion.load_pipeline("studio/shapes-sd", disable_progress_bar=True)


@pytest.mark.parametrize(("method", "lr"), [("controlnet", 1e-4), ("t2i_adapter", 3e-4)])
def test_samples_follow_the_condition_mask(pipe, tmp_path, method, lr):
    scenes = sample_scenes(96, seed=1, size="small")  # small objects: where they sit is up to the condition
    write_control_pairs(tmp_path / "train", scenes, SIZE, seed=0)
    art = diffusion.train_control(
        pipe, tmp_path / "train", method=method, steps=800, output_dir=tmp_path / "art", batch_size=8,
        config={"lr": lr}, progress=False,
    )  # fmt: skip
    tests = write_control_pairs(tmp_path / "test", sample_scenes(16, seed=99, size="small"), SIZE, seed=500)
    trained, untrained = [], []
    for i, r in enumerate(tests):
        base = diffusion.generate(pipe, r["caption"], seed=i, **SAMPLE)[0]
        ours = diffusion.generate(
            pipe, r["caption"], adapters=[art], control_image=r["mask"], seed=i, **SAMPLE
        )[0]
        untrained.append(_iou(base, r["mask"]))
        trained.append(_iou(ours, r["mask"]))
    print(
        f"\n{method}: mean IoU with the condition mask {np.mean(trained):.3f} (untrained {np.mean(untrained):.3f})"
    )
    assert np.mean(trained) > np.mean(untrained) + 0.2


def test_ip_adapter_samples_take_the_reference_colour(pipe, tmp_path):
    def no_colour(scene):
        return scene.caption().replace(f"{scene.colour} ", "", 1)  # the colour must come from the image

    write_control_pairs(tmp_path / "train", sample_scenes(96, seed=2), SIZE, seed=0, caption=no_colour)
    art = diffusion.train_control(
        pipe, tmp_path / "train", method="ip_adapter", steps=2000, output_dir=tmp_path / "art", batch_size=8,
        config={"lr": 1e-3}, progress=False,
    )  # fmt: skip
    references = [Scene(shape, colour, background="grey") for shape, colour in
                  [("circle", "red"), ("square", "blue"), ("hexagon", "yellow"), ("diamond", "green"),
                   ("circle", "purple"), ("square", "orange")]]  # fmt: skip
    hits = {"trained": 0, "scale 0": 0, "colour in the prompt": 0}
    total = 0
    for scene in references:
        reference = render_with_conditions(scene, size=SIZE, seed=3)["image"]
        for seed in range(4):
            for name, scale in (("trained", 1.0), ("scale 0", 0.0)):
                image = diffusion.generate(
                    pipe, no_colour(scene), adapters=[art], ip_image=reference, ip_adapter_scale=scale, seed=seed,
                    **SAMPLE,
                )[0]  # fmt: skip
                hits[name] += _colour_of(image) == scene.colour
            # For scale: how often the base model draws the colour when the prompt names it.
            hits["colour in the prompt"] += (
                _colour_of(diffusion.generate(pipe, scene.caption(), seed=seed, **SAMPLE)[0]) == scene.colour
            )
            total += 1
    rates = {k: v / total for k, v in hits.items()}
    print(f"\nip_adapter: share of samples in the reference colour {rates}")
    # Measured here: 0.50-0.54 (scale 0: 0.08; colour named in the prompt instead: 0.25).
    assert rates["trained"] > 0.4 and rates["trained"] > rates["scale 0"] + 0.25
