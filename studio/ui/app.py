"""The studio app: its state (`Studio`: workspace, job queue, library) and `build_app`, which lays out the tabs."""

from __future__ import annotations

import os
from pathlib import Path

import gradio as gr

from .jobs import JobQueue
from .library import Library
from .models import ModelPaths
from .tasks import fewshot as fewshot_task
from .tasks import vit as vit_task
from .workspace import DEFAULT_MAX_UPLOAD_MB, Workspace

DEFAULT_WORKSPACE = "~/.cache/adaptation-studio/workspace"
POLL_SECONDS = 1.0
CSS = ".job-status p { margin: 0.2em 0; }"


def default_workspace() -> Path:
    """`$STUDIO_WORKSPACE`, else `~/.cache/adaptation-studio/workspace`."""
    return Path(os.environ.get("STUDIO_WORKSPACE") or DEFAULT_WORKSPACE).expanduser()


class Studio:
    """What every tab shares: the workspace, the library and the job queue (with its runners).

    Args:
        workspace: the workspace folder.
        max_upload_mb: the most megabytes one upload may hold.
        models_dir: a folder besides the workspace that model and weights boxes may name files in.
    """

    def __init__(
        self,
        workspace: str | os.PathLike,
        max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
        models_dir: str | os.PathLike | None = None,
    ) -> None:
        self.workspace = Workspace(workspace, max_upload_mb)
        self.models = ModelPaths(self.workspace.root, models_dir)
        self.library = Library(self.workspace)
        self.classifiers = fewshot_task.ClassifierCache()
        runners = {"vit": vit_task.run, "fewshot": fewshot_task.run}
        runners.update(_diffusion_runners())
        lanes = {"fewshot": fewshot_task.LANE}  # a seconds-long fit never waits behind a training
        self.jobs = JobQueue(self.workspace, {kind: self._bind(fn) for kind, fn in runners.items()}, lanes)

    def _bind(self, fn):
        return lambda ctx: fn(self, ctx)


def _diffusion_runners() -> dict:
    from .tasks import diffusion as diffusion_task

    return diffusion_task.RUNNERS


def build_app(
    workspace: str | os.PathLike | None = None,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    models_dir: str | os.PathLike | None = None,
) -> gr.Blocks:
    """Build the studio's page without launching it (tests drive it; `launch` serves it).

    Args:
        workspace: the folder for uploads, jobs and artifacts; default `default_workspace()`.
        max_upload_mb: the most megabytes one upload may hold.
        models_dir: a folder besides the workspace that model and weights boxes may name files in.

    Returns:
        The `gr.Blocks` app; `app.studio` is its `Studio`.
    """
    from .tabs import control, fewshot, generate, library, personalize, vit

    studio = Studio(workspace or default_workspace(), max_upload_mb, models_dir)
    with gr.Blocks(title="Adaptation Studio") as app:
        gr.Markdown(
            "# Adaptation Studio\nTrain small adapters on your images and sample with them. Workspace: "
            f"`{studio.workspace.root}`"
        )
        timer = gr.Timer(POLL_SECONDS)
        with gr.Tabs():
            for tab in (personalize, control, generate, vit, fewshot, library):
                with gr.Tab(tab.TITLE, id=tab.__name__.rsplit(".", 1)[-1]):
                    tab.build(studio, timer)
    app.studio = studio
    return app
