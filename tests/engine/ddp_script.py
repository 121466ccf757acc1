"""Toy model/data shared by the engine tests, and the script `test_engine_ddp.py` runs under `accelerate launch`.

Usage: `accelerate launch --num_processes 2 --cpu tests/engine/ddp_script.py OUT_DIR`
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import TensorDataset

from studio.engine import train
from tests.helpers import StopAt


def make_model(seed: int = 0, dropout: float = 0.2) -> nn.Module:
    """Two-layer MLP with dropout, initialised from `seed`."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1))


def make_data(n: int = 36, seed: int = 1) -> TensorDataset:
    """A learnable regression problem: y = x @ w + small noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.01 * torch.randn(n, 1, generator=g)
    return TensorDataset(x, y)


def mse_loss(model: nn.Module, batch) -> torch.Tensor:
    """Mean squared error of `model` on an `(x, y)` batch."""
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def _params(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def main(out_dir: Path) -> None:
    kwargs = dict(batch_size=4, epochs=2, lr=1e-2, warmup_steps=0.2, grad_accum_steps=2, progress=False)
    full = make_model()
    result = train(full, make_data(), mse_loss, output_dir=out_dir / "full", **kwargs)

    interrupted = make_model()
    stopped = train(
        interrupted, make_data(), mse_loss, output_dir=out_dir / "resumed", callbacks=[StopAt(2)], **kwargs
    )
    # Resume into a freshly built model with other weights, as a new process would: only the checkpoint
    # can make it end where the uninterrupted run did.
    fresh = make_model(seed=1)
    resumed = train(fresh, make_data(), mse_loss, output_dir=out_dir / "resumed", resume=True, **kwargs)

    import accelerate

    state = accelerate.PartialState()
    (out_dir / f"done-{state.process_index}").write_text("ok")
    if state.is_main_process:
        save_file(_params(full), str(out_dir / "full.safetensors"))
        save_file(_params(fresh), str(out_dir / "resumed.safetensors"))
        summary = {
            "num_processes": state.num_processes,
            "steps": result.steps,
            "losses": [h["loss"] for h in result.history],
            "stopped": [stopped.stopped, stopped.steps],
            "resumed_steps": resumed.steps,
            "last_checkpoint": result.last_checkpoint,
        }
        (out_dir / "summary.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
