"""Adaptation Studio: parameter-efficient adaptation of vision models.

`studio.core` is the method core (torch + safetensors only), `studio.engine` the training loop,
`studio.cli` the `studio` command.
"""

__version__ = "0.1.0"
