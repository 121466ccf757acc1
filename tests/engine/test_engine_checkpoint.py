"""Checkpoint layout, atomicity, pruning and safe loading."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file

from studio.engine import latest_checkpoint, list_checkpoints, train
from tests.engine.ddp_script import StopAt, make_data, make_model, mse_loss

KWARGS = dict(batch_size=4, epochs=2, lr=1e-2, warmup_steps=2, progress=False)


class _NotATensor:
    pass


def test_checkpoint_contents_load_with_weights_only(tmp_path):
    model = make_model()
    model[0].weight.requires_grad_(False)
    model.register_buffer("scale", torch.ones(3))
    model.register_buffer("count", torch.zeros((), dtype=torch.long))
    result = train(model, make_data(), mse_loss, output_dir=tmp_path, callbacks=[StopAt(3)], **KWARGS)
    path = tmp_path / "checkpoints" / "step-000003"
    assert result.last_checkpoint == str(path)
    files = sorted(p.name for p in path.iterdir())
    assert files == ["optimizer.pt", "rng.pt", "scheduler.pt", "state.json", "trainable.safetensors"]

    # Every pickled file must load without unpickling arbitrary objects.
    loaded = {p.name: torch.load(p, weights_only=True) for p in path.glob("*.pt")}
    assert len(loaded["optimizer.pt"]["state"]) == 3  # bias + second layer; the frozen weight has no state
    assert loaded["scheduler.pt"]["lr_lambdas"] == [{"warmup_steps": 2, "total_steps": 18}]
    assert isinstance(loaded["rng.pt"]["processes"][0]["torch"], torch.Tensor)

    tensors = load_file(str(path / "trainable.safetensors"))
    assert sorted(tensors) == ["0.bias", "3.bias", "3.weight", "scale"]
    assert torch.equal(tensors["3.weight"], model[3].weight.detach())
    state = json.loads((path / "state.json").read_text())
    assert state == {"step": 3, "epoch": 0, "batches_consumed": 3, "seed": 0, "total_steps": 18}

    # The check above is meaningful: weights_only refuses arbitrary objects.
    torch.save({"x": _NotATensor()}, tmp_path / "bad.pt")
    with pytest.raises(Exception, match="[Ww]eights only"):
        torch.load(tmp_path / "bad.pt", weights_only=True)


def test_keep_checkpoints_prunes_old_ones(tmp_path):
    events = []

    class Spy(StopAt):
        def on_checkpoint(self, state, path):
            events.append(path)

    result = train(
        make_model(), make_data(), mse_loss, output_dir=tmp_path, checkpoint_every=4, keep_checkpoints=2,
        callbacks=[Spy(10**9)], **KWARGS,
    )  # fmt: skip
    names = [p.name for p in list_checkpoints(tmp_path / "checkpoints")]
    assert names == ["step-000016", "step-000018"]
    assert [p.rsplit("-", 1)[1] for p in events] == ["000004", "000008", "000012", "000016", "000018"]
    assert result.last_checkpoint.endswith("step-000018")
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]


def test_leftover_temporary_dir_is_ignored_by_resume(tmp_path, recwarn):
    reference = make_model()
    train(reference, make_data(), mse_loss, **KWARGS)

    train(make_model(), make_data(), mse_loss, output_dir=tmp_path, callbacks=[StopAt(5)], **KWARGS)
    root = tmp_path / "checkpoints"
    # Simulate a crash while writing step 7: a temporary dir and a step dir without its final state.json.
    shutil.copytree(root / "step-000005", root / ".tmp-step-000007-deadbeef")
    shutil.copytree(root / "step-000005", root / "step-000009")
    (root / "step-000009" / "state.json").unlink()
    assert latest_checkpoint(root) == root / "step-000005"

    model = make_model()
    result = train(model, make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS)
    assert result.history[0]["step"] == 6
    for x, y in zip(model.parameters(), reference.parameters(), strict=True):
        assert torch.allclose(x, y, atol=1e-6)
    assert not (root / ".tmp-step-000007-deadbeef").exists()


def test_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="output_dir"):
        train(make_model(), make_data(), mse_loss, resume=True, progress=False)
    frozen = make_model().requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        train(frozen, make_data(), mse_loss, progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        train(make_model(), make_data(), mse_loss, optimizer="lion", progress=False)
