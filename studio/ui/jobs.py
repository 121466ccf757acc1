"""The background job queue: one job at a time per lane, progress through the engine's callbacks.

A job is a folder `jobs/<id>/` with `job.json` (its record: parameters, status, loss and metric history,
preview images, the artifact it produced) and `output/` (checkpoints and the artifact). Each lane has one
worker thread that runs its jobs one after another: trainings share the `training` lane, while light jobs
(a Few-shot fit takes seconds) get their own lane so they never wait behind a long training. Sampling and
classifying do not go through the queue at all. The browser only reads records, so a refresh loses nothing;
a server restart marks running jobs `interrupted`. `resume` continues a stopped or interrupted job, or one
that failed for a passing reason (out of memory, a full disk), from its last checkpoint; a job that failed on
its settings or data is not resumed, since the same inputs would fail again.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from studio.core import write_json
from studio.engine import Callback, TrainState

from .errors import passing, readable
from .workspace import Workspace

log = logging.getLogger("studio.ui")

ACTIVE = ("queued", "running")
RESUMABLE = ("stopped", "interrupted")  # and `failed` when the record says `retryable`
TRAINING_LANE = "training"
SAVE_EVERY_S = 1.0  # how often a running job's record is written to disk


@dataclass
class Job:
    """A training job's record (what `job.json` holds).

    Args:
        id: unique id, also the folder name.
        kind: the runner's name, e.g. `"vit"`.
        title: one line for the job list.
        params: the runner's parameters (JSON values).
        status: `queued`, `running`, `done`, `stopped`, `failed` or `interrupted`.
        created: creation time (epoch seconds).
        step: optimizer steps done.
        total_steps: steps the run will take.
        elapsed_s: seconds of training in the current attempt.
        eta_s: estimated seconds left.
        losses: `[step, loss]` pairs.
        metrics: `{"step": ..., name: value}` dicts, one per evaluation.
        previews: preview image paths relative to the job folder, with the step they show.
        message: the last readable status line (or the error).
        artifact: the artifact folder it produced, relative to the workspace.
        attempts: how many times it was started (1 + resumes).
        first_step: the step the current attempt started from (0, or where a resume picked up).
        retryable: a failed job whose error may pass (out of memory, a full disk): Retry resumes it.
    """

    id: str
    kind: str
    title: str
    params: dict[str, Any]
    status: str = "queued"
    created: float = field(default_factory=time.time)
    step: int = 0
    total_steps: int = 0
    elapsed_s: float = 0.0
    eta_s: float = float("nan")
    losses: list[list[float]] = field(default_factory=list)
    metrics: list[dict[str, float]] = field(default_factory=list)
    previews: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""
    artifact: str | None = None
    attempts: int = 0
    first_step: int = 0
    retryable: bool = False
    version: int = 0  # bumped on every change, so the page redraws only what changed


class JobContext:
    """What a runner gets: its job's folders, parameters, callbacks and a way to report.

    Args:
        queue: the owning queue.
        job: the job record.
        resume: whether this attempt continues an earlier one.
    """

    def __init__(self, queue: JobQueue, job: Job, resume: bool) -> None:
        self.queue, self.job, self.resume = queue, job, resume
        self.folder = queue.job_folder(job.id)
        self.output_dir = self.folder / "output"
        self.params = job.params
        self.stop_event = threading.Event()

    @property
    def callback(self) -> ProgressCallback:
        """An engine callback that records progress into the job and honours Stop."""
        return ProgressCallback(self)

    def report(self, message: str) -> None:
        """Set the job's status line (e.g. "loading the model")."""
        self.queue.update(self.job, message=message)

    def add_preview(self, image: Any, step: int, caption: str = "") -> None:
        """Store a preview image (a PIL image) for `step` and show it in the page."""
        path = self.folder / "previews" / f"step-{step:06d}-{len(self.job.previews):03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        previews = [
            *self.job.previews,
            {"path": str(path.relative_to(self.folder)), "step": step, "caption": caption},
        ]
        self.queue.update(self.job, previews=previews)

    def should_stop(self) -> bool:
        """Whether Stop was pressed."""
        return self.stop_event.is_set()


class ProgressCallback(Callback):
    """Engine callback: step, loss, elapsed/ETA and metrics into the job record; Stop sets `should_stop`.

    Args:
        ctx: the running job's context.
    """

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def on_train_begin(self, state: TrainState) -> None:
        """Record the step count (a resumed run starts past 0) and drop history beyond it."""
        job = self.ctx.job
        losses = [pair for pair in job.losses if pair[0] <= state.step]
        self.ctx.queue.update(
            job,
            step=state.step,
            first_step=state.step,
            total_steps=state.total_steps,
            losses=losses,
            message="training",
        )

    def on_step_end(self, state: TrainState) -> None:
        """Record the step; ask the loop to stop when Stop was pressed."""
        job = self.ctx.job
        job.losses.append([state.step, state.loss])
        self.ctx.queue.update(
            job, step=state.step, total_steps=state.total_steps, elapsed_s=state.elapsed_s, eta_s=state.eta_s
        )
        if self.ctx.should_stop():
            state.should_stop = True

    def on_evaluate(self, state: TrainState, metrics: dict[str, float]) -> None:
        """Record evaluation metrics (e.g. validation accuracy)."""
        entry = {"step": state.step, **{k: float(v) for k, v in metrics.items()}}
        self.ctx.queue.update(self.ctx.job, metrics=[*self.ctx.job.metrics, entry])


Runner = Callable[[JobContext], str | None]


class JobQueue:
    """Runs jobs on worker threads, one job at a time per lane, and keeps their records.

    Args:
        workspace: the studio's workspace (`jobs/` holds the records).
        runners: job kind -> `runner(ctx) -> artifact folder (or None)`.
        lanes: job kind -> lane name for kinds that must not wait behind trainings (e.g.
            `{"fewshot": "fit"}`); every other kind runs in the `training` lane.
    """

    def __init__(
        self, workspace: Workspace, runners: dict[str, Runner], lanes: dict[str, str] | None = None
    ) -> None:
        self.workspace, self.runners = workspace, dict(runners)
        self.lanes = {kind: (lanes or {}).get(kind, TRAINING_LANE) for kind in self.runners}
        self.jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._pending: dict[str, queue.Queue[tuple[str, bool]]] = {}
        self._running: dict[str, JobContext] = {}
        self._order: dict[str, int] = {}  # job id -> its place in its lane's line (a ticket number)
        self._tickets = itertools.count()
        self._last_save: dict[str, float] = {}
        self._load_records()
        for lane in sorted(set(self.lanes.values())):
            self._pending[lane] = queue.Queue()
            threading.Thread(target=self._work, args=(lane,), name=f"studio-{lane}", daemon=True).start()

    def job_folder(self, job_id: str) -> Path:
        """The folder of job `job_id`."""
        return self.workspace.inside("jobs", job_id)

    def submit(self, kind: str, params: dict[str, Any], title: str = "") -> Job:
        """Queue a new job in its kind's lane.

        Args:
            kind: a runner name.
            params: its parameters (JSON values).
            title: one line for the job list.

        Raises:
            ValueError: an unknown kind.
        """
        if kind not in self.runners:
            raise ValueError(f"unknown job kind {kind!r}")
        job = Job(
            id=f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
            kind=kind,
            title=title or kind,
            params=params,
        )
        with self._lock:
            self.jobs[job.id] = job
            self.job_folder(job.id).mkdir(parents=True, exist_ok=True)
            self._enqueue(job, resume=False)
        return job

    def stop(self, job_id: str) -> Job:
        """Stop a running job (within one training step) or cancel a queued one.

        Raises:
            ValueError: the job is neither queued nor running.
        """
        with self._lock:
            job = self.get(job_id)
            if (running := self._running_ctx(job_id)) is not None:
                running.stop_event.set()
                self.update(job, message="stopping after this step…")
            elif job.status == "queued":
                self.update(job, status="stopped", message="cancelled before it started")
                self._renumber(self.lanes[job.kind])
            else:
                raise ValueError(f"{job.title} is {job.status}, not running: nothing to stop")
            return job

    def resumable(self, job: Job) -> bool:
        """Whether `job` can continue: it was stopped or interrupted, or failed for a passing reason."""
        return job.status in RESUMABLE or (job.status == "failed" and job.retryable)

    def resume(self, job_id: str) -> Job:
        """Queue a stopped or interrupted job (or a retryable failure) again, from its last checkpoint.

        Raises:
            ValueError: the job is queued, running or done, or failed in a way a retry cannot fix.
        """
        with self._lock:
            job = self.get(job_id)
            if not self.resumable(job):
                raise ValueError(
                    f"{job.title} failed on its settings or data, which a retry cannot fix: correct them "
                    "and press the tab's train button again"
                    if job.status == "failed"
                    else f"{job.title} is {job.status}; only a stopped or interrupted job resumes"
                )
            self.update(job, retryable=False)
            self._enqueue(job, resume=True)
        return job

    def get(self, job_id: str) -> Job:
        """The record of job `job_id` (the live object the workers change).

        Raises:
            ValueError: no such job.
        """
        with self._lock:
            if job_id not in self.jobs:
                raise ValueError(f"no job {job_id!r}")
            return self.jobs[job_id]

    def latest(self, kinds: tuple[str, ...]) -> Job | None:
        """The newest job of one of `kinds`, or None."""
        with self._lock:
            jobs = [j for j in self.jobs.values() if j.kind in kinds]
        return max(jobs, key=lambda j: (j.created, j.id), default=None)

    def shown(self, kinds: tuple[str, ...]) -> Job | None:
        """The job a tab of `kinds` shows: its running job, else its newest one (a snapshot), or None.

        A job queued while another runs does not replace the running one: it is listed by `waiting`.
        """
        with self._lock:
            running = [c.job for c in self._running.values() if c.job.kind in kinds]
            job = running[0] if running else self.latest(kinds)
            return None if job is None else _copy(job)

    def waiting(self, kinds: tuple[str, ...], shown: Job | None = None) -> list[Job]:
        """The queued jobs of `kinds` other than `shown`, in the order they will run."""
        with self._lock:
            jobs = [
                j
                for j in self.jobs.values()
                if j.kind in kinds and j.status == "queued" and (shown is None or j.id != shown.id)
            ]
        return sorted(jobs, key=lambda j: self._order.get(j.id, -1))

    def update(self, job: Job, **changes: Any) -> None:
        """Change fields of `job`'s record and persist it (throttled while it runs)."""
        with self._lock:
            for key, value in changes.items():
                setattr(job, key, value)
            job.version += 1
            self._save(job, force="status" in changes or "artifact" in changes or "previews" in changes)

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until job `job_id` is neither queued nor running (for tests and scripts)."""
        deadline = time.monotonic() + timeout
        while self.get(job_id).status in ACTIVE:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {self.get(job_id).status} after {timeout:.0f} s")
            time.sleep(0.05)
        return self.get(job_id)

    def _running_ctx(self, job_id: str) -> JobContext | None:
        return next((c for c in self._running.values() if c.job.id == job_id), None)

    def _enqueue(self, job: Job, resume: bool) -> None:
        lane = self.lanes[job.kind]
        self._order[job.id] = next(self._tickets)
        self.update(job, status="queued")
        self._pending[lane].put((job.id, resume))
        self._renumber(lane)

    def _renumber(self, lane: str) -> None:
        """Tell each queued job of `lane` how many jobs are ahead of it (after a job joins, starts or leaves)."""
        with self._lock:
            line = sorted(
                (j for j in self.jobs.values() if j.status == "queued" and self.lanes.get(j.kind) == lane),
                key=lambda j: self._order.get(j.id, -1),
            )
            running = int(lane in self._running)
            for ahead, job in enumerate(line, start=running):
                message = f"queued behind {plural(ahead, 'job')}" if ahead else "queued"
                if job.message != message:
                    self.update(job, message=message)

    def _save(self, job: Job, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_save.get(job.id, 0.0) >= SAVE_EVERY_S:
            self._last_save[job.id] = now
            write_json(self.job_folder(job.id) / "job.json", asdict(job))

    def _load_records(self) -> None:
        for record in sorted(self.workspace.jobs.glob("*/job.json")):
            try:
                job = Job(**json.loads(record.read_text()))
            except (ValueError, TypeError) as err:
                log.warning("skipping unreadable job record %s: %s", record, err)
                continue
            if job.status in ACTIVE:  # the server stopped while it was queued or running
                job.status, job.message = (
                    "interrupted",
                    "the studio was closed while this job ran; Resume continues it",
                )
                self._save(job, force=True)
            self.jobs[job.id] = job

    def _work(self, lane: str) -> None:
        while True:
            job_id, resume = self._pending[lane].get()
            with self._lock:
                job = self.jobs[job_id]
                if job.status != "queued":  # cancelled while waiting
                    continue
                ctx = JobContext(self, job, resume)
                self._running[lane] = ctx
                self.update(
                    job, status="running", attempts=job.attempts + 1, first_step=job.step, message="starting"
                )
                self._renumber(lane)
            self._run(ctx)
            with self._lock:
                del self._running[lane]
                self._renumber(lane)

    def _run(self, ctx: JobContext) -> None:
        job = ctx.job
        try:
            artifact = self.runners[job.kind](ctx)
        except Exception as err:  # a failed job must never take the worker (or the server) down
            (ctx.folder / "error.log").write_text(traceback.format_exc())
            log.warning("job %s failed: %s", job.id, err)
            retry = passing(err)
            advice = " (Retry continues from the last checkpoint)" if retry else ""
            self.update(job, status="failed", retryable=retry, message=f"failed: {readable(err)}{advice}")
            return
        if ctx.should_stop():
            self.update(job, status="stopped", message=f"stopped at step {job.step}; Resume continues it")
            return
        done = {"status": "done", "message": done_message(job)}
        if artifact is not None:
            done["artifact"] = str(Path(artifact).resolve().relative_to(self.workspace.root))
        self.update(job, **done)


def _copy(job: Job) -> Job:
    # History lists only grow or are replaced, and their entries never change: copying the lists is enough.
    return replace(job, losses=list(job.losses), metrics=list(job.metrics), previews=list(job.previews))


def plural(count: int, noun: str) -> str:
    """`"1 step"`, `"2 steps"`."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def done_message(job: Job) -> str:
    """The status line of a finished job; after a resume it tells this attempt's steps from the total."""
    this_run = job.step - job.first_step
    part = f" ({this_run} this run)" if job.first_step and this_run != job.step else ""
    return f"done: {plural(job.step, 'step')}{part} in {job.elapsed_s:.0f} s"
