"""Library tab: every artifact with its method, base model, size, date and metrics; rename, delete, download,
export; and the job list."""

from __future__ import annotations

import gradio as gr

from ..errors import guarded
from ..library import LIBRARY_HEADERS
from ..tasks.diffusion import export_artifact

TITLE = "Library"
JOB_HEADERS = ["job", "title", "status", "step", "message"]


def job_rows(studio) -> list[list]:
    """One row per job, newest first."""
    jobs = sorted(studio.jobs.jobs.values(), key=lambda j: (j.created, j.id), reverse=True)
    return [[j.id, j.title, j.status, f"{j.step}/{j.total_steps}", j.message] for j in jobs]


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    table = gr.Dataframe(
        headers=LIBRARY_HEADERS, value=studio.library.rows(), interactive=False, label="artifacts"
    )
    with gr.Row():
        name = gr.Dropdown(
            [e.name for e in studio.library.entries()],
            label="artifact",
            info="The artifact the buttons act on.",
        )
        new_name = gr.Textbox("", label="new name", info="Letters, digits, '.', '_' and '-'.")
    with gr.Row():
        rename = gr.Button("Rename", size="sm")
        delete = gr.Button("Delete", variant="stop", size="sm")
        download = gr.Button("Download (zip)", size="sm")
        export = gr.Button("Export for diffusers", size="sm")
    file = gr.File(label="file", interactive=False)
    note = gr.Markdown("")
    with gr.Accordion("jobs", open=False):
        jobs = gr.Dataframe(headers=JOB_HEADERS, value=job_rows(studio), interactive=False)
    seen = gr.State(None)

    def redraw(selected=None):
        names = [e.name for e in studio.library.entries()]
        value = selected if selected in names else (names[0] if names else None)
        return studio.library.rows(), gr.Dropdown(choices=names, value=value)

    def on_rename(current, wanted):
        renamed = studio.library.rename(current, wanted)
        return *redraw(renamed), f"renamed {current} to {renamed}"

    def on_delete(current):
        studio.library.delete(current)
        return *redraw(), f"deleted {current}"

    def on_export(current):
        path, message = export_artifact(studio, current)
        return str(path), message

    def on_tick(previous, selected):
        # Redraw only when something changed: a new, renamed or deleted artifact, or a job's progress.
        signature = (tuple(e.name for e in studio.library.entries()), tuple(map(tuple, job_rows(studio))))
        if signature == previous:
            return gr.skip(), gr.skip(), gr.skip(), previous
        return *redraw(selected), job_rows(studio), signature

    def on_select(evt: gr.SelectData):
        return evt.row_value[0] if evt.row_value else gr.skip()

    rename.click(guarded(on_rename), [name, new_name], [table, name, note])
    delete.click(guarded(on_delete), name, [table, name, note])
    download.click(guarded(lambda current: str(studio.library.zip(current))), name, file)
    export.click(guarded(on_export), name, [file, note])
    timer.tick(on_tick, [seen, name], [table, name, jobs, seen], show_progress="hidden", queue=False)
    table.select(on_select, None, name)
