"""The live view of a tab's training job: status line, Stop and Resume, its queue, loss plot, metric curve,
previews.

It redraws from the job record on every tick of the page's timer, so a refreshed page picks the tab's running
(else newest) job up again; a per-page signature of what it drew skips redraws when nothing changed.
"""

from __future__ import annotations

import html
import math
from typing import Any

import gradio as gr
import pandas as pd

from ..errors import guarded
from ..jobs import ACTIVE, Job

MAX_POINTS = 500  # the loss plot keeps at most this many points (evenly thinned)


def _duration(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def status_line(job: Job | None) -> str:
    """One Markdown line about `job` (or a hint when there is none)."""
    if job is None:
        return "Nothing has run in this tab yet: set it up above and start it."
    steps = f"step {job.step}/{job.total_steps}" if job.total_steps else ""
    timing = (
        f"elapsed {_duration(job.elapsed_s)}, ETA {_duration(job.eta_s)}" if job.status == "running" else ""
    )
    # Titles and messages carry user text (a token like <my-cat>): escaped, or Markdown eats it as a tag.
    parts = [f"**{_escape(job.title)}**", f"`{job.status}`", steps, timing, _escape(job.message)]
    return " · ".join(p for p in parts if p)


def _escape(text: str) -> str:
    return html.escape(text or "", quote=False)


def queue_lines(waiting: list[Job]) -> str:
    """Markdown list of the tab's queued jobs, in the order they will run (empty when none waits)."""
    if not waiting:
        return ""
    lines = (f"{i}. {_escape(j.title)}" for i, j in enumerate(waiting, 1))  # a <token> is text, not a tag
    return "**queued in this tab** (next first):\n" + "\n".join(lines)


def loss_frame(job: Job | None) -> pd.DataFrame:
    """`step`, `loss` columns of the job's loss history (thinned to `MAX_POINTS`)."""
    pairs = [] if job is None else [p for p in job.losses if math.isfinite(p[1])]
    stride = max(1, math.ceil(len(pairs) / MAX_POINTS))
    return _numeric(pd.DataFrame(pairs[::stride], columns=["step", "loss"]), "loss")


def metric_frame(job: Job | None) -> pd.DataFrame:
    """`step`, `value`, `metric` columns of the job's evaluation metrics (accuracies only)."""
    rows = []
    for entry in [] if job is None else job.metrics:
        rows += [[entry["step"], v, k] for k, v in entry.items() if k != "step" and "acc" in k]
    return _numeric(pd.DataFrame(rows, columns=["step", "value", "metric"]), "value")


def _numeric(frame: pd.DataFrame, y: str) -> pd.DataFrame:
    # Gradio picks each axis's type from the column's dtype: an empty or mixed column is `object`, which it
    # draws as a categorical axis (smallest value on top, raw 10-decimal labels, no line between points).
    return frame.astype({"step": "int64", y: "float64"})


class ProgressPanel:
    """Progress components for the jobs of `kinds`; create it inside the tab's layout.

    Args:
        studio: the app's `Studio`.
        kinds: job kinds this panel follows (the running one is shown, else the newest).
        metric_plot: show a validation-accuracy curve.
        previews: show a gallery of preview samples.
    """

    def __init__(
        self, studio, kinds: tuple[str, ...], metric_plot: bool = False, previews: bool = False
    ) -> None:
        self.studio, self.kinds = studio, kinds
        prefix = kinds[0]  # element ids for the page's tests and styles: "<kind>-status", "<kind>-loss", ...
        self.status = gr.Markdown(status_line(None), elem_id=f"{prefix}-status", elem_classes=["job-status"])
        with gr.Row():
            self.stop = gr.Button("Stop", variant="stop", size="sm", visible=False, elem_id=f"{prefix}-stop")
            self.resume = gr.Button("Resume", size="sm", visible=False, elem_id=f"{prefix}-resume")
        self.queue = gr.Markdown("", elem_id=f"{prefix}-queue")
        with gr.Row():
            self.loss = gr.LinePlot(
                loss_frame(None),
                x="step",
                y="loss",
                title="training loss",
                height=240,
                elem_id=f"{prefix}-loss",
            )
            self.metric = gr.LinePlot(
                metric_frame(None), x="step", y="value", color="metric", title="validation accuracy",
                height=240, visible=metric_plot, y_lim=[0, 1],
            )  # fmt: skip
        self.gallery = gr.Gallery(
            label="preview samples", columns=6, height="auto", object_fit="contain", fit_columns=False,
            format="png", visible=previews, elem_id=f"{prefix}-previews",
        )  # fmt: skip
        self.version = gr.State(None)  # what the page shows: `signature()` of its job and queue
        self.outputs = [
            self.status, self.stop, self.resume, self.queue, self.loss, self.metric, self.gallery, self.version
        ]  # fmt: skip

    def job(self) -> Job | None:
        """The job this panel shows (a snapshot): the running one of its kinds, else the newest."""
        return self.studio.jobs.shown(self.kinds)

    def signature(self, job: Job | None) -> tuple:
        """What a drawing of `job` and the tab's queue depends on; equal signatures draw the same."""
        waiting = self.studio.jobs.waiting(self.kinds, job)
        return (None if job is None else (job.id, job.version), tuple((j.id, j.version) for j in waiting))

    def redraw(self) -> list[Any]:
        """Values for `outputs` showing the tab's job now (what a button's handler returns)."""
        return self.render(self.job())

    def render(self, job: Job | None) -> list[Any]:
        """Values for `outputs` drawn from `job` (a snapshot, so its text and its signature agree)."""
        signature = self.signature(job)  # first: a change after this point makes the next tick redraw
        folder = None if job is None else self.studio.jobs.job_folder(job.id)
        previews = (
            []
            if job is None
            else [(str(folder / p["path"]), p.get("caption") or f"step {p['step']}") for p in job.previews]
        )
        resumable = job is not None and self.studio.jobs.resumable(job)
        return [
            status_line(job),
            gr.Button(visible=job is not None and job.status in ACTIVE),
            gr.Button(visible=resumable, value="Retry" if resumable and job.status == "failed" else "Resume"),
            queue_lines(self.studio.jobs.waiting(self.kinds, job)),
            loss_frame(job),
            metric_frame(job),
            previews,
            signature,
        ]

    def refresh(self, seen: tuple | None) -> list[Any]:
        """The timer's handler: redraw when the job or the queue changed since this page last drew them."""
        job = self.job()
        if seen is not None and self.signature(job) == seen:
            return [gr.skip()] * len(self.outputs)
        return self.render(job)

    def bind(self, timer: gr.Timer) -> None:
        """Wire the timer, Stop and Resume (both act on the job the page shows)."""
        timer.tick(self.refresh, self.version, self.outputs, show_progress="hidden", queue=False)
        self.stop.click(guarded(self.stop_shown), self.version, self.outputs, show_progress="hidden")
        self.resume.click(guarded(self.resume_shown), self.version, self.outputs, show_progress="hidden")

    def stop_shown(self, seen: tuple | None) -> list[Any]:
        """Stop's handler: stop the job this page shows (`seen` is its drawing's signature)."""
        if not seen or seen[0] is None:
            raise ValueError("no training is running in this tab")
        self.studio.jobs.stop(seen[0][0])
        return self.redraw()

    def resume_shown(self, seen: tuple | None) -> list[Any]:
        """Resume's (and Retry's) handler: continue the job this page shows."""
        if not seen or seen[0] is None:
            raise ValueError("nothing to resume: only a stopped or interrupted training resumes")
        self.studio.jobs.resume(seen[0][0])
        return self.redraw()
