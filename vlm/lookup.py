"""Finding a few-shot method, and its validated config, in `studio.core`'s registry."""

from __future__ import annotations

from typing import Any

from studio.core import Method, MethodConfig, get_method, list_methods


def fewshot_method(name: str) -> Method:
    """The registered few-shot method called `name`.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    try:
        return get_method(name, "vlm")
    except KeyError as err:  # a bad argument value, as every other bad argument of FewShotCLIP
        raise ValueError(err.args[0]) from None


def method_and_config(
    method: str | None, config: MethodConfig | None, options: dict[str, Any]
) -> tuple[Method, MethodConfig]:
    """The few-shot method and its validated config, from a name and keyword options or from a config.

    Args:
        method: the method's name; None: `config`'s method, or `"tip_adapter"`.
        config: the method's config, or None to build it from `options`.
        options: config field values (only without `config`).

    Raises:
        ValueError: an unknown method or option (the message lists the known ones), an invalid value, both
            `config` and options, or a `config` that is not of `method` or of no few-shot method.
    """
    if config is None:
        chosen = fewshot_method(method or "tip_adapter")
        return chosen, chosen.config_cls.from_dict(options)
    if options:
        raise ValueError(
            f"pass the method's options in config= or as keywords, not both (got {sorted(options)})"
        )
    chosen = next((m for m in list_methods("vlm") if type(config) is m.config_cls), None)
    if chosen is None or method not in (None, chosen.name):
        raise ValueError(
            f"config is a {type(config).__name__}, not the config of few-shot method {method or '(any)'!r}; "
            f"pass the config class of the method (see studio.core.method_configs('vlm'))"
        )
    return chosen, config
