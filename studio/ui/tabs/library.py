"""Library tab: every artifact with its method, base model, size, date and metrics; rename, delete, download,
export; and the job list."""

from __future__ import annotations

from typing import Any

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


def picked(current: str | None, action: str) -> str:
    """The selected artifact's name.

    Raises:
        ValueError: nothing is selected.
    """
    if not current:
        raise ValueError(f"pick an artifact to {action} (click its row or choose it above)")
    return current


def artifact_choices(studio, selected: str | None) -> gr.Dropdown:
    """The artifact dropdown: every library name, keeping `selected` only while it exists (never another)."""
    names = [e.name for e in studio.library.entries()]
    return gr.Dropdown(choices=names, value=selected if selected in names else None)


def refreshed_choices(studio, selected: str | None) -> gr.Dropdown:
    """The dropdown after a poll: every library name, the selection left alone unless its artifact is gone.

    A poll's inputs may be older than the page (a selection made while it was in flight), so it never sets a
    value it read, it only clears one that no longer exists.
    """
    names = [e.name for e in studio.library.entries()]
    if selected is None or selected in names:
        return gr.Dropdown(choices=names)
    return gr.Dropdown(choices=names, value=None)


def select(current: str | None) -> list[Any]:
    """A new selection: "new name" starts from its name and a pending Delete question is withdrawn."""
    return [current or "", gr.Row(visible=False), None]


def rename(studio, current: str | None, wanted: str) -> list[Any]:
    """Rename the selected artifact; returns table, dropdown, new name, note."""
    renamed = studio.library.rename(picked(current, "rename"), wanted)
    return [
        studio.library.rows(),
        artifact_choices(studio, renamed),
        renamed,
        f"renamed {current} to {renamed}",
    ]


def ask_delete(current: str | None) -> list[Any]:
    """Delete's first click: ask to confirm, remembering exactly which artifact was asked about.

    Returns:
        The question row (shown), its text, the pending name.
    """
    picked(current, "delete")
    question = f"Delete **{current}** and its files for good? This cannot be undone."
    return [gr.Row(visible=True), question, current]


def confirm_delete(studio, pending: str | None) -> list[Any]:
    """Delete's confirmation: delete the artifact the question named, then select nothing.

    Returns:
        Table, dropdown, new name, note, the question row (hidden), the pending name (cleared).
    """
    if not pending:
        raise ValueError("nothing to delete: press Delete first")
    studio.library.delete(pending)
    return [
        studio.library.rows(),
        artifact_choices(studio, None),
        "",
        f"deleted {pending}",
        gr.Row(visible=False),
        None,
    ]


def build(studio, timer: gr.Timer) -> None:
    """Lay out the tab and wire its events."""
    table = gr.Dataframe(
        headers=LIBRARY_HEADERS, value=studio.library.rows(), interactive=False, label="artifacts"
    )
    with gr.Row():
        name = gr.Dropdown(
            [e.name for e in studio.library.entries()],
            value=None,
            label="artifact",
            info="The artifact the buttons act on.",
            elem_id="library-artifact",
        )
        new_name = gr.Textbox(
            "", label="new name", info="Letters, digits, '.', '_' and '-'.", elem_id="library-new-name"
        )
    with gr.Row():
        rename_button = gr.Button("Rename", size="sm", elem_id="library-rename")
        delete = gr.Button("Delete", variant="stop", size="sm", elem_id="library-delete")
        download = gr.Button("Download (zip)", size="sm", elem_id="library-download")
        export = gr.Button("Export for diffusers", size="sm")
    with gr.Row(visible=False) as question_row:
        question = gr.Markdown("")
        confirm = gr.Button("Yes, delete", variant="stop", size="sm", elem_id="library-confirm-delete")
        cancel = gr.Button("Cancel", size="sm", elem_id="library-cancel-delete")
    pending = gr.State(None)
    file = gr.File(label="file", interactive=False, elem_id="library-file")
    note = gr.Markdown("", elem_id="library-note")
    with gr.Accordion("jobs", open=False):
        jobs = gr.Dataframe(headers=JOB_HEADERS, value=job_rows(studio), interactive=False)
    seen = gr.State(None)

    def on_export(current):
        path, message = export_artifact(studio, picked(current, "export"))
        return str(path), message

    def on_tick(previous, selected):
        # Redraw only when something changed: a new, renamed or deleted artifact, or a job's progress.
        signature = (tuple(e.name for e in studio.library.entries()), tuple(map(tuple, job_rows(studio))))
        if signature == previous:
            return gr.skip(), gr.skip(), gr.skip(), previous
        return studio.library.rows(), refreshed_choices(studio, selected), job_rows(studio), signature

    def on_select(evt: gr.SelectData):
        return evt.row_value[0] if evt.row_value else gr.skip()

    name.change(select, name, [new_name, question_row, pending], queue=False)
    rename_button.click(
        guarded(lambda current, wanted: rename(studio, current, wanted)),
        [name, new_name],
        [table, name, new_name, note],
    )
    delete.click(guarded(ask_delete), name, [question_row, question, pending])
    confirm.click(
        guarded(lambda asked: confirm_delete(studio, asked)),
        pending,
        [table, name, new_name, note, question_row, pending],
    )
    cancel.click(lambda: [gr.Row(visible=False), None], None, [question_row, pending], queue=False)
    download.click(guarded(lambda current: str(studio.library.zip(picked(current, "download")))), name, file)
    export.click(guarded(on_export), name, [file, note])
    timer.tick(on_tick, [seen, name], [table, name, jobs, seen], show_progress="hidden", queue=False)
    table.select(on_select, None, name)
