"""NaN and infinity: bad float settings are refused, a non-finite loss stops training, no checkpoint holds NaN."""

import math

import pytest
import torch
from safetensors.torch import load_file

from studio.engine import Callback, list_checkpoints, train
from tests.engine.ddp_script import make_data, make_model, mse_loss

KWARGS = dict(batch_size=4, epochs=1, lr=1e-2, progress=False)


@pytest.mark.parametrize(
    "option",
    [
        {"lr": math.nan},
        {"lr": math.inf},
        {"lr": 0.0},
        {"weight_decay": -math.inf},
        {"max_grad_norm": math.nan},
    ],
)
def test_non_finite_or_non_positive_settings_are_refused(tmp_path, option):
    name, value = next(iter(option.items()))
    with pytest.raises(ValueError, match=rf"^{name} must be a finite number .*got {value}"):
        train(make_model(), make_data(), mse_loss, **{**KWARGS, **option}, output_dir=tmp_path)
    assert not (tmp_path / "checkpoints").exists()


def test_loss_becoming_nan_stops_with_the_step_and_no_nan_checkpoint(tmp_path):
    calls = []

    def loss_fn(model, batch):
        calls.append(1)
        loss = mse_loss(model, batch)
        return loss * math.nan if len(calls) == 3 else loss

    with pytest.raises(ValueError, match=r"^loss is nan at step 3; lower the learning rate"):
        train(make_model(), make_data(), loss_fn, output_dir=tmp_path, checkpoint_every=1, **KWARGS)
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-000001", "step-000002"]


def test_checkpoint_with_non_finite_parameters_is_never_written(tmp_path):
    class Poison(Callback):
        def on_step_end(self, state):
            if state.step == 2:
                with torch.no_grad():
                    state_model[0].weight[0, 0] = math.inf

    state_model = make_model()
    with pytest.raises(ValueError, match=r"non-finite values at step 2.*'0\.weight'"):
        train(
            state_model,
            make_data(),
            mse_loss,
            output_dir=tmp_path,
            checkpoint_every=1,
            callbacks=[Poison()],
            **KWARGS,
        )
    saved = list_checkpoints(tmp_path / "checkpoints")
    assert [p.name for p in saved] == ["step-000001"]
    assert all(torch.isfinite(t).all() for t in load_file(saved[0] / "trainable.safetensors").values())


def test_run_ending_with_non_finite_parameters_fails_without_output_dir():
    model = make_model()

    class Poison(Callback):
        def on_step_end(self, state):
            if state.step == state.total_steps:
                with torch.no_grad():
                    model[3].bias.fill_(math.nan)

    with pytest.raises(ValueError, match=r"non-finite values at step 9.*'3\.bias'"):
        train(model, make_data(), mse_loss, callbacks=[Poison()], **KWARGS)


def test_finetune_refuses_non_finite_lr(tiny_vit, image_folder):
    from studio.core import inject
    from vision import SSFConfig, finetune

    model = inject(tiny_vit(), SSFConfig())
    with pytest.raises(ValueError, match="^lr must be a finite number"):
        finetune(model, image_folder, epochs=1, lr=math.nan, progress=False)
