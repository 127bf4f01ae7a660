"""Conversation leases: one holder per conversation across every process sharing a store.

``manager.conversation(user_id, thread_id)`` is the unit of work of a message
handler. The store grants the caller a *lease* on the conversation: until the
block exits, no other holder (in this process or, with a shared store, in any
other) gets the conversation. A store that supports ``conversation()``
implements :class:`ConversationStore`:

==========================  ===============================================================
method                      meaning
==========================  ===============================================================
``acquire_conversation``    wait (first come, first served) until the conversation is
                            free, then take the lease and get or create the record, in one
                            atomic step; give up after ``terms.wait`` seconds with
                            :class:`~ctxmigrate.shim.errors.ConversationBusyError`
``renew_conversation``      push the lease's expiry forward; ``False`` if it was lost
``release_conversation``    optionally save ``conversation_state`` (compare-and-set on the
                            record's version, only while the token still holds the lease),
                            and release the lease, in one atomic step
==========================  ===============================================================

The token of a grant is its *fencing token*: a value unique to that grant. A
write is applied only if the token still holds the lease, checked in the same
atomic step as the write, so a holder that stalled past its lease's expiry
(a long GC pause, a frozen VM) can no longer write once someone else holds
the conversation: it gets :class:`~ctxmigrate.shim.errors.LeaseLostError`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ctxmigrate.shim.errors import ConversationBusyError

if TYPE_CHECKING:  # store.py imports this module
    from ctxmigrate.shim.store import CreateOutcome, SessionKey, SessionPolicy, SessionRecord


@dataclass(frozen=True, slots=True)
class LeaseTerms:
    """How long a lease lasts without renewal, and how long a caller waits for one.

    ``ttl``: seconds; a holder renews its lease every ``ttl / 3`` seconds while
    its block runs, so only a holder that stopped running loses it.
    ``wait``: seconds a caller waits for a busy conversation before
    :class:`~ctxmigrate.shim.errors.ConversationBusyError`.
    """

    ttl: float = 30.0
    wait: float = 10.0

    def __post_init__(self) -> None:
        if not self.ttl > 0:
            raise ValueError(f"conversation_lease_ttl must be positive, got {self.ttl!r}")
        if not self.wait >= 0:
            raise ValueError(f"conversation_wait must be zero or positive, got {self.wait!r}")


@dataclass(frozen=True, slots=True)
class LeaseGrant:
    """A granted lease: its fencing token and the conversation's record.

    ``expires``: whether the lease ends by itself unless renewed (a shared
    store); an in-process lease lasts until released.
    """

    token: str
    outcome: CreateOutcome
    expires: bool


@runtime_checkable
class ConversationStore(Protocol):
    """A store that can serve ``manager.conversation()`` (see the module docstring)."""

    async def acquire_conversation(
        self,
        candidate: SessionRecord,
        *,
        clock: Callable[[], float],
        policy: SessionPolicy,
        terms: LeaseTerms,
    ) -> LeaseGrant: ...

    async def renew_conversation(
        self, key: SessionKey, token: str, *, terms: LeaseTerms
    ) -> bool: ...

    async def release_conversation(
        self,
        key: SessionKey,
        token: str,
        state: dict[str, Any] | None,
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        """Release the lease, saving ``state`` first unless it is ``None``.

        Returns the saved record (``None`` when nothing was saved, or when the
        session ended meanwhile: then nothing is written). Raises
        :class:`~ctxmigrate.shim.errors.LeaseLostError` (nothing written, nothing
        released) if ``token`` no longer holds the lease, and
        :class:`~ctxmigrate.shim.errors.StateConflictError` (nothing written, the
        lease released) if the record's version is not ``expected_version``.
        """
        ...


def new_lease_token() -> str:
    return uuid.uuid4().hex


class _Hold:
    __slots__ = ("token", "waiters")

    def __init__(self, token: str) -> None:
        self.token = token
        self.waiters: deque[tuple[asyncio.Future[None], str]] = deque()


class FifoLeases:
    """Exclusive holds per key within one process, granted in arrival order.

    A release hands the hold straight to the longest waiter, so a newcomer can
    never overtake a waiter (no starvation). Nothing is kept for a key that is
    neither held nor waited for. No asyncio object exists until someone waits.
    """

    def __init__(self) -> None:
        self._holds: dict[Any, _Hold] = {}

    def __len__(self) -> int:
        """Number of keys held."""
        return len(self._holds)

    def holder(self, key: Any) -> str | None:
        hold = self._holds.get(key)
        return None if hold is None else hold.token

    def waiting(self, key: Any) -> int:
        hold = self._holds.get(key)
        return 0 if hold is None else len(hold.waiters)

    async def acquire(self, key: Any, wait: float) -> str:
        """Wait up to ``wait`` seconds for ``key``; the token of the hold."""
        token = new_lease_token()
        hold = self._holds.get(key)
        if hold is None:
            self._holds[key] = _Hold(token)
            return token
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (granted, token)
        hold.waiters.append(entry)
        try:
            async with asyncio.timeout(wait):
                await granted
        except BaseException as exc:
            if granted.done() and not granted.cancelled():
                # Handed over just as we gave up: pass it on rather than keep it.
                self.release(key, token)
            else:
                granted.cancel()
                if entry in hold.waiters:
                    hold.waiters.remove(entry)
            if isinstance(exc, TimeoutError):
                raise ConversationBusyError(
                    f"the conversation stayed busy for {wait:g} s (another message of it is "
                    "being handled); nothing was loaded or changed, try again"
                ) from None
            raise
        return token

    def release(self, key: Any, token: str) -> bool:
        """Release the hold of ``token`` (to the next waiter); whether it held ``key``."""
        hold = self._holds.get(key)
        if hold is None or hold.token != token:
            return False
        while hold.waiters:
            granted, waiter = hold.waiters.popleft()
            if granted.done():
                continue  # gave up meanwhile
            hold.token = waiter
            granted.set_result(None)
            return True
        del self._holds[key]
        return True
