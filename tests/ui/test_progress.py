"""The live job view: what its status line and plots hand the page."""

import gradio as gr
import pytest

from studio.ui.jobs import Job
from studio.ui.tabs.progress import loss_frame, metric_frame, status_line


def _job(**fields) -> Job:
    return Job(id="j1", kind="personalize", title="textual_inversion for <my-cat>", params={}, **fields)


def test_the_status_line_keeps_a_token_in_angle_brackets():
    line = status_line(_job(status="running", message="training textual_inversion for <my-cat> on 3 images"))
    html = gr.Markdown().postprocess(line)
    assert "<my-cat>" not in html  # the browser would take it for a tag and show nothing
    assert html.count("&lt;my-cat&gt;") == 2


@pytest.mark.parametrize(
    "job",
    [
        None,  # the empty plot a page starts with (and shows after a reload)
        _job(),
        _job(losses=[[1, 0.5], [2, 0.25]], metrics=[{"step": 2, "val_accuracy": 0.5, "val_loss": 1.0}]),
        _job(losses=[[1, 0.5]], metrics=[{"step": 1, "val_accuracy": 1}]),  # ints from a reloaded record
    ],
)
def test_every_plot_has_numeric_axes(job):
    for frame, y in ((loss_frame(job), "loss"), (metric_frame(job), "value")):
        plot = gr.LinePlot(x="step", y=y).postprocess(frame)
        assert plot.datatypes["step"] == plot.datatypes[y] == "quantitative"
