"""The command a recipe records as `"recipe"` in its metrics.json: how to rerun it, not where it wrote.

A sibling of the recipes (they are scripts, not a package; each puts this folder on `sys.path`).
"""

from __future__ import annotations

import shlex
import sys


def recipe_command(script: str, argv: list[str] | None = None) -> str:
    """The shell command that reruns a recipe, without its `--out` (the output folder changes nothing else).

    Args:
        script: the recipe's file name, e.g. `"shapes_vit.py"`.
        argv: the arguments the recipe was given; None reads `sys.argv[1:]`.

    Returns:
        e.g. `"python assets/recipes/shapes_vit.py --epochs 10"`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    kept = []
    while args:
        arg = args.pop(0)
        if arg == "--out":
            args = args[1:]  # and its value
        elif not arg.startswith("--out="):
            kept.append(arg)
    return shlex.join(["python", f"assets/recipes/{script}", *kept])
