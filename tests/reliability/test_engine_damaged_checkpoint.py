"""A damaged newest checkpoint does not stop resume: the previous complete one is used, with a warning."""

import os

import pytest
import torch

from studio.engine import checkpoint as checkpoint_module
from studio.engine import train
from tests.engine.ddp_script import StopAt, make_data, make_model, mse_loss

KWARGS = dict(batch_size=4, epochs=2, lr=1e-2, warmup_steps=0.2, progress=False)


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = {
    "truncated tensors": lambda ckpt: _truncate(ckpt / "trainable.safetensors"),
    "corrupt optimizer": lambda ckpt: (ckpt / "optimizer.pt").write_bytes(b"\x00garbage"),
    "truncated rng": lambda ckpt: _truncate(ckpt / "rng.pt"),
    "bad state.json": lambda ckpt: (ckpt / "state.json").write_text('{"step": 8'),
    "state.json without fields": lambda ckpt: (ckpt / "state.json").write_text("{}"),
    "missing scheduler": lambda ckpt: (ckpt / "scheduler.pt").unlink(),
}


def _stopped_run(output_dir):
    """A run stopped after 8 steps, with checkpoints at steps 4 and 8 in `output_dir`."""
    train(
        make_model(),
        make_data(),
        mse_loss,
        output_dir=output_dir,
        checkpoint_every=4,
        callbacks=[StopAt(8)],
        **KWARGS,
    )


@pytest.fixture(scope="module")
def uninterrupted():
    model = make_model()
    train(model, make_data(), mse_loss, **KWARGS)
    return model.state_dict()


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_resume_falls_back_to_the_previous_checkpoint(tmp_path, uninterrupted, damage):
    _stopped_run(tmp_path)
    root = tmp_path / "checkpoints"
    DAMAGE[damage](root / "step-000008")
    model = make_model(seed=3)
    with pytest.warns(UserWarning, match=r"step-000008 is damaged .*; resuming from .*step-000004"):
        result = train(model, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
    assert result.history[0]["step"] == 5 and result.steps == 18
    for name, value in model.state_dict().items():
        assert torch.allclose(value, uninterrupted[name], atol=1e-6), name


def test_no_usable_checkpoint_is_a_clear_error(tmp_path):
    _stopped_run(tmp_path)
    for step in (4, 8):
        _truncate(tmp_path / "checkpoints" / f"step-{step:06d}" / "trainable.safetensors")
    with pytest.raises(ValueError, match=r"no usable checkpoint in .*checkpoints: .*step-000008 is damaged"):
        train(make_model(), make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)


def test_explicitly_named_damaged_checkpoint_is_a_clear_error(tmp_path):
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path, callbacks=[StopAt(3)], **KWARGS)
    path = tmp_path / "checkpoints" / "step-000003"
    _truncate(path / "trainable.safetensors")
    with pytest.raises(ValueError, match=r"step-000003 is damaged .*trainable\.safetensors"):
        train(make_model(), make_data(), mse_loss, resume=path, **KWARGS)


def test_checkpoint_files_and_folders_are_synced_before_and_after_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(checkpoint_module.os, "fsync", fsync)
    monkeypatch.setattr(checkpoint_module.os, "replace", replace)
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path, max_steps=1, **{**KWARGS, "epochs": 1})
    renames = [i for i, e in enumerate(events) if e[0] == "replace" and e[2].endswith("step-000001")]
    assert len(renames) == 1
    tmp = events[renames[0]][1]
    synced_before = {e[1] for e in events[: renames[0]] if e[0] == "fsync"}
    names = {"trainable.safetensors", "optimizer.pt", "scheduler.pt", "rng.pt", "state.json"}
    assert {os.path.join(tmp, n) for n in names} | {tmp} <= synced_before
    assert ("fsync", str(tmp_path / "checkpoints")) in events[renames[0] + 1 :]
