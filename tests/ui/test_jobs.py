"""The job queue: one training at a time, progress and Stop through the engine's callbacks, resume, restarts."""

import threading

import pytest
import torch
from torch import nn

from studio.engine import train
from studio.ui.jobs import JobQueue
from studio.ui.workspace import Workspace


def _linear_runner(started: threading.Event | None = None, gate: threading.Event | None = None):
    """A runner training a tiny linear model through the engine with the job's callback (and checkpoints)."""

    def run(ctx):
        if started is not None:
            started.set()
        if gate is not None:
            gate.wait(30)
        torch.manual_seed(0)
        model = nn.Linear(2, 1)
        data = [(torch.randn(2), torch.randn(1)) for _ in range(8)]

        def loss_fn(m, batch):
            x, y = batch
            if gate is not None:
                gate.wait(30)  # a step blocks until the test lets it go
            return nn.functional.mse_loss(m(x), y)

        train(model, data, loss_fn, batch_size=2, max_steps=ctx.params["steps"], output_dir=ctx.output_dir,
              resume=ctx.resume, callbacks=[ctx.callback], progress=False)  # fmt: skip
        return None

    return run


def _failing(ctx):
    raise ValueError("the images are all black")


def test_progress_comes_through_the_engine_callbacks(tmp_path):
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner()})
    job = queue.wait(queue.submit("lin", {"steps": 6}).id)
    assert job.status == "done" and job.step == job.total_steps == 6
    assert [s for s, _ in job.losses] == [1, 2, 3, 4, 5, 6]
    assert job.elapsed_s > 0


def test_stop_is_honoured_within_a_step_and_resume_finishes(tmp_path):
    in_step_3, release = threading.Event(), threading.Event()
    steps_per_attempt = []

    def run(ctx):
        torch.manual_seed(0)
        model, calls = nn.Linear(2, 1), []
        data = [(torch.randn(2), torch.randn(1)) for _ in range(8)]

        def loss_fn(m, batch):
            calls.append(1)
            if len(calls) == 3 and not ctx.resume:  # hold step 3 while the test presses Stop
                in_step_3.set()
                release.wait(30)
            return nn.functional.mse_loss(m(batch[0]), batch[1])

        train(model, data, loss_fn, batch_size=2, max_steps=20, output_dir=ctx.output_dir, resume=ctx.resume,
              callbacks=[ctx.callback], progress=False)  # fmt: skip
        steps_per_attempt.append(len(calls))

    queue = JobQueue(Workspace(tmp_path), {"lin": run})
    job = queue.submit("lin", {})
    assert in_step_3.wait(30)
    queue.stop(job.id)
    release.set()
    stopped = queue.wait(job.id)
    assert stopped.status == "stopped" and stopped.step == 3  # the step in flight finished, no further one
    assert (tmp_path / "jobs" / job.id / "output" / "checkpoints" / "step-000003").is_dir()
    queue.resume(job.id)
    done = queue.wait(job.id)
    assert done.status == "done" and done.step == 20 and done.attempts == 2
    assert [s for s, _ in done.losses] == list(range(1, 21))
    assert steps_per_attempt == [3, 17]  # the resumed attempt continued from step 3, not from scratch


def test_one_training_at_a_time_and_a_queued_job_can_be_cancelled(tmp_path):
    started, gate = threading.Event(), threading.Event()
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner(started, gate)})
    first = queue.submit("lin", {"steps": 2})
    started.wait(10)
    second, third = queue.submit("lin", {"steps": 2}), queue.submit("lin", {"steps": 2})
    assert queue.get(first.id).status == "running" and queue.get(second.id).status == "queued"
    assert "queued behind" in queue.get(third.id).message
    queue.stop(third.id)
    gate.set()
    assert queue.wait(first.id).status == "done" and queue.wait(second.id).status == "done"
    assert queue.get(third.id).status == "stopped" and queue.get(third.id).step == 0


def test_a_failing_job_shows_a_readable_error_and_the_queue_goes_on(tmp_path):
    queue = JobQueue(Workspace(tmp_path), {"bad": _failing, "lin": _linear_runner()})
    bad = queue.wait(queue.submit("bad", {}).id)
    assert bad.status == "failed" and "the images are all black" in bad.message
    assert (
        "Traceback" not in bad.message
        and "Traceback" in (tmp_path / "jobs" / bad.id / "error.log").read_text()
    )
    assert queue.wait(queue.submit("lin", {"steps": 2}).id).status == "done"


def test_records_survive_a_restart_and_running_jobs_become_resumable(tmp_path):
    started, gate = threading.Event(), threading.Event()
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner(started, gate)})
    running = queue.submit("lin", {"steps": 3})
    started.wait(10)
    done_before = queue.get(running.id)
    assert done_before.status == "running"
    # A second queue on the same workspace is what a restarted server sees.
    restarted = JobQueue(Workspace(tmp_path), {"lin": _linear_runner()})
    record = restarted.get(running.id)
    assert record.status == "interrupted" and "Resume" in record.message
    assert restarted.wait(restarted.resume(running.id).id).status == "done"
    gate.set()
    queue.wait(running.id)


def test_unknown_kinds_and_bad_resumes_are_readable_errors(tmp_path):
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner()})
    with pytest.raises(ValueError, match="unknown job kind"):
        queue.submit("nope", {})
    job = queue.wait(queue.submit("lin", {"steps": 1}).id)
    with pytest.raises(ValueError, match="only a stopped, failed or interrupted job resumes"):
        queue.resume(job.id)
    with pytest.raises(ValueError, match="no job"):
        queue.get("missing")
