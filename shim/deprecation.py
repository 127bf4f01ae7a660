"""PEP 702 ``@deprecated`` that also keeps async functions async on Python 3.11.

Type checkers see ``typing_extensions.deprecated`` (mypy flags every caller with
``--enable-error-code deprecated``). At runtime, ``typing_extensions`` wraps a
coroutine function in a plain function and, before Python 3.12, marks it in a
way ``inspect.iscoroutinefunction`` does not recognise, which breaks frameworks
that dispatch on it (FastAPI, Starlette, pytest plugins). The runtime version
here wraps coroutine functions in an ``async def`` instead, whose warning is
raised when the call is awaited and points at the awaiting line; everything else
goes to ``typing_extensions.deprecated`` unchanged.

An application can mark its own legacy factory the same way::

    from ctxmigrate.shim import deprecated

    @deprecated("use `await get_or_create_user_session(...)`; removed in 2.0")
    async def create_user_execution_context(user_id, thread_id, run_id=None): ...
"""

from __future__ import annotations

import functools
import inspect
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

import typing_extensions

__all__ = ["deprecated"]

_T = TypeVar("_T")

if TYPE_CHECKING:
    from typing_extensions import deprecated
else:

    class deprecated:
        def __init__(
            self,
            message: str,
            /,
            *,
            category: type[Warning] | None = DeprecationWarning,
            stacklevel: int = 1,
        ) -> None:
            if not isinstance(message, str):
                raise TypeError(f"expected the deprecation message as a str, got {message!r}")
            self.message = message
            self.category = category
            self.stacklevel = stacklevel

        def __call__(self, arg: _T, /) -> _T:
            if self.category is None or not inspect.iscoroutinefunction(arg):
                return typing_extensions.deprecated(
                    self.message, category=self.category, stacklevel=self.stacklevel
                )(arg)
            return _deprecated_coroutine_function(arg, self.message, self.category, self.stacklevel)


def _deprecated_coroutine_function(
    function: Any, message: str, category: type[Warning], stacklevel: int
) -> Any:
    async def warn_then_await(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(message, category=category, stacklevel=stacklevel + 1)
        return await function(*args, **kwargs)

    wrapper: Any = functools.wraps(function)(warn_then_await)
    function.__deprecated__ = wrapper.__deprecated__ = message
    return wrapper
