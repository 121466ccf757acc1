"""Fixtures of the few-shot CLIP tests: one torch thread, and the tiny CLIP shared by a module."""

import pytest
import torch

from tests.vlm.tiny import tiny_clip


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module: on tiny tensors thread hand-offs cost more than the maths."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def base():
    """The tiny random CLIP (`tests.vlm.tiny.tiny_clip`), built once per module (a module may define its own)."""
    return tiny_clip()
