"""UserSessionManager: one context per (user_id, thread_id) conversation."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import functools
import inspect
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, Self, cast, overload

from typing_extensions import TypeVar

from ctxmigrate.shim.context import UserExecutionContext
from ctxmigrate.shim.errors import (
    SessionEndedError,
    StateConflictError,
    SyncAccessError,
)
from ctxmigrate.shim.lease import ConversationStore, FifoLeases, LeaseGrant, LeaseTerms
from ctxmigrate.shim.metrics import LeakCheck, SessionStats
from ctxmigrate.shim.single_flight import SingleFlight
from ctxmigrate.shim.store import (
    CreateOutcome,
    InMemorySessionStore,
    Removal,
    RemovalReason,
    SessionKey,
    SessionPolicy,
    SessionRecord,
    SessionStore,
    SyncSessionStore,
)
from ctxmigrate.shim.validation import (
    new_run_id,
    new_thread_id,
    validate_id,
    validate_optional_id,
)

logger = logging.getLogger(__name__)

ContextT = TypeVar("ContextT", default=UserExecutionContext)
_ResultT = TypeVar("_ResultT")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

_MISSING: Any = object()

#: The conversations the current task holds through ``conversation()``, by
#: (manager id, key): inside the block, the manager answers for them without a
#: store call (the lease guarantees nobody else changed them).
_HELD: contextvars.ContextVar[dict[tuple[int, SessionKey], _Holding]] = contextvars.ContextVar(
    "ctxmigrate_held_conversations"
)


class _Holding:
    """A conversation held by a ``conversation()`` block; ``live`` is cleared on exit.

    Tasks started inside the block inherit the context variable and may outlive
    the block: the cleared entry keeps them from taking it as still held.
    """

    __slots__ = ("live",)

    def __init__(self, live: _LiveSession[Any]) -> None:
        self.live: _LiveSession[Any] | None = live


#: Every manager alive in the process, so that ``get_manager_for_context`` can
#: find the one owning a context without the context pointing back at it.
_MANAGERS: weakref.WeakSet[UserSessionManager[Any]] = weakref.WeakSet()


def managers_alive() -> list[UserSessionManager[Any]]:
    """The session managers alive in this process, in no particular order."""
    return list(_MANAGERS)


def _synchronous(result: _ResultT | Awaitable[_ResultT], error: Exception) -> _ResultT:
    """The result of a factory called from sync code; ``error`` if it returned an awaitable."""
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()  # never awaited: close it rather than leak a warning
        raise error
    return result


class _LiveSession(Generic[ContextT]):
    """This process's side of a session: the live context and what goes with it.

    ``epoch`` is the manager's sequence number of the store call that produced
    the record: a removal reported by a store call issued later applies to this
    entry, one issued earlier (whose reply arrived late) does not.
    """

    __slots__ = (
        "context",
        "epoch",
        "key",
        "last_seen",
        "run_id",
        "saved",
        "version",
        "websocket_manager",
    )

    def __init__(self, context: ContextT, record: SessionRecord, now: float, epoch: int) -> None:
        self.context = context
        self.key = record.key
        self.run_id = record.run_id
        self.version = record.version
        self.last_seen = now
        self.epoch = epoch
        self.websocket_manager: Any = None
        # A copy of conversation_state as of ``version`` (loaded or saved here):
        # what tells unsaved local changes apart, and what a rejected save or a
        # failed conversation() block puts back. None: the context has no state.
        state = getattr(context, "conversation_state", None)
        self.saved: dict[str, Any] | None = (
            copy.deepcopy(state) if isinstance(state, dict) else None
        )

    def state(self) -> dict[str, Any] | None:
        state = getattr(self.context, "conversation_state", None)
        return state if isinstance(state, dict) else None

    def has_unsaved_changes(self) -> bool:
        state = self.state()
        return state is not None and self.saved is not None and state != self.saved

    def load(self, record: SessionRecord) -> None:
        """Make the live state the record's (in place: handlers hold the dict)."""
        state = self.state()
        if state is not None and state is not record.conversation_state:
            state.clear()
            state.update(copy.deepcopy(record.conversation_state))
        self.version = record.version
        self.saved = copy.deepcopy(record.conversation_state)

    def roll_back(self) -> None:
        """Put back the state as of ``version``: nothing unsaved stays behind."""
        state = self.state()
        if state is not None and self.saved is not None and state != self.saved:
            state.clear()
            state.update(copy.deepcopy(self.saved))


class _Build:
    """A context being built: from the store call that gets the record to registration.

    ``removed`` is set, to the reason, when a later store call (an eviction,
    ``end_session``, a sweep) removes the record meanwhile: the context is then
    not registered, and the build counts the removal when it completes.
    """

    __slots__ = ("epoch", "recheck", "removed")

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.removed: RemovalReason | None = None
        # Set by an end_session of the key issued before this build's store call
        # and answered after it: the store may have served the two out of order.
        self.recheck = False


async def _settle(call: asyncio.Future[_ResultT]) -> _ResultT | None:
    """Wait for ``call`` to finish whatever cancellations arrive; its result, or ``None``.

    For store calls that have to be seen through once issued: their effects
    (a record created, others removed to make room) must be applied or undone.
    """
    while not call.done():
        try:
            await asyncio.wait((call,))
        except asyncio.CancelledError:
            continue
    if call.cancelled() or call.exception() is not None:
        return None
    return call.result()


async def _wait_out(task: asyncio.Future[Any]) -> bool:
    """Wait until ``task`` is done even if cancelled meanwhile; whether we were cancelled.

    For store calls that release a lease: abandoning one halfway would leave the
    conversation locked until the lease expires, and its outcome must still be
    applied. The caller raises the cancellation once it has done so.
    """
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    return cancelled


def _state_to_save(context: object) -> dict[str, Any]:
    state = getattr(context, "conversation_state", None)
    if not isinstance(state, dict):
        raise TypeError(
            f"{type(context).__name__} has no dict attribute 'conversation_state' to keep "
            "the conversation's state in, and does not accept one (__slots__?): add a "
            "'conversation_state' slot or attribute (a dict) to the class"
        )
    return state


class UserSessionManager(Generic[ContextT]):
    """Hands out one context per (user_id, thread_id) conversation while it lives.

    ``factory`` is the application's own (legacy) context factory, sync or async;
    it is called with ``user_id``, ``thread_id`` and ``run_id`` keywords (plus
    ``websocket_connection_id`` when one is given, plus any extra keyword
    arguments of the call that creates the session), so the application keeps
    its own context class. Without a factory, contexts are
    :class:`~ctxmigrate.shim.context.UserExecutionContext`.

    Lifecycle: a session expires ``idle_timeout`` seconds after its last
    activity, and every access counts as activity (sliding expiry). Expired
    sessions are removed when accessed, by :meth:`cleanup_inactive_sessions`,
    and by a background task that runs every ``cleanup_interval`` seconds while
    the manager is entered (``async with manager:``, e.g. in an ASGI lifespan).
    At a cap (``max_sessions`` in total, ``max_sessions_per_user``), creating a
    session first drops expired sessions, then evicts the least recently active
    session (of that user, for the per-user cap): creation never fails for
    capacity.

    ``clock`` returns epoch seconds and ``sleep`` waits between background
    sweeps; both are injectable so tests never sleep. Not thread-safe: use a
    manager from its event loop's thread (any number of event loops, one after
    another, is fine: nothing is bound to a loop while idle).
    """

    @overload
    def __init__(
        self: UserSessionManager[UserExecutionContext],
        *,
        factory: None = None,
        store: SessionStore | None = None,
        idle_timeout: float = ...,
        max_sessions: int | None = ...,
        max_sessions_per_user: int | None = ...,
        cleanup_interval: float | None = None,
        clock: Clock = ...,
        sleep: Sleep = ...,
        leak_check: LeakCheck | None = None,
        conversation_wait: float = ...,
        conversation_lease_ttl: float = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        factory: Callable[..., Awaitable[ContextT]],
        store: SessionStore | None = None,
        idle_timeout: float = ...,
        max_sessions: int | None = ...,
        max_sessions_per_user: int | None = ...,
        cleanup_interval: float | None = None,
        clock: Clock = ...,
        sleep: Sleep = ...,
        leak_check: LeakCheck | None = None,
        conversation_wait: float = ...,
        conversation_lease_ttl: float = ...,
    ) -> None: ...

    @overload
    def __init__(
        self,
        *,
        factory: Callable[..., ContextT],
        store: SessionStore | None = None,
        idle_timeout: float = ...,
        max_sessions: int | None = ...,
        max_sessions_per_user: int | None = ...,
        cleanup_interval: float | None = None,
        clock: Clock = ...,
        sleep: Sleep = ...,
        leak_check: LeakCheck | None = None,
        conversation_wait: float = ...,
        conversation_lease_ttl: float = ...,
    ) -> None: ...

    def __init__(
        self,
        *,
        factory: Callable[..., Any] | None = None,
        store: SessionStore | None = None,
        idle_timeout: float = 1800.0,
        max_sessions: int | None = 100_000,
        max_sessions_per_user: int | None = 100,
        cleanup_interval: float | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        leak_check: LeakCheck | None = None,
        conversation_wait: float = 10.0,
        conversation_lease_ttl: float = 30.0,
    ) -> None:
        self._lease_terms = LeaseTerms(ttl=conversation_lease_ttl, wait=conversation_wait)
        self._conversation_gates = FifoLeases()
        self._policy = SessionPolicy(idle_timeout, max_sessions, max_sessions_per_user)
        if cleanup_interval is not None and not cleanup_interval > 0:
            raise ValueError(f"cleanup_interval must be positive, got {cleanup_interval!r}")
        self._cleanup_interval = (
            min(idle_timeout / 2, 60.0) if cleanup_interval is None else cleanup_interval
        )
        self._factory = factory
        self._owns_store = store is None
        self._store: SessionStore = InMemorySessionStore() if store is None else store
        self._sync_store = self._store if isinstance(self._store, SyncSessionStore) else None
        self._clock = clock
        self._sleep = sleep
        self._leak_check = leak_check
        # Keyed by SessionKey; typed as the plain pair so the hit path can look up
        # (user_id, thread_id) without building a SessionKey (equal hash and eq).
        self._live: dict[tuple[str, str], _LiveSession[ContextT]] = {}
        self._creations: SingleFlight[SessionKey, ContextT | None] = SingleFlight()
        # Creations between their store call and registration, by key (at most one
        # per key: they run inside the single-flight).
        self._building: dict[SessionKey, _Build] = {}
        # Sequence number of store calls that create, confirm or remove records.
        self._epoch = 0
        self._cleanup_task: asyncio.Task[None] | None = None
        self._created = 0
        self._reused = 0
        self._expired = 0
        self._ended = 0
        self._failed_creations = 0
        self._websocket_managers = 0
        self._evicted = {RemovalReason.CAPACITY.value: 0, RemovalReason.USER_CAPACITY.value: 0}
        _MANAGERS.add(self)

    @property
    def policy(self) -> SessionPolicy:
        return self._policy

    @property
    def store(self) -> SessionStore:
        return self._store

    @property
    def factory(self) -> Callable[..., Any] | None:
        """The application's context factory; ``None``: contexts are ``UserExecutionContext``."""
        return self._factory

    # -- getting a session ---------------------------------------------------------

    async def get_or_create_user_session(
        self,
        user_id: str,
        thread_id: str | None = None,
        *,
        run_id: str | None = None,
        websocket_connection_id: str | None = None,
        **factory_kwargs: Any,
    ) -> ContextT:
        """Return the conversation's context, creating it on the first call.

        The same (user_id, thread_id) gives the same object while the session
        lives; ``thread_id=None`` starts a new conversation with a generated
        thread id. ``run_id``, ``websocket_connection_id`` and ``factory_kwargs``
        are used only when the session is created: an existing session keeps its
        run_id. Concurrent first calls create exactly one context.
        """
        # Hit path, measured in benchmarks/bench_sessions.py. Ids that equal a live
        # key were validated when the session was created; only plain str qualify
        # (a str subclass could override __eq__ and match someone else's key).
        if type(user_id) is str and type(thread_id) is str:
            live = self._live.get((user_id, thread_id))
            if live is not None:
                held = _HELD.get(None)
                if held is not None:
                    held_context = live.context
                    holding = held.get((id(self), live.key))
                    if holding is not None and holding.live is live:
                        # Inside this task's conversation() block: the lease holds
                        # the record, so the context is current without a store call.
                        return held_context
                if run_id is not None:
                    validate_id(run_id, "run_id")
                if websocket_connection_id is not None:
                    validate_id(websocket_connection_id, "websocket_connection_id")
                now = self._clock()
                sync_store = self._sync_store
                if sync_store is not None:
                    # The in-memory store answers at once: skip a coroutine per message.
                    record = sync_store.touch_now(live.key, now=now, policy=self._policy)
                    if self._confirm(live, record, now):
                        self._reused += 1
                        return live.context
                else:
                    record = await self._store.touch(live.key, now=now, policy=self._policy)
                    # During the await another caller may have dropped or replaced the
                    # entry: only the entry still live may be confirmed (or dropped).
                    if self._live.get(live.key) is live and self._confirm(live, record, now):
                        self._reused += 1
                        return live.context
        key, run_id, websocket_connection_id = self._validated(
            user_id, thread_id, run_id, websocket_connection_id
        )
        # Ids that are str subclasses (normalised by validation) arrive here with a
        # live session, and so does a caller whose entry was replaced meanwhile.
        live = self._live.get(key)
        if live is not None:
            context = await self._reuse(live)
            if context is not None:
                self._reused += 1
                return context
        work = functools.partial(
            self._materialize, key, True, run_id, websocket_connection_id, factory_kwargs
        )
        while True:
            context = await self._creations.run(key, work)
            if context is not None:
                return context
            # We joined a lookup that found nothing; now create.

    def get_or_create_user_session_sync(
        self,
        user_id: str,
        thread_id: str | None = None,
        *,
        run_id: str | None = None,
        websocket_connection_id: str | None = None,
        **factory_kwargs: Any,
    ) -> ContextT:
        """The same as :meth:`get_or_create_user_session`, for synchronous callers.

        Possible only with a store that answers without awaiting (the in-memory
        store) and a synchronous factory: a sync function cannot wait for I/O or
        for another caller's creation, so those cases raise
        :class:`~ctxmigrate.shim.errors.SyncAccessError` instead of blocking the
        event loop.
        """
        store = self._sync_store
        if store is None:
            raise SyncAccessError(
                f"{type(self._store).__name__} is async-only: "
                "await get_or_create_user_session(...) instead"
            )
        key, run_id, websocket_connection_id = self._validated(
            user_id, thread_id, run_id, websocket_connection_id
        )
        if key in self._creations:
            raise SyncAccessError(
                "this session is being created by async code right now; a synchronous "
                "caller cannot wait for it: await get_or_create_user_session(...) instead"
            )
        now = self._clock()
        live = self._live.get(key)
        if live is not None and self._confirm(
            live, store.touch_now(key, now=now, policy=self._policy), now
        ):
            self._reused += 1
            return live.context
        epoch = self._next_epoch()
        outcome = store.get_or_create_now(
            self._candidate(key, run_id, websocket_connection_id, now), now=now, policy=self._policy
        )
        self._apply_removals(outcome.removed, epoch)
        try:
            built = _synchronous(
                self._call_factory(outcome.record, factory_kwargs),
                SyncAccessError(
                    "the session factory is async, so a synchronous caller cannot create a "
                    "session: await get_or_create_user_session(...) instead"
                ),
            )
        except BaseException:
            self._failed_creations += 1
            if outcome.created:
                store.delete_now(key)
            raise
        return self._register(key, outcome.record, built, now, epoch, created=outcome.created)

    async def get_session(self, user_id: str, thread_id: str) -> ContextT | None:
        """Lookup only: the live context of the conversation, or ``None``. Never creates.

        A lookup is an access: it refreshes the idle timer.
        """
        key, _, _ = self._validated(user_id, thread_id, None, None)
        live = self._live.get(key)
        if live is not None:
            context = await self._reuse(live)
            if context is not None:
                return context
        # A shared store may hold a record that this process has no context for
        # (yet, or any more: re-created elsewhere): build the context for it, but
        # never create a record.
        work = functools.partial(self._materialize, key, False, None, None, {})
        context = await self._creations.run(key, work)
        if context is None:
            return None
        # A lookup may join a creation whose record was removed while its factory
        # ran: its callers get the context, but a lookup returns live sessions only.
        live = self._live.get(key)
        return context if live is not None and live.context is context else None

    def create_detached_context(
        self,
        user_id: str,
        thread_id: str | None = None,
        *,
        run_id: str | None = None,
        websocket_connection_id: str | None = None,
        **factory_kwargs: Any,
    ) -> ContextT:
        """Build a fresh context with this manager's factory, outside any session.

        This is the legacy behaviour (a new context per call), kept for the
        deprecated drop-in's "observe" mode. The factory must be synchronous.
        """
        key, run_id, websocket_connection_id = self._validated(
            user_id, thread_id, run_id, websocket_connection_id
        )
        now = self._clock()
        return _synchronous(
            self._call_factory(
                self._candidate(key, run_id, websocket_connection_id, now), factory_kwargs
            ),
            SyncAccessError("the session factory is async; a synchronous caller cannot use it"),
        )

    # -- ending sessions and state ---------------------------------------------------

    async def end_session(self, user_id: str, thread_id: str) -> bool:
        """End the conversation's session; return whether there was one.

        Its context is dropped here and its record deleted from the store; a later
        ``save_conversation_state`` of the old context raises
        :class:`~ctxmigrate.shim.errors.SessionEndedError` and writes nothing.
        """
        key, _, _ = self._validated(user_id, thread_id, None, None)
        epoch = self._next_epoch()
        existed = await self._store.delete(key)
        # Counted only if this call drops the live context: a call that saw the
        # record gone before this reply arrived dropped (and counted) it already.
        dropped = self._remove_older(key, epoch, RemovalReason.ENDED)
        if dropped:
            self._ended += 1
        # A store may serve calls out of order (a pool connection, a script
        # reloaded and retried): a call for this key issued while the delete was
        # outstanding may have been served before it, and its context (newer by
        # epoch, so kept above) may stand for the deleted record. Check it again
        # with a touch issued now, which the store serves after the delete.
        build = self._building.get(key)
        if build is not None and build.epoch > epoch:
            build.recheck = True
        live = self._live.get(key)
        if live is not None and live.epoch > epoch:
            await self._reuse(live)
        return existed or dropped

    async def save_conversation_state(self, context: ContextT) -> None:
        """Save ``context.conversation_state`` to the store (compare-and-set by version).

        Raises :class:`~ctxmigrate.shim.errors.SessionEndedError` if the session
        ended or expired (nothing is written, the session is not re-created), and
        :class:`~ctxmigrate.shim.errors.StateConflictError` if another writer saved
        since this process loaded the session. A rejected save leaves nothing
        behind: the store is unchanged and the live ``conversation_state`` is put
        back to the state as of the version it was loaded or last saved at (the
        next access loads the newer state); the rejected state is on the error as
        ``unsaved_state``. See docs/shim.md, "Conversation state".
        """
        key, live = self._live_entry_of(context)
        if live is None:
            raise SessionEndedError(
                "this context is not a live session of this manager (ended, expired, "
                "evicted or never created here): its state was not saved"
            )
        state = _state_to_save(context)
        now = self._clock()
        # What this save stores: handlers may change the live state during the await.
        sent = copy.deepcopy(state)
        try:
            record = await self._store.save_state(
                key, state, expected_version=live.version, now=now, policy=self._policy
            )
        except StateConflictError as exc:
            exc.unsaved_state = copy.deepcopy(state)
            if self._live.get(key) is live:
                live.roll_back()
            raise
        except BaseException:
            # Unknown whether the store applied it (a lost reply): the version is
            # unknown too, so the next access reloads instead of trusting it.
            if self._live.get(key) is live:
                live.roll_back()
                live.version = -1
            raise
        if record is None:
            # Drop the entry checked above, not one that replaced it during the await.
            self._discard(live, now)
            raise SessionEndedError("the session expired or ended: its state was not saved")
        if self._live.get(key) is live:
            live.version = record.version
            live.saved = sent
            live.last_seen = now

    async def reload_conversation_state(self, context: ContextT) -> bool:
        """Discard unsaved changes of ``context.conversation_state``: load the stored state.

        The explicit way out after a reload was refused because of unsaved local
        changes (see :meth:`save_conversation_state`). Returns whether the
        session is live (a gone session is dropped, as by :meth:`touch_session`).
        """
        _, live = self._live_entry_of(context)
        if live is None:
            return False
        live.roll_back()
        live.version = -1  # whatever the store holds now differs: load it
        return await self._reuse(live) is not None

    @contextlib.asynccontextmanager
    async def conversation(
        self,
        user_id: str,
        thread_id: str | None,
        *,
        run_id: str | None = None,
        websocket_connection_id: str | None = None,
        **factory_kwargs: Any,
    ) -> AsyncIterator[ContextT]:
        """Handle one message of a conversation with the conversation to yourself.

        ``async with manager.conversation(user_id, thread_id) as context:`` gets or
        creates the session (arguments as for :meth:`get_or_create_user_session`)
        and holds the conversation's lease until the block exits: no other
        ``conversation()`` of the same (user_id, thread_id), in this process or in
        any process sharing the store, runs meanwhile. Callers wait in arrival
        order, up to ``conversation_wait`` seconds, then get
        :class:`~ctxmigrate.shim.errors.ConversationBusyError`. Different
        conversations never wait for each other.

        On normal exit a changed ``conversation_state`` is saved (compare-and-set
        on its version, only while the lease is still held) and the lease is
        released, in one store call. On an exception nothing is saved and the
        live ``conversation_state`` is put back to the stored state. A holder
        whose lease expired meanwhile (a shared store renews it every
        ``conversation_lease_ttl / 3`` seconds while the block runs, so only a
        stalled process loses it) writes nothing and gets
        :class:`~ctxmigrate.shim.errors.LeaseLostError`.

        Inside the block, :meth:`get_or_create_user_session` (and so
        ``session_websocket_context``) for the same conversation returns the
        held context without a store call. The block is not re-entrant.
        """
        store = self._store
        if not isinstance(store, ConversationStore):
            raise TypeError(
                f"{type(store).__name__} does not support conversation(): it needs the "
                "acquire_conversation/renew_conversation/release_conversation methods of "
                "ctxmigrate.shim.lease.ConversationStore"
            )
        key, run_id, websocket_connection_id = self._validated(
            user_id, thread_id, run_id, websocket_connection_id
        )
        held = _HELD.get(None) or {}
        holding = held.get((id(self), key))
        if holding is not None and holding.live is not None:
            raise RuntimeError(
                "conversation() is not re-entrant: this task already holds this conversation "
                "(use the context of the enclosing block)"
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._lease_terms.wait
        # One holder per conversation in this process first: the next message
        # here must not take the store's lease before this one has applied its
        # release's outcome to the live context they share.
        local = await self._conversation_gates.acquire(key, self._lease_terms.wait)
        try:
            terms = LeaseTerms(ttl=self._lease_terms.ttl, wait=max(0.0, deadline - loop.time()))
            epoch = self._next_epoch()
            grant = await store.acquire_conversation(
                self._candidate(key, run_id, websocket_connection_id, self._clock()),
                clock=self._clock,
                policy=self._policy,
                terms=terms,
            )
            try:
                self._apply_removals(grant.outcome.removed, epoch)
                live = await self._hold(key, grant, epoch, factory_kwargs)
            except BaseException:
                await _settle(asyncio.ensure_future(self._release_quietly(store, key, grant.token)))
                raise
            renewal = (
                asyncio.get_running_loop().create_task(self._renew(store, key, grant.token))
                if grant.expires
                else None
            )
            holding = _Holding(live)
            held_token = _HELD.set({**held, (id(self), key): holding})
            try:
                try:
                    yield live.context
                except BaseException:
                    live.roll_back()
                    release = self._release_quietly(store, key, grant.token)
                    await _wait_out(asyncio.ensure_future(release))
                    raise
                await self._save_and_release(store, live, grant)
            finally:
                holding.live = None
                _HELD.reset(held_token)
                if renewal is not None:
                    renewal.cancel()
                    await asyncio.wait((renewal,))
        finally:
            self._conversation_gates.release(key, local)

    async def _hold(
        self, key: SessionKey, grant: LeaseGrant, epoch: int, factory_kwargs: dict[str, Any]
    ) -> _LiveSession[ContextT]:
        """The live entry for the conversation just leased, loaded with its stored state."""
        record = grant.outcome.record
        now = self._clock()
        live = self._live.get(key)
        if live is not None and live.run_id != record.run_id:
            self._discard(live, now)  # a newer session under the key
            live = None
        if live is None:
            work = functools.partial(
                self._materialize, key, True, None, None, factory_kwargs, grant
            )
            context = await self._creations.run(key, work)
            live = self._live.get(key)
            if live is None or live.context is not context:
                raise SessionEndedError(
                    "the session was ended or evicted while its context was being built"
                )
        elif not grant.outcome.created:
            self._reused += 1
        state = _state_to_save(live.context)
        if state is not record.conversation_state and live.has_unsaved_changes():
            raise StateConflictError(
                "this process's live conversation_state has unsaved changes made outside "
                "conversation(): save them (await manager.save_conversation_state(context)) "
                "or discard them (await manager.reload_conversation_state(context)) first"
            )
        live.load(record)
        live.last_seen = now
        self._refresh_activity(live, now)
        return live

    async def _save_and_release(
        self, store: ConversationStore, live: _LiveSession[ContextT], grant: LeaseGrant
    ) -> None:
        state = _state_to_save(live.context)
        changed = state != live.saved
        sent = copy.deepcopy(state) if changed else None
        now = self._clock()
        call = asyncio.ensure_future(
            store.release_conversation(
                live.key,
                grant.token,
                state if changed else None,
                expected_version=live.version,
                now=now,
                policy=self._policy,
            )
        )
        cancelled = await _wait_out(call)
        try:
            record = call.result()
        except StateConflictError as exc:
            exc.unsaved_state = sent
            live.roll_back()
            raise
        except BaseException:
            # Lost lease (another holder may have saved), an unreachable store (the
            # write may have happened before the reply was lost), a state that
            # is not JSON: nothing known saved; reload on the next access.
            live.roll_back()
            live.version = -1
            raise
        if sent is not None:
            if record is None:
                live.roll_back()
                self._discard(live, now)
                raise SessionEndedError("the session expired or ended: its state was not saved")
            if self._live.get(live.key) is live:
                live.version = record.version
                live.saved = sent
                live.last_seen = now
        if cancelled:
            # Saved and released; the caller asked to be cancelled meanwhile.
            raise asyncio.CancelledError

    async def _release_quietly(self, store: ConversationStore, key: SessionKey, token: str) -> None:
        """Release without saving; a failure is logged (the lease then expires by itself)."""
        try:
            await store.release_conversation(
                key, token, None, expected_version=-1, now=self._clock(), policy=self._policy
            )
        except Exception:
            logger.warning("could not release the lease of %r; it expires by itself", key)

    async def _renew(self, store: ConversationStore, key: SessionKey, token: str) -> None:
        interval = self._lease_terms.ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                if not await store.renew_conversation(key, token, terms=self._lease_terms):
                    logger.warning("the lease of %r was lost; its changes will not be saved", key)
                    return
            except Exception:
                logger.warning("could not renew the lease of %r; retrying", key, exc_info=True)

    async def cleanup_inactive_sessions(self) -> list[SessionKey]:
        """Remove sessions idle for ``idle_timeout`` seconds or more; return their keys."""
        now = self._clock()
        idle_timeout = self._policy.idle_timeout
        # A shared store expires records by itself and may not report them; the
        # contexts this process holds go by the same rule. They are chosen before
        # the store call: a session used or re-created meanwhile is not idle.
        idle_here = {
            live.key: live for live in self._live.values() if now - live.last_seen >= idle_timeout
        }
        epoch = self._next_epoch()
        swept = await self._store.sweep_expired(now=now, policy=self._policy)
        # Every removed key is returned; only the contexts this call drops are
        # counted (a build marked here counts its removal when it completes).
        removed: dict[SessionKey, None] = {}
        dropped = 0
        for key in swept:
            removed[key] = None
            seen = idle_here.pop(key, None)
            build = self._building.get(key)
            if build is not None and build.epoch < epoch and build.removed is None:
                build.removed = RemovalReason.EXPIRED
            live = self._live.get(key)
            if seen is not None:
                if live is seen:
                    self._drop(seen)
                    dropped += 1
                # Otherwise another caller dropped it meanwhile, and counted it.
            elif live is not None and live.epoch < epoch:
                self._drop(live)
                dropped += 1
            # Else a record this process held no context for (or an older record
            # of a session re-created here meanwhile): nothing of ours to count.
        for key, seen in idle_here.items():
            if self._live.get(key) is seen and now - seen.last_seen >= idle_timeout:
                self._drop(seen)
                removed[key] = None
                dropped += 1
        self._expired += dropped
        return list(removed)

    # -- websocket managers ----------------------------------------------------------

    def owns(self, context: object) -> bool:
        """Whether ``context`` is the live context of one of this manager's sessions."""
        return self._live_entry_of(context)[1] is not None

    def mark_active(self, context: object) -> bool:
        """Count activity on ``context``'s session from synchronous code; whether it is live.

        With a store that answers without awaiting (the in-memory store) this is a
        full access, like :meth:`get_session`: the idle timer and the stored
        record are refreshed (and a session found gone is dropped). An async-only
        store (Redis) cannot be reached from sync code: only this process's idle
        timer is refreshed, and the record expires unless an awaited call
        (:meth:`touch_session`, or any get/save) refreshes it.
        """
        _, live = self._live_entry_of(context)
        if live is None:
            return False
        now = self._clock()
        sync_store = self._sync_store
        if sync_store is not None:
            return self._confirm(
                live, sync_store.touch_now(live.key, now=now, policy=self._policy), now
            )
        live.last_seen = now
        shim_context: Any = live.context
        if type(shim_context) is UserExecutionContext:
            shim_context.update_activity(now)
        return True

    async def touch_session(self, context: object) -> bool:
        """Refresh ``context``'s session (idle timer and stored record); whether it is live."""
        _, live = self._live_entry_of(context)
        return live is not None and await self._reuse(live) is not None

    def websocket_manager_for(self, context: ContextT, factory: Callable[[ContextT], Any]) -> Any:
        """The session's websocket manager, built with ``factory(context)`` on first use.

        The manager is dropped with the session (end, expiry, eviction).
        """
        _, live = self._live_entry_of(context)
        if live is None:
            raise SessionEndedError("this context is not a live session of this manager")
        if live.websocket_manager is None:
            websocket_manager = _synchronous(
                factory(context),
                TypeError(
                    "the websocket manager factory must be synchronous "
                    "(get_manager_for_context replaces a synchronous call)"
                ),
            )
            live.websocket_manager = websocket_manager
            self._websocket_managers += 1
        return live.websocket_manager

    # -- monitoring --------------------------------------------------------------------

    def stats(self) -> SessionStats:
        return SessionStats(
            active=len(self._live),
            created=self._created,
            reused=self._reused,
            expired=self._expired,
            ended=self._ended,
            evicted=dict(self._evicted),
            failed_creations=self._failed_creations,
            in_flight=len(self._creations),
            websocket_managers=self._websocket_managers,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._cleanup_task is not None and not self._cleanup_task.done():
            raise RuntimeError("this UserSessionManager is already entered")
        self._cleanup_task = asyncio.get_running_loop().create_task(
            self._cleanup_periodically(), name="ctxmigrate-session-cleanup"
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the background cleanup, abandon pending creations, drop live sessions.

        The store is closed only if this manager created it (the default
        in-memory store); a store passed in belongs to the caller. The manager can
        be entered again afterwards.
        """
        task, self._cleanup_task = self._cleanup_task, None
        if task is not None:
            task.cancel()
            await asyncio.wait((task,))
        await self._creations.cancel_all()
        for live in list(self._live.values()):
            self._drop(live)
        if self._owns_store:
            await self._store.aclose()

    async def _cleanup_periodically(self) -> None:
        while True:
            await self._sleep(self._cleanup_interval)
            try:
                await self.cleanup_inactive_sessions()
            except Exception:
                # A failing store must not kill the sweeper for good.
                logger.exception("session cleanup failed; retrying at the next interval")

    # -- internals ---------------------------------------------------------------------

    def _validated(
        self,
        user_id: object,
        thread_id: object,
        run_id: object,
        websocket_connection_id: object,
    ) -> tuple[SessionKey, str | None, str | None]:
        # Everything is validated before anything changes, so a rejected call
        # leaves the store and the counters as they were.
        user_id = validate_id(user_id, "user_id")
        thread_id = new_thread_id() if thread_id is None else validate_id(thread_id, "thread_id")
        return (
            SessionKey(user_id, thread_id),
            validate_optional_id(run_id, "run_id"),
            validate_optional_id(websocket_connection_id, "websocket_connection_id"),
        )

    def _candidate(
        self, key: SessionKey, run_id: str | None, websocket_connection_id: str | None, now: float
    ) -> SessionRecord:
        return SessionRecord(
            key, new_run_id() if run_id is None else run_id, websocket_connection_id, now, now
        )

    def _confirm(
        self,
        live: _LiveSession[ContextT],
        record: SessionRecord | None,
        now: float,
    ) -> bool:
        """Whether the live context still stands for the stored session (refreshing it if so)."""
        if record is not None and record.run_id == live.run_id:
            live.last_seen = now
            if record.version != live.version and not live.has_unsaved_changes():
                # Another writer saved this conversation's state since we loaded
                # it: continue from the saved state. Unsaved local changes are
                # never overwritten: the entry then keeps its version, so the
                # save that follows raises StateConflictError instead of
                # silently replacing the other writer's state.
                live.load(record)
            self._refresh_activity(live, now)
            return True
        # The store no longer has this session (or has a newer one under the same
        # key, created by another process): the live object is stale.
        self._discard(live, now)
        return False

    @staticmethod
    def _refresh_activity(live: _LiveSession[ContextT], now: float) -> None:
        context: Any = live.context
        if type(context) is UserExecutionContext:
            context.update_activity(now)
        else:
            update_activity = getattr(context, "update_activity", None)
            if callable(update_activity):
                update_activity()

    def _discard(self, live: _LiveSession[ContextT], now: float) -> None:
        """Drop a stale entry, if it is still the live one, and count why it went.

        Callers checked ``live`` before awaiting the store; meanwhile another
        caller may have dropped it (and counted it) or registered a new session
        for the key, which must stay.
        """
        if self._live.get(live.key) is not live:
            return
        self._drop(live)
        if now - live.last_seen >= self._policy.idle_timeout:
            self._expired += 1
        else:
            self._ended += 1

    async def _reuse(self, live: _LiveSession[ContextT]) -> ContextT | None:
        """Confirm ``live`` with the store and refresh it; its context, or ``None`` if stale."""
        now = self._clock()
        sync_store = self._sync_store
        if sync_store is not None:
            record = sync_store.touch_now(live.key, now=now, policy=self._policy)
        else:
            record = await self._store.touch(live.key, now=now, policy=self._policy)
            if self._live.get(live.key) is not live:
                return None
        return live.context if self._confirm(live, record, now) else None

    async def _materialize(
        self,
        key: SessionKey,
        create: bool,
        run_id: str | None,
        websocket_connection_id: str | None,
        factory_kwargs: dict[str, Any],
        grant: LeaseGrant | None = None,
    ) -> ContextT | None:
        """Single-flight body: get (or get or create) the record, then build its context.

        With ``grant`` (``conversation()``), the record comes from the lease's
        acquisition, which already got or created it: no store call here.
        """
        now = self._clock()
        epoch = self._next_epoch()
        # Registered before the store call: a removal issued from here on (an
        # eviction by a concurrent creation, end_session, a sweep) marks it.
        build = self._building[key] = _Build(epoch)
        try:
            if grant is not None:
                record, created = grant.outcome.record, grant.outcome.created
            elif create:
                outcome = await self._create_record(
                    self._candidate(key, run_id, websocket_connection_id, now), now, epoch, build
                )
                self._apply_removals(outcome.removed, epoch)
                record, created = outcome.record, outcome.created
            else:
                found = await self._store.touch(key, now=now, policy=self._policy)
                if found is None:
                    return None
                record, created = found, False
            live = self._live.get(key)
            if live is not None:
                if live.run_id == record.run_id and self._confirm(live, record, now):
                    # Live already (a str-subclass id, a synchronous caller, a
                    # caller whose entry was replaced): the one object, refreshed.
                    if create:
                        self._reused += 1
                    return live.context
                # A newer record under the key (re-created by another process).
                self._discard(live, now)
            try:
                built = self._call_factory(record, factory_kwargs)
                context = await built if inspect.isawaitable(built) else built
            except BaseException:
                self._failed_creations += 1
                if created and build.removed is None:
                    # Not cached: a failed or abandoned creation leaves no record
                    # behind (seen through even if cancelled again meanwhile).
                    await _settle(asyncio.ensure_future(self._store.delete(key)))
                raise
        finally:
            if self._building.get(key) is build:
                del self._building[key]
        if build.removed is not None:
            # The record was evicted, ended or swept while the factory ran. This
            # call's callers get the context they asked for, as if it had been
            # removed right after; no live entry is kept for a record that no
            # longer exists, so the caps bound the live contexts.
            if created:
                self._created += 1
                self._count_removal(build.removed)
            if self._leak_check is not None:
                self._leak_check.watch(context, f"context of {key!r}")
            return context if create else None
        self._register(key, record, context, now, epoch, created=created)
        if build.recheck:
            live = self._live.get(key)
            if live is not None and live.context is context:
                # Callers get the context either way (as after build.removed);
                # a lookup returns it only if it is still live.
                await self._reuse(live)
        return context

    async def _create_record(
        self, candidate: SessionRecord, now: float, epoch: int, build: _Build
    ) -> CreateOutcome:
        """The store's ``get_or_create``, seen through even if the creation is abandoned.

        Once issued, the store may have created the record and removed others to
        make room. If the creation is cancelled meanwhile (its last caller left,
        or shutdown), the call still runs to its end: its removals are applied,
        the record it created is deleted, and the attempt counts as failed.
        """
        call = asyncio.ensure_future(
            self._store.get_or_create(candidate, now=now, policy=self._policy)
        )
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            self._failed_creations += 1
            outcome = await _settle(call)
            if outcome is not None:
                self._apply_removals(outcome.removed, epoch)
                if outcome.created and build.removed is None:
                    await _settle(asyncio.ensure_future(self._store.delete(candidate.key)))
            raise

    def _call_factory(
        self, record: SessionRecord, factory_kwargs: dict[str, Any]
    ) -> ContextT | Awaitable[ContextT]:
        factory = self._factory
        if factory is None:
            if factory_kwargs:
                raise TypeError(
                    f"UserExecutionContext takes no extra arguments "
                    f"({', '.join(sorted(factory_kwargs))}); give UserSessionManager a "
                    "factory= that accepts them"
                )
            return cast(
                ContextT,
                UserExecutionContext(
                    record.user_id,
                    record.thread_id,
                    record.run_id,
                    record.websocket_connection_id,
                    conversation_state=record.conversation_state,
                    created_at=record.created_at,
                    last_activity=record.last_activity,
                ),
            )
        ids: dict[str, Any] = {
            "user_id": record.user_id,
            "thread_id": record.thread_id,
            "run_id": record.run_id,
        }
        if record.websocket_connection_id is not None:
            ids["websocket_connection_id"] = record.websocket_connection_id
        return cast("ContextT | Awaitable[ContextT]", factory(**ids, **factory_kwargs))

    def _register(
        self,
        key: SessionKey,
        record: SessionRecord,
        context: ContextT,
        now: float,
        epoch: int,
        *,
        created: bool,
    ) -> ContextT:
        state = getattr(context, "conversation_state", _MISSING)
        if state is _MISSING:
            # An application class without the attribute: the state is kept on
            # the context all the same (docs/shim.md). A class that refuses new
            # attributes gets a clear error when its state is needed.
            with contextlib.suppress(AttributeError, TypeError):
                context.conversation_state = record.conversation_state  # type: ignore[attr-defined]
        elif (
            record.conversation_state
            and isinstance(state, dict)
            and state is not record.conversation_state
        ):
            # An application context rebuilt from a shared record starts from the
            # saved conversation state.
            state.update(copy.deepcopy(record.conversation_state))
        self._live[key] = _LiveSession(context, record, now, epoch)
        if created:
            self._created += 1
        else:
            self._reused += 1
        return context

    def _apply_removals(self, removed: tuple[Removal, ...], epoch: int) -> None:
        """Apply the removals reported by the store call numbered ``epoch``.

        Each is counted only if this drops a live context: one dropped already by
        a call that saw the record gone first was counted there, a build in
        flight counts it when it completes, and a record this process held no
        context for (another process's) is not one of this process's sessions.
        """
        for key, reason in removed:
            if self._remove_older(key, epoch, reason):
                self._count_removal(reason)

    def _count_removal(self, reason: RemovalReason) -> None:
        if reason is RemovalReason.EXPIRED:
            self._expired += 1
        elif reason is RemovalReason.ENDED:
            self._ended += 1
        else:
            self._evicted[reason.value] += 1

    def _next_epoch(self) -> int:
        self._epoch += 1
        return self._epoch

    def _remove_older(self, key: SessionKey, epoch: int, reason: RemovalReason) -> bool:
        """The store call numbered ``epoch`` removed the record of ``key``.

        Drop the live entry, and mark a creation in flight, if their record came
        from an earlier store call; one from a later call stands for a newer
        record (the reply of the removing call arrived late). Return whether a
        live entry was dropped.
        """
        build = self._building.get(key)
        if build is not None and build.epoch < epoch and build.removed is None:
            build.removed = reason
        live = self._live.get(key)
        if live is None or live.epoch >= epoch:
            return False
        self._drop(live)
        return True

    def _drop(self, live: _LiveSession[ContextT]) -> None:
        """Remove ``live``, which the caller checked is the key's current entry."""
        key = live.key
        del self._live[key]
        if live.websocket_manager is not None:
            self._websocket_managers -= 1
            if self._leak_check is not None:
                self._leak_check.watch(live.websocket_manager, f"websocket manager of {key!r}")
        if self._leak_check is not None:
            self._leak_check.watch(live.context, f"context of {key!r}")

    def _live_entry_of(self, context: object) -> tuple[SessionKey, _LiveSession[ContextT] | None]:
        user_id = getattr(context, "user_id", None)
        thread_id = getattr(context, "thread_id", None)
        if not isinstance(user_id, str) or not isinstance(thread_id, str):
            return SessionKey("", ""), None
        key = SessionKey(user_id, thread_id)
        live = self._live.get(key)
        if live is None or live.context is not context:
            return key, None
        return key, live
