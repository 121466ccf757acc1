"""Several concepts in one run (joint training, as Custom Diffusion's and SVDiff's multi-subject recipes): each
concept has its own images, its own token and its own class word."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Concept:
    """One more concept of a run, beside the first (the run's `images`, `token` and `class_word`).

    Args:
        token: its placeholder in prompts, e.g. `"<my-dog>"`; distinct from every other concept's.
        images: its images: a folder, paths, PIL images (as for the first concept).
        class_word: its class (`"dog"`); needed for prior preservation.

    Raises:
        ValueError: an empty token or one with spaces.
    """

    token: str
    images: Any = None
    class_word: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.token, str) or not self.token or any(c.isspace() for c in self.token):
            raise ValueError(f"a concept's token must be one word without spaces, got {self.token!r}")

    @classmethod
    def coerce(cls, value: Concept | Mapping[str, Any]) -> Concept:
        """`value` as a `Concept`: a `Concept`, or a dict with `token`, `images` and maybe `class_word`.

        Raises:
            ValueError: anything else, or a dict with other keys (the message names the accepted ones).
        """
        if isinstance(value, cls):
            return value
        known = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(value, Mapping) or not set(value) <= set(known) or "token" not in value:
            raise ValueError(
                f"a concept is a Concept or a dict with keys {known} (token required), got {value!r}"
            )
        return cls(**value)


def check_distinct_tokens(tokens: list[str]) -> None:
    """Refuse two concepts with one token.

    Raises:
        ValueError: naming the token.
    """
    seen: set[str] = set()
    for token in tokens:
        if token in seen:
            raise ValueError(f"token {token!r} names two concepts; give each concept its own token")
        seen.add(token)
