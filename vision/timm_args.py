"""The `timm.create_model` keywords the CLI accepts (`--timm-arg`) and reads back from adapter metadata.

Only keywords that shape the architecture are allowed: others, such as `checkpoint_path` or
`pretrained_cfg_overlay`, make timm open files, so an adapter folder from elsewhere could point `vision eval` at
any file on the machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.core import conform

TIMM_ARGS: dict[str, Any] = {
    "img_size": int | list[int],
    "patch_size": int | list[int],
    "in_chans": int,
    "global_pool": str,
    "embed_dim": int,
    "depth": int,
    "num_heads": int | list[int],
    "depths": list[int],
    "dims": list[int],
    "window_size": int | list[int],
    "ls_init_value": float | None,
    "mlp_ratio": float,
    "qkv_bias": bool,
    "qk_norm": bool,
    "init_values": float | None,
    "class_token": bool,
    "pos_embed": str,
    "no_embed_class": bool,
    "reg_tokens": int,
    "pre_norm": bool,
    "final_norm": bool,
    "fc_norm": bool | None,
    "dynamic_img_size": bool,
    "drop_rate": float,
    "pos_drop_rate": float,
    "patch_drop_rate": float,
    "proj_drop_rate": float,
    "attn_drop_rate": float,
    "drop_path_rate": float,
}


def check_timm_args(args: Mapping[str, Any], source: str = "--timm-arg") -> dict[str, Any]:
    """Validate extra `timm.create_model` keywords against the allowlist `TIMM_ARGS` and their types.

    Args:
        args: keyword name to value.
        source: where the keywords came from, named in the error (an option or a file).

    Returns:
        The keywords, with values converted as `studio.core.conform` does (e.g. 2 -> 2.0 for a float).

    Raises:
        ValueError: not a mapping, a keyword that is not allowed (named, with the allowed ones), or a value of the wrong type.
    """
    if not isinstance(args, Mapping):
        raise ValueError(f"{source}: expected keyword-value pairs, got {args!r}")
    checked = {}
    for key, value in args.items():
        if key not in TIMM_ARGS:
            raise ValueError(
                f"{source}: timm argument {key!r} is not allowed; allowed: {', '.join(sorted(TIMM_ARGS))}"
            )
        try:
            checked[key] = conform(key, value, TIMM_ARGS[key])
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
    return checked
