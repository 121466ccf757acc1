"""Errors as one readable line in the page: never a stack trace, never a dead server."""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

log = logging.getLogger("studio.ui")
F = TypeVar("F", bound=Callable[..., Any])


def readable(err: BaseException) -> str:
    """One line describing `err` for a person: the message, with the exception type only when there is none.

    Args:
        err: the exception.
    """
    message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err).strip()
    if isinstance(err, MemoryError) or "out of memory" in message.lower():
        return "out of memory: try fewer steps, a smaller batch or a smaller model"
    if not message:
        return type(err).__name__
    return message.splitlines()[0] if len(message) > 500 else message


# OS errors that a later try may not meet again: a full disk or quota, a busy or flaky device, a timeout.
PASSING_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EIO,
    errno.EAGAIN,
    errno.EBUSY,
    errno.ENOMEM,
    errno.ETIMEDOUT,
}


def passing(err: BaseException) -> bool:
    """Whether `err` may pass on a retry (out of memory, a full disk, a timeout) rather than come from the
    job's own settings or data, which would fail the same way again.

    Args:
        err: the exception a job raised.
    """
    if isinstance(err, MemoryError | TimeoutError | ConnectionError) or "out of memory" in str(err).lower():
        return True
    return isinstance(err, OSError) and err.errno in PASSING_ERRNOS


def guarded(fn: F) -> F:
    """Wrap an event handler so any exception reaches the page as a `gr.Error` with a readable message.

    The full traceback goes to the server's log, not to the browser.

    Args:
        fn: the handler.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:
            log.warning("%s failed", fn.__name__, exc_info=True)
            raise gr.Error(readable(err), print_exception=False) from None

    return wrapper  # type: ignore[return-value]
