"""Exact resume: a stopped or crashed run, resumed, ends where an uninterrupted run ends."""

import pytest
import torch

from studio.engine import Callback, train
from tests.engine.ddp_script import StopAt, make_data, make_model, mse_loss

# 36 samples / batch 4 = 9 batches per epoch; with accumulation 2 the last step of an epoch has one micro-batch.
KWARGS = dict(
    batch_size=4, epochs=3, lr=1e-2, warmup_steps=0.2, grad_accum_steps=2, max_grad_norm=1.0, progress=False
)


def _assert_same(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.allclose(x, y, atol=1e-6), name


@pytest.fixture(scope="module")
def uninterrupted():
    model = make_model()
    result = train(model, make_data(), mse_loss, **KWARGS)
    assert result.steps == 15
    return model, result


@pytest.mark.parametrize("stop_at", [3, 5, 9])  # mid-epoch, epoch boundary, late
def test_stop_then_resume_matches_uninterrupted(tmp_path, uninterrupted, stop_at):
    reference, ref_result = uninterrupted
    model = make_model()
    first = train(model, make_data(), mse_loss, output_dir=tmp_path, callbacks=[StopAt(stop_at)], **KWARGS)
    assert first.stopped and first.steps == stop_at
    assert first.last_checkpoint.endswith(f"step-{stop_at:06d}")

    resumed_model = make_model(seed=123)  # a fresh process would rebuild the model from scratch
    second = train(resumed_model, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
    assert not second.stopped and second.steps == 15
    assert [h["step"] for h in second.history] == list(range(stop_at + 1, 16))
    for h, ref in zip(second.history, ref_result.history[stop_at:], strict=True):
        assert h["lr"] == pytest.approx(ref["lr"]) and h["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    _assert_same(resumed_model, reference)


def test_resume_after_crash_from_periodic_checkpoint(tmp_path, uninterrupted):
    class Crash(Callback):
        def on_step_end(self, state):
            if state.step == 8:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            make_model(),
            make_data(),
            mse_loss,
            output_dir=tmp_path,
            checkpoint_every=3,
            callbacks=[Crash()],
            **KWARGS,
        )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-000003", "step-000006"]

    model = make_model(seed=7)
    result = train(
        model, make_data(), mse_loss, output_dir=tmp_path, checkpoint_every=3, resume=True, **KWARGS
    )
    assert result.history[0]["step"] == 7 and result.steps == 15
    _assert_same(model, uninterrupted[0])


def test_resume_from_explicit_path(tmp_path, uninterrupted):
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path / "a", callbacks=[StopAt(4)], **KWARGS)
    model = make_model()
    result = train(
        model, make_data(), mse_loss, resume=tmp_path / "a" / "checkpoints" / "step-000004", **KWARGS
    )
    assert result.steps == 15 and result.last_checkpoint.endswith("step-000004")
    _assert_same(model, uninterrupted[0])
    with pytest.raises(FileNotFoundError):
        train(make_model(), make_data(), mse_loss, resume=tmp_path / "nope", **KWARGS)


def test_resume_true_without_checkpoint_starts_fresh(tmp_path, uninterrupted):
    model = make_model()
    result = train(model, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
    assert result.history[0]["step"] == 1 and result.steps == 15
    _assert_same(model, uninterrupted[0])


def test_finished_run_resumed_does_nothing(tmp_path):
    model = make_model()
    train(model, make_data(), mse_loss, output_dir=tmp_path, **KWARGS)
    after = {k: v.clone() for k, v in model.state_dict().items()}
    result = train(model, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
    assert result.history == [] and result.steps == 15
    assert all(torch.equal(v, after[k]) for k, v in model.state_dict().items())


class NoisyData(torch.utils.data.Dataset):
    """Random augmentation from the global RNG, as torchvision transforms do."""

    def __init__(self):
        self.base = make_data()

    def __len__(self):
        return len(self.base)

    def __getitem__(self, i):
        x, y = self.base[i]
        return x + 0.1 * torch.randn_like(x), y


@pytest.mark.parametrize("num_workers", [0, 2])
def test_resume_exact_with_random_augmentation(tmp_path, num_workers):
    kwargs = {**KWARGS, "num_workers": num_workers}
    reference = make_model()
    train(reference, NoisyData(), mse_loss, **kwargs)
    train(make_model(), NoisyData(), mse_loss, output_dir=tmp_path, callbacks=[StopAt(4)], **kwargs)
    model = make_model()
    train(model, NoisyData(), mse_loss, output_dir=tmp_path, resume=True, **kwargs)
    _assert_same(model, reference)


def test_progress_bar_and_resume_into_wrong_model_fails(tmp_path, capsys):
    train(
        make_model(),
        make_data(),
        mse_loss,
        output_dir=tmp_path,
        callbacks=[StopAt(2)],
        **{**KWARGS, "progress": True},
    )
    assert "2/15" in capsys.readouterr().err
    wider = torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1), torch.nn.Linear(1, 1)
    )
    with pytest.raises(KeyError, match="does not fit"):
        train(wider, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
