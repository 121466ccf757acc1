"""A training owns its `output_dir`: no mixing with another run's checkpoints, one training at a time."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from studio.engine import Callback, list_checkpoints, train
from tests.engine.ddp_script import StopAt, make_data, make_model, mse_loss

# 36 samples / batch 4 = 9 steps per epoch.
KWARGS = dict(batch_size=4, lr=1e-2, checkpoint_every=3, progress=False)


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_new_run_refuses_a_folder_holding_another_run(tmp_path):
    train(make_model(), make_data(), mse_loss, epochs=3, output_dir=tmp_path, **KWARGS)
    with pytest.raises(ValueError, match=r"already holds a run \(2 checkpoints, newest step-000027\)") as err:
        train(make_model(), make_data(), mse_loss, epochs=1, output_dir=tmp_path, **KWARGS)
    assert "resume=True" in str(err.value) and "overwrite=True" in str(err.value)
    assert "--overwrite" in str(err.value)
    # The old run is untouched.
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-000024", "step-000027"]


def test_overwrite_replaces_the_old_run_and_resume_returns_the_new_one(tmp_path):
    train(make_model(), make_data(), mse_loss, epochs=3, output_dir=tmp_path, **KWARGS)
    model = make_model(seed=5)
    result = train(model, make_data(), mse_loss, epochs=1, output_dir=tmp_path, overwrite=True, **KWARGS)
    assert Path(result.last_checkpoint).is_dir() and result.last_checkpoint.endswith("step-000009")
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-000006", "step-000009"]
    trained = _params(model)

    again = make_model(seed=9)
    resumed = train(again, make_data(), mse_loss, epochs=1, output_dir=tmp_path, resume=True, **KWARGS)
    assert resumed.steps == 9 and resumed.history == []
    assert all(torch.equal(v, trained[k]) for k, v in again.state_dict().items())


def test_resume_with_other_settings_is_refused(tmp_path):
    train(make_model(), make_data(), mse_loss, epochs=3, output_dir=tmp_path, **KWARGS)
    # Resuming the 27-step run as a 9-step run would train 0 steps and return the other run's weights.
    with pytest.raises(ValueError, match=r"total_steps.*27.*9.*overwrite=True"):
        train(make_model(), make_data(), mse_loss, epochs=1, output_dir=tmp_path, resume=True, **KWARGS)
    with pytest.raises(ValueError, match=r"seed"):
        train(
            make_model(), make_data(), mse_loss, epochs=3, seed=1, output_dir=tmp_path, resume=True, **KWARGS
        )


def test_resume_and_overwrite_exclude_each_other(tmp_path):
    with pytest.raises(ValueError, match="overwrite"):
        train(make_model(), make_data(), mse_loss, output_dir=tmp_path, resume=True, overwrite=True, **KWARGS)


def test_resume_from_an_older_checkpoint_drops_the_abandoned_newer_ones(tmp_path):
    kwargs = {**KWARGS, "epochs": 2, "checkpoint_every": 4}
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path, keep_checkpoints=5, **kwargs)
    root = tmp_path / "checkpoints"
    seen = []

    class Record(Callback):
        def on_checkpoint(self, state, path):
            seen.append((Path(path).name, [p.name for p in list_checkpoints(root)]))

    result = train(
        make_model(),
        make_data(),
        mse_loss,
        output_dir=tmp_path,
        resume=root / "step-000008",
        keep_checkpoints=1,
        callbacks=[Record()],
        **kwargs,
    )
    # The newest checkpoint is always the one just written, so `resume=True` continues this run.
    assert seen == [
        ("step-000012", ["step-000012"]),
        ("step-000016", ["step-000016"]),
        ("step-000018", ["step-000018"]),
    ]
    assert Path(result.last_checkpoint).is_dir()


def test_resume_from_a_checkpoint_elsewhere_into_a_folder_of_another_run_is_refused(tmp_path):
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path / "a", callbacks=[StopAt(4)], **KWARGS)
    train(make_model(), make_data(), mse_loss, output_dir=tmp_path / "b", **KWARGS)
    source = tmp_path / "a" / "checkpoints" / "step-000004"
    with pytest.raises(ValueError, match="already holds a run"):
        train(make_model(), make_data(), mse_loss, output_dir=tmp_path / "b", resume=source, **KWARGS)


@pytest.fixture
def live_pid():
    """The pid of another process that stays alive during the test."""
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield other.pid
    other.kill()
    other.wait()


def test_second_training_in_the_same_folder_is_refused(tmp_path, live_pid):
    tmp_path.joinpath(".train.lock").write_text(str(live_pid))
    with pytest.raises(ValueError, match=rf"{tmp_path} is in use by another training \(pid {live_pid}\)"):
        train(make_model(), make_data(), mse_loss, output_dir=tmp_path, **KWARGS)
    assert not (tmp_path / "checkpoints").exists()


def test_training_started_during_a_training_is_refused_and_the_first_completes(tmp_path):
    errors = []

    class StartAnother(Callback):
        def on_step_end(self, state):
            if state.step == 2:
                with pytest.raises(ValueError, match="in use by another training") as err:
                    train(make_model(), make_data(), mse_loss, output_dir=tmp_path, **KWARGS)
                errors.append(err.value)

    result = train(
        make_model(),
        make_data(),
        mse_loss,
        epochs=2,
        output_dir=tmp_path,
        callbacks=[StartAnother()],
        **KWARGS,
    )
    assert len(errors) == 1 and result.steps == 18
    assert [p.name for p in list_checkpoints(tmp_path / "checkpoints")] == ["step-000015", "step-000018"]
    assert not (tmp_path / ".train.lock").exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    tmp_path.joinpath(".train.lock").write_text(str(dead.pid))
    result = train(make_model(), make_data(), mse_loss, output_dir=tmp_path, **KWARGS)
    assert result.steps == 9 and not (tmp_path / ".train.lock").exists()


def test_lock_is_released_when_training_fails(tmp_path):
    class Crash(Callback):
        def on_step_end(self, state):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        train(make_model(), make_data(), mse_loss, output_dir=tmp_path, callbacks=[Crash()], **KWARGS)
    assert not (tmp_path / ".train.lock").exists()
    assert train(make_model(), make_data(), mse_loss, output_dir=tmp_path, resume=True, **KWARGS).steps == 9


def test_cli_rerun_into_the_same_out_names_resume_and_overwrite(image_folder, tmp_path, capsys):
    from studio.cli import main

    argv = ["vision", "finetune", "--model", "vit_small_patch16_224", "--pretrained", "none"]
    argv += ["--timm-arg", "img_size=32", "--timm-arg", "patch_size=8", "--timm-arg", "depth=1"]
    argv += ["--data", str(image_folder), "--out", str(tmp_path / "out"), "--batch-size", "4"]
    assert main([*argv, "--epochs", "2"]) == 0
    capsys.readouterr()
    assert main([*argv, "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("studio: error: ") and "already holds a run" in err[0]
    assert "--resume" in err[0] and "--overwrite" in err[0]
    assert main([*argv, "--epochs", "1", "--resume"]) == 2
    assert "different run" in capsys.readouterr().err
    assert main([*argv, "--epochs", "1", "--overwrite"]) == 0
    assert [p.name for p in list_checkpoints(tmp_path / "out" / "checkpoints")] == ["step-000003"]
