"""Per-sample seeding of `studio.engine.data`: the same draws for the same seed, the caller's RNGs untouched."""

import random

import numpy as np
import torch

from studio.engine.data import seeded_rngs


def _draws() -> tuple[float, float, float]:
    return torch.rand(()).item(), random.random(), float(np.random.rand())


def test_same_seed_gives_same_draws_from_all_three_rngs():
    with seeded_rngs(7):
        first = _draws()
    torch.rand(5), random.random(), np.random.rand()  # move the outer streams on
    with seeded_rngs(7):
        again = _draws()
    with seeded_rngs(8):
        other = _draws()
    assert first == again
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_outer_streams_continue_as_if_the_block_never_ran():
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    expected = [_draws() for _ in range(2)]
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    got = [_draws()]
    with seeded_rngs(123):
        _draws()
    got.append(_draws())
    assert got == expected
