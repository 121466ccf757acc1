"""DataLoader whose shuffle order and per-sample randomness are pure functions of (seed, epoch, index)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

try:
    import numpy as np
except ImportError:  # pragma: no cover - numpy ships with torch in practice
    np = None


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the shuffling generator for one epoch.

    Args:
        seed: the run's seed.
        epoch: 0-based epoch.

    Returns:
        A non-negative 63-bit seed.
    """
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 12345) % (2**63)


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """Seed of the RNGs while sample `index` of epoch `epoch` is loaded.

    Args:
        seed: the run's seed.
        epoch: 0-based epoch.
        index: dataset index.

    Returns:
        A 32-bit seed (NumPy's limit).
    """
    return (epoch_seed(seed, epoch) * 2_654_435_761 + int(index) * 40_503 + 1) % (2**32)


@contextmanager
def seeded_rngs(seed: int):
    """Run a block with torch CPU, Python and NumPy global RNGs seeded to `seed`, then put them back.

    Args:
        seed: the seed for the block.
    """
    torch_state, python_state = torch.get_rng_state(), random.getstate()
    np_state = np.random.get_state() if np is not None else None
    # Only the CPU generator: `torch.manual_seed` also queues a seed for every accelerator backend, with a
    # stack trace each time, which made seeding cost more than rendering and transforming the sample.
    torch.default_generator.manual_seed(seed)
    random.seed(seed)
    if np is not None:
        np.random.seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        random.setstate(python_state)
        if np is not None:
            np.random.set_state(np_state)


class SeededSamples(Dataset):
    """Dataset view that loads every sample under RNGs seeded from `(seed, epoch, index)`.

    Random augmentation then no longer draws from the training process's RNG stream. That matters because
    accelerate's DataLoader loads one batch ahead: at a checkpoint the next batch has already been augmented,
    so restoring the RNG alone could not replay it. It also makes augmentation independent of `num_workers`.

    Args:
        dataset: the map-style dataset.
        seed: the run's seed.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose seeds the next pass uses (forwarded to the wrapped dataset if it has one).

        Args:
            epoch: 0-based epoch.
        """
        self.epoch = int(epoch)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        with seeded_rngs(sample_seed(self.seed, self.epoch, index)):
            return self.dataset[index]


class EpochShuffleSampler(Sampler[int]):
    """Random permutation of the dataset, reproducible per epoch.

    The generator is reseeded from `(seed, epoch)` on `set_epoch` and at the start of every pass, so the order
    never depends on how much of the previous epoch was consumed; that is what lets a resumed run replay the
    same order. The same generator is handed to the `DataLoader`, so the worker base seed it draws at iterator
    creation comes from `(seed, epoch)` as well instead of from the global RNG (which a resume restores).

    Args:
        length: number of samples.
        seed: the run's seed.
    """

    def __init__(self, length: int, seed: int) -> None:
        self.length = length
        self.seed = seed
        self.epoch = 0
        # Not named `generator`: accelerate would then broadcast it from rank 0 on every pass for nothing.
        self._generator = torch.Generator()
        self._generator.manual_seed(epoch_seed(seed, 0))

    @property
    def loader_generator(self) -> torch.Generator:
        """The generator to pass to the `DataLoader`."""
        return self._generator

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next pass yields.

        Args:
            epoch: 0-based epoch.
        """
        self.epoch = int(epoch)
        self._generator.manual_seed(epoch_seed(self.seed, self.epoch))

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(
            self.length, generator=torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        )
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.length


def build_loader(
    dataset: Dataset, batch_size: int, seed: int, collate_fn: Callable | None = None, num_workers: int = 0
) -> DataLoader:
    """Shuffling DataLoader (keeps the last partial batch) driven by an `EpochShuffleSampler`.

    Args:
        dataset: a map-style dataset.
        batch_size: samples per batch (per process).
        seed: the run's seed.
        collate_fn: optional collate function.
        num_workers: DataLoader worker processes.

    Returns:
        The DataLoader over a `SeededSamples` view of `dataset`; call `set_epoch` on its prepared wrapper
        (which forwards to the sampler and the dataset view) before each epoch.
    """
    sampler = EpochShuffleSampler(len(dataset), seed)
    return DataLoader(
        SeededSamples(dataset, seed),
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        collate_fn=collate_fn,
        num_workers=num_workers,
        generator=sampler.loader_generator,
    )
