"""The job queue: one training at a time per lane, progress and Stop through the engine's callbacks, resume,
restarts; and the tab's view of it (its running job, its queue, Stop and Resume on the job shown)."""

import errno
import threading
from types import SimpleNamespace

import gradio as gr
import pytest
import torch
from torch import nn

from studio.engine import train
from studio.ui.jobs import JobQueue
from studio.ui.tabs import progress
from studio.ui.tabs.progress import ProgressPanel
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
    assert done.message.startswith("done: 20 steps (17 this run) in ")
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
    assert "Resume" not in bad.message and "Retry" not in bad.message  # the same data would fail again
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
    assert job.message.startswith("done: 1 step in ")
    with pytest.raises(ValueError, match="only a stopped or interrupted job resumes"):
        queue.resume(job.id)
    with pytest.raises(ValueError, match="no job"):
        queue.get("missing")


def _panel(queue, kinds=("lin",)):
    with gr.Blocks():
        return ProgressPanel(SimpleNamespace(jobs=queue), kinds)


def _drawn(panel, values):
    return dict(zip(panel.outputs, values, strict=True))


def test_a_fit_never_waits_behind_a_training(tmp_path):
    started, gate = threading.Event(), threading.Event()
    runners = {"lin": _linear_runner(started, gate), "fit": lambda ctx: None}
    queue = JobQueue(Workspace(tmp_path), runners, lanes={"fit": "fit"})
    training = queue.submit("lin", {"steps": 2})
    assert started.wait(10)
    fit = queue.wait(queue.submit("fit", {}).id, 10)
    assert fit.status == "done" and queue.get(training.id).status == "running"
    gate.set()
    assert queue.wait(training.id).status == "done"


def test_the_tab_keeps_showing_its_running_job_with_the_queue_below(tmp_path):
    started, gate = threading.Event(), threading.Event()
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner(started, gate)})
    panel = _panel(queue)
    running = queue.submit("lin", {"steps": 2}, title="first run")
    assert started.wait(10)
    queued = queue.submit("lin", {"steps": 2}, title="second run <my-token>")  # Train pressed during the run
    drawn = _drawn(panel, panel.render(panel.job()))
    assert "first run" in drawn[panel.status] and "`running`" in drawn[panel.status]
    assert "1. second run &lt;my-token&gt;" in drawn[panel.queue]
    # Stop acts on the job the page shows, not on the newest one.
    panel.stop_shown(drawn[panel.version])
    assert queue.get(queued.id).status == "queued"
    gate.set()
    assert queue.wait(running.id).status == "stopped" and queue.wait(queued.id).status == "done"
    drawn = _drawn(panel, panel.redraw())
    assert "second run" in drawn[panel.status] and drawn[panel.queue] == ""


def test_resume_is_offered_for_a_stop_and_a_passing_failure_only(tmp_path):
    def full_disk(ctx):
        raise OSError(errno.ENOSPC, "No space left on device")

    def bad_data(ctx):
        raise ValueError("empty.png is not a readable image")

    queue = JobQueue(Workspace(tmp_path), {"disk": full_disk, "data": bad_data})
    disk, data = (queue.wait(queue.submit(kind, {}).id) for kind in ("disk", "data"))
    assert "Retry continues from the last checkpoint" in disk.message and queue.resumable(disk)
    assert not queue.resumable(data) and "Retry" not in data.message and "Resume" not in data.message
    with pytest.raises(ValueError, match="a retry cannot fix"):
        queue.resume(data.id)
    disk_panel, data_panel = _panel(queue, ("disk",)), _panel(queue, ("data",))
    disk_button = _drawn(disk_panel, disk_panel.redraw())[disk_panel.resume]
    assert disk_button.visible is True and disk_button.value == "Retry"
    assert _drawn(data_panel, data_panel.redraw())[data_panel.resume].visible is False
    assert queue.wait(queue.resume(disk.id).id).attempts == 2  # Retry ran it again


def test_a_change_while_the_page_draws_is_redrawn_on_the_next_tick(tmp_path, monkeypatch):
    gate = threading.Event()
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner(None, gate)})
    panel = _panel(queue)
    job = queue.submit("lin", {"steps": 1})
    original = progress.loss_frame

    def fail_meanwhile(drawn_job):  # the job fails between drawing its status and its plot
        queue.update(queue.get(job.id), status="failed", message="failed: boom")
        return original(drawn_job)

    monkeypatch.setattr(progress, "loss_frame", fail_meanwhile)
    seen = _drawn(panel, panel.render(panel.job()))
    monkeypatch.setattr(progress, "loss_frame", original)
    assert "`failed`" in _drawn(panel, panel.refresh(seen[panel.version]))[panel.status]
    gate.set()


def test_queued_jobs_are_told_their_place_as_the_line_moves(tmp_path):
    started, gate = threading.Event(), threading.Event()
    queue = JobQueue(Workspace(tmp_path), {"lin": _linear_runner(started, gate)})
    first = queue.submit("lin", {"steps": 1})
    assert started.wait(10)
    second, third = queue.submit("lin", {"steps": 1}), queue.submit("lin", {"steps": 1})
    assert (second.message, third.message) == ("queued behind 1 job", "queued behind 2 jobs")
    queue.stop(second.id)  # cancelled: the third moves up
    assert third.message == "queued behind 1 job"
    assert [j.id for j in queue.waiting(("lin",))] == [third.id]
    gate.set()
    assert queue.wait(first.id).status == queue.wait(third.id).status == "done"
