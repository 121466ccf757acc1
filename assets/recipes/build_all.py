"""Build the whole reference set in one go: `studio/shapes-vit`, then `studio/shapes-clip`, then `studio/shapes-sd`.

    python assets/recipes/build_all.py [--out assets]

Each recipe runs as its own process with its defaults (fixed seeds) and writes `<out>/shapes-*/`; the
text-to-image evaluation is judged by the ViT built in the same run (`$STUDIO_ASSETS` points at `--out`).
Prints each recipe's own output, then the wall time of every recipe and of the whole set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

RECIPES = Path(__file__).resolve().parent
ORDER = ("shapes_vit", "shapes_clip", "shapes_sd")  # the SD evaluation needs the ViT


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=RECIPES.parent, help="assets folder to write")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "STUDIO_ASSETS": str(out)}
    total, minutes = time.perf_counter(), []
    for recipe in ORDER:
        folder = out / recipe.replace("_", "-")
        print(f"== {recipe}.py -> {folder}", flush=True)
        start = time.perf_counter()
        command = [sys.executable, str(RECIPES / f"{recipe}.py"), "--out", str(folder)]
        code = subprocess.run(command, env=env).returncode
        if code:
            sys.exit(f"{recipe}.py failed with exit code {code}")
        minutes.append((folder.name, (time.perf_counter() - start) / 60))
    for name, spent in minutes:
        print(f"{name}: {spent:.1f} min")
    print(f"whole set: {(time.perf_counter() - total) / 60:.1f} min")


if __name__ == "__main__":
    main()
