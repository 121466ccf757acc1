"""Textual Inversion and ControlNet on the tiny pipeline, run by `test_multiprocess.py` under `accelerate launch`:
each trained straight through, and stopped after 2 steps then resumed, in every process.

Usage: `accelerate launch --multi_gpu --num_processes 2 tests/diffusion/ddp_script.py PIPELINE_DIR PAIRS_DIR OUT`
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import accelerate

import diffusion
import diffusion.concept.run
import diffusion.control.train
from tests.diffusion.tiny import concept_images
from tests.helpers import StopAt

STEPS = 4


def _previews(out: Path, rank: int, kind: str):
    def record(step, images):
        (out / f"preview-{kind}-rank{rank}-step{step}").write_text(str(len(images)))

    return record


def _record_writes(out: Path, rank: int) -> None:
    """Each trainer's artifact record, written as before, leaves a mark naming the process that wrote it."""
    for module in (diffusion.concept.run, diffusion.control.train):
        write = module.write_artifact_info

        def recorded(folder, record, write=write):
            (out / f"wrote-{Path(folder).name}-rank{rank}").write_text("")
            return write(folder, record)

        module.write_artifact_info = recorded


def main(pipeline_dir: Path, pairs: Path, out: Path) -> None:
    # Not accelerate's state: made before the first Accelerator, it would miss the CPU flag and not be distributed.
    rank = int(os.environ.get("RANK", "0"))
    _record_writes(out, rank)
    pipe = diffusion.load_pipeline(pipeline_dir, disable_progress_bar=True)
    common = {"steps": STEPS, "batch_size": 2, "progress": False, "checkpoint_every": 1}

    def ti(name, **kw):
        return diffusion.personalize(
            pipe, concept_images(4), token="<c>", class_word="circle", output_dir=out / name,
            prior_preservation=True, num_class_images=2, **common, **kw,
        )  # fmt: skip

    def control(name, **kw):
        return diffusion.train_control(
            pipe, pairs, method="controlnet", output_dir=out / name, config={"lr": 1e-2}, **common, **kw
        )

    for kind, run in (("ti", ti), ("controlnet", control)):
        run(f"{kind}-full", preview_every=2, preview_steps=1, on_preview=_previews(out, rank, kind))
        run(f"{kind}-resumed", callbacks=[StopAt(2)])
        run(f"{kind}-resumed", resume=True)
    state = accelerate.PartialState()
    (out / f"done-{rank}").write_text(json.dumps({"num_processes": state.num_processes}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
