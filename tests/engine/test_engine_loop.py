"""Learning, frozen parameters, callbacks, schedule and precision of `studio.engine.train`."""

import math

import pytest
import torch

from studio.engine import Callback, TrainResult, WarmupCosine, train
from studio.engine.optim import resolve_mixed_precision
from tests.engine.ddp_script import StopAt, make_data, make_model, mse_loss


def test_loss_decreases_on_learnable_problem():
    model = make_model(dropout=0.0)
    data = make_data(n=128)
    result = train(model, data, mse_loss, batch_size=16, epochs=15, lr=3e-2, progress=False)
    assert isinstance(result, TrainResult)
    assert result.steps == 15 * 8 and not result.stopped and result.last_checkpoint is None
    first = sum(h["loss"] for h in result.history[:8]) / 8
    last = sum(h["loss"] for h in result.history[-8:]) / 8
    assert last < 0.2 * first
    assert [h["step"] for h in result.history] == list(range(1, 121))


def test_only_trainable_params_change_and_frozen_have_no_grad():
    model = make_model()
    for p in model[0].parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, make_data(), mse_loss, batch_size=8, epochs=2, lr=1e-2, progress=False)
    for name, p in model.named_parameters():
        if name.startswith("0."):
            assert torch.equal(p, before[name]) and p.grad is None
        else:
            assert not torch.equal(p, before[name])


def test_param_groups_drop_frozen_and_keep_group_lr():
    model = make_model()
    model[0].bias.requires_grad_(False)
    seen = []

    def groups(m):
        return [{"params": list(m[0].parameters()), "lr": 0.0}, {"params": list(m[3].parameters())}]

    class Spy(Callback):
        def on_step_end(self, state):
            seen.append(state.lr)

    before = model[0].weight.clone()
    train(model, make_data(), mse_loss, param_groups=groups, epochs=1, callbacks=[Spy()], progress=False)
    assert torch.equal(model[0].weight, before) and model[0].bias.grad is None and seen == [0.0] * len(seen)


def test_callbacks_hooks_and_should_stop_writes_checkpoint(tmp_path):
    events = []

    class Recorder(Callback):
        def on_train_begin(self, state):
            events.append(("begin", state.step, state.total_steps))

        def on_step_end(self, state):
            events.append(("step", state.step, state.lr, state.eta_s, state.loss))

        def on_evaluate(self, state, metrics):
            events.append(("eval", state.step, metrics))

        def on_checkpoint(self, state, path):
            events.append(("ckpt", state.step, path))

        def on_train_end(self, state):
            events.append(("end", state.step, state.should_stop))

    training_flags = []

    def eval_fn(model):
        training_flags.append(model.training)
        assert not torch.is_grad_enabled()
        return {"score": 1.0}

    result = train(
        make_model(),
        make_data(),
        mse_loss,
        batch_size=4,
        epochs=3,
        warmup_steps=5,
        eval_fn=eval_fn,
        eval_every=2,
        callbacks=[Recorder(), StopAt(7)],
        output_dir=tmp_path,
        progress=False,
    )
    assert events[0] == ("begin", 0, 27)
    steps = [e for e in events if e[0] == "step"]
    assert [e[1] for e in steps] == list(range(1, 8))
    lrs = [e[2] for e in steps]
    assert all(a < b for a, b in zip(lrs[:5], lrs[1:5], strict=False))  # warmup
    assert all(e[3] >= 0 and math.isfinite(e[3]) and math.isfinite(e[4]) for e in steps)
    evals = [e[1] for e in events if e[0] == "eval"]
    assert evals == [2, 4, 6] and training_flags == [False] * 3
    assert [e["step"] for e in result.evals] == [2, 4, 6] and result.evals[0]["score"] == 1.0
    assert result.stopped and result.steps == 7
    assert events[-2][:2] == ("ckpt", 7) and events[-1] == ("end", 7, True)
    assert result.last_checkpoint == str(tmp_path / "checkpoints" / "step-000007")


def test_eval_at_end_of_each_epoch_and_model_back_in_train_mode():
    model = make_model()
    result = train(
        model, make_data(), mse_loss, batch_size=12, epochs=2, eval_fn=lambda m: {"x": 0.0}, progress=False
    )
    assert [(e["step"], e["epoch"]) for e in result.evals] == [(3, 0), (6, 1)]
    assert model.training


def test_warmup_cosine_schedule():
    sched = WarmupCosine(warmup_steps=4, total_steps=14)
    values = [sched(s) for s in range(14)]
    assert values[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8]) and values[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[4:], values[5:], strict=False)) and values[-1] < 0.05
    assert WarmupCosine(0, 10)(10) == pytest.approx(0.0)


def test_fractional_warmup_and_max_steps_and_sgd():
    result = train(
        make_model(), make_data(), mse_loss, batch_size=4, max_steps=20, warmup_steps=0.25, optimizer="sgd",
        lr=1e-3, progress=False,
    )  # fmt: skip
    lrs = [h["lr"] for h in result.history]
    assert result.steps == 20 and len(lrs) == 20
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 5


def test_mixed_precision_auto_is_no_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_mixed_precision("auto") == "no"
    assert resolve_mixed_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="mixed_precision must be 'auto', 'no', 'fp16' or 'bf16', got 'fp8'"):
        resolve_mixed_precision("fp8")


def test_one_process_trains_in_several_precisions_in_turn():
    """A notebook (or the studio) may run one run without mixed precision and the next with bf16: each gets
    its own, where accelerate alone would refuse the second ("restart your runtime")."""
    seen = []
    for precision in ("no", "bf16", "no"):
        model = make_model()
        model[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
        train(model, make_data(n=8), mse_loss, batch_size=8, max_steps=1, mixed_precision=precision,
              progress=False)  # fmt: skip
    assert seen == [torch.float32, torch.bfloat16, torch.float32]
