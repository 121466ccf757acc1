"""The studio: a Gradio app for training adapters and sampling with them, on the public domain APIs.

`build_app()` returns the page without serving it (tests drive it); `launch()` serves it on 127.0.0.1 and a
free port. Trainings run one at a time in a background job queue (`studio.ui.jobs`; Few-shot fits have a lane
of their own), everything lives in one workspace folder (`studio.ui.workspace`).
"""

from .app import Studio, build_app
from .launch import launch

__all__ = ["Studio", "build_app", "launch"]
