"""Preview samples while training each control method: the guide (condition or reference) beside samples.

A ControlNet / T2I-Adapter preview is guided by the example's condition image only; an IP-Adapter preview by
the example's image only (each sampling call refuses an input no artifact uses). Resuming previews too.
"""

import pytest
from PIL import Image

import diffusion
from studio.world import Scene
from tests.diffusion.tiny import write_control_pairs
from tests.helpers import StopAt


@pytest.fixture(scope="module")
def captioned(tmp_path_factory):
    """Two captioned renders without conditions: the conditions are derived by an extractor."""
    folder = tmp_path_factory.mktemp("captioned")
    scenes = [Scene(shape, "red", background="grey") for shape in ("circle", "square")]
    write_control_pairs(folder, scenes, caption=lambda scene: f"a red {scene.shape} on a grey background",
                        conditions=False)  # fmt: skip
    return folder


@pytest.mark.parametrize("method", ["controlnet", "t2i_adapter", "ip_adapter"])
def test_each_control_method_previews_while_training_and_after_resume(tiny_pipe, captioned, tmp_path, method):
    seen = []

    def train(**kw):
        return diffusion.train_control(
            tiny_pipe, captioned, method, condition=None if method == "ip_adapter" else "canny", steps=2,
            output_dir=tmp_path / "art", batch_size=2, progress=False, checkpoint_every=1, preview_every=1,
            preview_steps=1, on_preview=lambda step, images: seen.append((step, images)), **kw,
        )  # fmt: skip

    train(callbacks=[StopAt(1)])
    art = train(resume=True)
    assert [step for step, _ in seen] == [1, 2]
    guide, *samples = seen[-1][1]
    assert len(samples) == 2 and all(isinstance(im, Image.Image) for im in [guide, *samples])
    assert guide.size == samples[0].size
    assert (art / "previews" / "step-000002.png").is_file()
