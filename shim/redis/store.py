"""Redis session store: one session record per conversation, shared by processes and hosts.

The in-memory store keeps sessions inside one process; behind a load balancer a
conversation's messages land on different workers, and each worker would start
its own "session" (the original bug again). :class:`RedisSessionStore`
implements :class:`~ctxmigrate.shim.store.SessionStore` with the record in
Redis, so every worker agrees on one record and one run_id per
(user_id, thread_id); the manager of each process still keeps its live context
objects locally.

Install with ``pip install 'ctxmigrate[redis]'``. Only this package imports
redis: ``import ctxmigrate.shim`` never does. The package: :mod:`.keys` (key
scheme), :mod:`.codec` (record JSON), :mod:`.scripts` (Lua), :mod:`.store`.

How each guarantee is enforced (docs/redis.md says it for users):

- JSON only, never pickle: a record read back from a shared server must not be
  able to execute code. A value that does not decode, decodes to the wrong
  shape, or names other ids than its key, is treated as missing and logged as
  the security event ``ctxmigrate.session_record_rejected``.
- Keys cannot collide: each id is percent-encoded (``quote(id, safe="")``),
  which is injective and never emits ``:``, so a user id containing the
  separator cannot forge another user's key.
- Every operation is one Lua script, which Redis runs atomically: two workers
  racing on the first message of a conversation end with one record and one
  run_id, and no interleaving can exceed a cap or lose a state update.
- Every write sets an expiry (``PX``) in the same command; updates use ``XX``
  so an ended or expired session is never brought back by a late save.
- ``conversation_state`` saves are compare-and-set on the record's ``version``.
- Faults: a connection error or timeout raises
  :class:`SessionStoreUnavailableError` naming the server; there is no silent
  fallback to a process-local store (two workers would then hold two sessions
  for one conversation: a split brain). The pool reconnects by itself once
  Redis is back.

Record layout
=============

A record is one JSON object whose first three members are always, in this
order, ``schema``, ``version`` and ``last_activity``, and whose last member is
``conversation_state``::

    {"schema":1,"version":3,"last_activity":1700000001.5,"user_id":"alice",
     "thread_id":"t-1","run_id":"run_...","websocket_connection_id":null,
     "created_at":1700000000.25,"conversation_state":{...}}

The scripts rely on that layout to refresh ``last_activity`` and to replace
``conversation_state`` with plain string splicing, never decoding JSON inside
Redis (Lua's cjson would turn ``[]`` into ``{}`` and round large integers).
The splice point ``,"conversation_state":`` cannot occur inside an earlier
member: those are ids (JSON strings, where every ``"`` is escaped), numbers
and null. Python decodes and validates every record it receives in full.

Keys, under the configurable prefix ``P``:

- ``P:s:<user>:<thread>``: the record (a string), with a TTL of the idle timeout;
- ``P:u:<user>``: sorted set of the user's session keys, scored by last activity
  (the per-user cap evicts its lowest entry);
- ``P:all``: the same over all users (the total cap, and the sweep).

The indexes carry a TTL too, pushed forward on every write, so nothing this
store writes lives forever. Every script touches ``P:all``, so the store needs
a standalone Redis server (with replicas or Sentinel as you like), not Redis
Cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import urllib.parse
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Final, Self

from ctxmigrate.shim.errors import (
    ConversationBusyError,
    LeaseLostError,
    SessionError,
    StateConflictError,
)
from ctxmigrate.shim.lease import LeaseGrant, LeaseTerms, new_lease_token
from ctxmigrate.shim.redis.codec import (
    RECORD_SCHEMA,
    RecordEncodingError,
    RecordRejected,
    decode_record,
    encode_record,
    encode_state,
    ids_fragment,
    json_number,
    layout_rejection,
)
from ctxmigrate.shim.redis.keys import (
    global_index_key,
    lease_key,
    parse_session_key,
    session_key,
    user_index_key,
    validate_key_prefix,
    waiter_key,
    waiting_line_key,
)
from ctxmigrate.shim.redis.scripts import build_scripts
from ctxmigrate.shim.store import (
    CreateOutcome,
    Removal,
    RemovalReason,
    SessionKey,
    SessionPolicy,
    SessionRecord,
)

try:
    import redis.asyncio as aioredis
    import redis.exceptions as redis_errors

    # The asyncio Retry for the asyncio pool (redis-py 8.2 warns about the
    # synchronous one), and a backoff that redis-py has had since 4.x: both
    # exist from the oldest release pyproject.toml allows.
    from redis.asyncio.retry import Retry
    from redis.backoff import FullJitterBackoff
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        f"the Redis session store needs redis-py >= 5.0.2: pip install 'ctxmigrate[redis]' ({exc})"
    ) from exc

logger = logging.getLogger(__name__)

#: The fixed event name of the security log line for a record that was not trusted.
RECORD_REJECTED_EVENT: Final = "ctxmigrate.session_record_rejected"

#: Records removed per sweep script call: a script blocks the server while it runs.
SWEEP_BATCH: Final = 500

# A writer that keeps planting bad values must not keep get_or_create looping.
_MAX_UNTRUSTED_REPLACEMENTS: Final = 3

# A waiter for a busy conversation polls, first after about 2 ms, backing off
# to about 25 ms; its place in line lasts 2 s after each poll, so only a waiter
# that stopped polling (gave up, crashed, stalled for seconds) loses it.
_POLL_FIRST_SECONDS: Final = 0.002
_POLL_MAX_SECONDS: Final = 0.025
_WAITER_HEARTBEAT_MS: Final = 2000


class SessionStoreUnavailableError(SessionError, ConnectionError):
    """Redis could not serve the call: down, unreachable, timing out, pool exhausted,
    read-only after a failover, out of memory."""

    def __init__(self, address: str, operation: str, cause: BaseException) -> None:
        self.address = address
        self.operation = operation
        # redis-py's messages often end in a full stop already.
        detail = str(cause).rstrip(".")
        super().__init__(
            f"Redis session store at {address} is unavailable during {operation}: "
            f"{type(cause).__name__}: {detail}. Sessions are not served from a local "
            "fallback, since two workers would then hold two sessions for one conversation."
        )


# Connection failures and timeouts, but also a server that answers and cannot
# serve: READONLY (a primary demoted by a failover), OOM at maxmemory, LOADING.
# Every redis-py error says which in its class and text, which the message keeps.
_UNAVAILABLE_ERRORS: Final = (redis_errors.RedisError, OSError)


def public_address(url: str) -> str:
    """The server address for error messages: no password, no username."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme == "unix":
        return f"unix://{parsed.path}"
    host = parsed.hostname or "localhost"
    port = parsed.port or 6379
    database = parsed.path.lstrip("/") or "0"
    return f"{parsed.scheme}://{host}:{port}/{database}"


def _milliseconds(seconds: float) -> int:
    # PX takes whole milliseconds; never 0 (that would expire at once).
    return max(1, math.ceil(seconds * 1000))


async def _finish(call: Any) -> None:
    """Run ``call`` to its end even if cancelled meanwhile (it cleans up after us)."""
    task = asyncio.ensure_future(call)
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            continue
    if not task.cancelled():
        task.exception()  # retrieved: _leave logs its own failures


def _fingerprint(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:16]


class RedisSessionStore:
    """Session records in Redis, shared by every process using the same server and prefix.

    Pass it to the manager as its store. ``url`` is a redis-py URL
    (``redis://host:6379/0``, ``rediss://...``, ``unix:///run/redis.sock``).
    The connection settings are explicit because redis-py's defaults changed
    between releases (8.1: 5 s timeouts and ten retries, so a request could
    hang for many seconds before failing):

    - ``max_connections``: pool size per process; callers beyond it wait up to
      ``pool_timeout`` seconds for a free connection, then get an error.
    - ``socket_timeout`` / ``socket_connect_timeout``: seconds per command / connect.
    - ``retries``: reconnect attempts per command after a connection error,
      with jittered backoff (how the store recovers by itself after a restart).

    The idle timeout and the caps come from the manager's
    :class:`~ctxmigrate.shim.store.SessionPolicy` on every call.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = "ctxmigrate",
        max_connections: int = 32,
        socket_timeout: float = 2.0,
        socket_connect_timeout: float = 2.0,
        pool_timeout: float = 5.0,
        retries: int = 2,
        record_schema: int = RECORD_SCHEMA,
    ) -> None:
        self.key_prefix = validate_key_prefix(key_prefix)
        # The schema this store writes and trusts (another is untrusted). Changed
        # only with a new record layout, or by a test of the scripts.
        build_scripts(record_schema)  # validates it
        self.record_schema = record_schema
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.address = public_address(url)
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(FullJitterBackoff(cap=0.5, base=0.05), retries),
            decode_responses=False,
        )
        self._redis = aioredis.Redis.from_pool(pool)
        scripts = build_scripts(self.record_schema)
        self._touch = self._redis.register_script(scripts.touch)
        self._get_or_create = self._redis.register_script(scripts.get_or_create)
        self._save_state = self._redis.register_script(scripts.save_state)
        self._delete = self._redis.register_script(scripts.delete)
        self._sweep = self._redis.register_script(scripts.sweep)
        self._count_user = self._redis.register_script(scripts.count_user)
        self._acquire = self._redis.register_script(scripts.acquire)
        self._renew = self._redis.register_script(scripts.renew)
        self._release = self._redis.register_script(scripts.release)
        self._abandon = self._redis.register_script(scripts.abandon)

    # -- keys -------------------------------------------------------------------

    def session_key(self, key: SessionKey) -> str:
        return session_key(self.key_prefix, key)

    def user_index_key(self, user_id: str) -> str:
        return user_index_key(self.key_prefix, user_id)

    def global_index_key(self) -> str:
        return global_index_key(self.key_prefix)

    def _keys(self, key: SessionKey) -> tuple[str, str, str]:
        return (self.session_key(key), self.user_index_key(key.user_id), self.global_index_key())

    def _common_args(
        self, now: float, policy: SessionPolicy, key: SessionKey | None = None
    ) -> tuple[str, str, str, int, str]:
        # PX takes whole milliseconds; a TTL must never be 0 (that would delete at once).
        ttl_ms = max(1, math.ceil(policy.idle_timeout * 1000))
        return (
            self.key_prefix,
            json_number(now, "now"),
            repr(float(policy.idle_timeout)),
            ttl_ms,
            "" if key is None else ids_fragment(key),
        )

    # -- plumbing -----------------------------------------------------------------

    async def _run(
        self, operation: str, script: Any, keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        try:
            return await script(keys=keys, args=args)
        except _UNAVAILABLE_ERRORS as exc:
            raise SessionStoreUnavailableError(self.address, operation, exc) from exc

    def _decode(self, raw: bytes, key: SessionKey) -> SessionRecord | None:
        try:
            return decode_record(raw, key, self.record_schema)
        except RecordRejected as exc:
            self._report_untrusted(raw, key, str(exc))
            return None

    def _report_out_of_layout(self, raw: bytes, key: SessionKey) -> None:
        """Report a value the scripts found out of layout, with the precise reason."""
        self._report_untrusted(raw, key, layout_rejection(raw, key, self.record_schema))

    def _report_untrusted(self, raw: bytes, key: SessionKey, reason: str) -> None:
        redis_key = self.session_key(key)
        # The value itself is not logged: it may be large, personal or hostile.
        logger.warning(
            "%s: untrusted session record at %s (%s); treated as missing",
            RECORD_REJECTED_EVENT,
            redis_key,
            reason,
            extra={
                "event": RECORD_REJECTED_EVENT,
                "redis_key": redis_key,
                "reason": reason,
                "value_sha256_prefix": _fingerprint(raw),
                "value_length": len(raw),
            },
        )

    def _removals(self, flat: Sequence[bytes]) -> tuple[Removal, ...]:
        return tuple(
            Removal(
                parse_session_key(self.key_prefix, redis_key.decode("utf-8")),
                RemovalReason(reason.decode("ascii")),
            )
            for reason, redis_key in zip(flat[0::2], flat[1::2], strict=True)
        )

    # -- SessionStore ---------------------------------------------------------------

    async def get_or_create(
        self, candidate: SessionRecord, *, now: float, policy: SessionPolicy
    ) -> CreateOutcome:
        """The live record for ``candidate.key`` (activity refreshed), or the candidate, stored.

        One Lua script: across processes exactly one candidate wins and every
        caller gets the winner's record (same run_id). A stored value that
        fails to decode is logged and replaced, compare-and-set on its exact
        bytes, so two processes replacing the same bad value still agree.
        """
        outcome = await self._create_rounds(
            "get_or_create", self._get_or_create, self._keys(candidate.key), candidate, now, policy
        )
        assert outcome is not None  # only a lease acquisition can be busy
        return outcome

    async def _create_rounds(
        self,
        operation: str,
        script: Any,
        keys: Sequence[str],
        candidate: SessionRecord,
        now: float,
        policy: SessionPolicy,
        lease_args: Sequence[Any] = (),
    ) -> CreateOutcome | None:
        """Run a get-or-create script (replacing untrusted values); ``None`` if busy."""
        key = candidate.key
        fresh_candidate = SessionRecord(
            key=key,
            run_id=candidate.run_id,
            websocket_connection_id=candidate.websocket_connection_id,
            created_at=candidate.created_at,
            last_activity=now,
            conversation_state=candidate.conversation_state,
            version=candidate.version,
        )
        encoded = encode_record(fresh_candidate, self.record_schema)
        caps = (policy.max_sessions_per_user or 0, policy.max_sessions or 0)
        untrusted = b""
        for _round in range(_MAX_UNTRUSTED_REPLACEMENTS + 1):
            reply = await self._run(
                operation,
                script,
                keys,
                (*self._common_args(now, policy, key), encoded, *caps, untrusted, *lease_args),
            )
            status = reply[0]
            if status == b"created":
                return CreateOutcome(
                    fresh_candidate, created=True, removed=self._removals(reply[1:])
                )
            if status == b"busy":
                return None
            if status == b"live":
                record = self._decode(reply[1], key)
                if record is not None:
                    return CreateOutcome(record, created=False)
            else:
                self._report_out_of_layout(reply[1], key)
            # Only these exact bytes are replaced: if another process replaced
            # them first, the next round returns its record instead.
            untrusted = reply[1]
        raise SessionError(
            f"session {key!r}: gave up after {_MAX_UNTRUSTED_REPLACEMENTS} untrusted "
            "records in a row (something keeps writing bad values under this key)"
        )

    # -- conversation leases (ConversationStore) -------------------------------------

    async def acquire_conversation(
        self,
        candidate: SessionRecord,
        *,
        clock: Callable[[], float],
        policy: SessionPolicy,
        terms: LeaseTerms,
    ) -> LeaseGrant:
        """Take the conversation's lease and get or create its record, in one script.

        While another holder has it, the caller waits in line (a sorted set by
        arrival, in Redis, so waiters of every process are served in order),
        polling with backoff, up to ``terms.wait`` seconds. Giving up (or being
        cancelled) leaves the line, and lets go of a lease granted by a reply
        that never arrived.
        """
        key = candidate.key
        token = new_lease_token()
        keys = (
            *self._keys(key),
            lease_key(self.key_prefix, key),
            waiting_line_key(self.key_prefix, key),
        )
        lease_args = (token, _milliseconds(terms.ttl), _WAITER_HEARTBEAT_MS)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + terms.wait
        delay = _POLL_FIRST_SECONDS
        try:
            while True:
                outcome = await self._create_rounds(
                    "acquire_conversation",
                    self._acquire,
                    keys,
                    candidate,
                    clock(),
                    policy,
                    lease_args,
                )
                if outcome is not None:
                    return LeaseGrant(token, outcome, expires=True)
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ConversationBusyError(
                        f"the conversation stayed busy for {terms.wait:g} s (another message "
                        "of it is being handled); nothing was loaded or changed, try again"
                    )
                await asyncio.sleep(min(remaining, delay * random.uniform(0.5, 1.0)))
                delay = min(delay * 2, _POLL_MAX_SECONDS)
        except BaseException:
            await _finish(self._leave(key, token))
            raise

    async def _leave(self, key: SessionKey, token: str) -> None:
        try:
            await self._abandon(
                keys=(
                    lease_key(self.key_prefix, key),
                    waiting_line_key(self.key_prefix, key),
                    waiter_key(self.key_prefix, token),
                ),
                args=(token,),
            )
        except _UNAVAILABLE_ERRORS:
            # The lease and the place in line expire by themselves.
            logger.warning("could not leave the waiting line of %r; it expires by itself", key)

    async def renew_conversation(self, key: SessionKey, token: str, *, terms: LeaseTerms) -> bool:
        """Extend the lease to ``terms.ttl`` from now; ``False`` if ``token`` lost it."""
        held = await self._run(
            "renew_conversation",
            self._renew,
            (lease_key(self.key_prefix, key),),
            (token, _milliseconds(terms.ttl)),
        )
        return bool(held)

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
        """Save ``state`` (unless ``None``) and release the lease, in one script.

        The save is compare-and-set on the version and applies only while
        ``token`` holds the lease (the fencing check, in the same script).
        """
        try:
            encoded = "" if state is None else encode_state(state)
        except RecordEncodingError:
            await self.release_conversation(
                key, token, None, expected_version=expected_version, now=now, policy=policy
            )
            raise
        reply = await self._run(
            "release_conversation",
            self._release,
            (*self._keys(key), lease_key(self.key_prefix, key)),
            (*self._common_args(now, policy, key), expected_version, encoded, token),
        )
        status = reply[0]
        if status == b"lost":
            raise LeaseLostError(
                "the conversation's lease expired or was taken over before this block "
                "finished: its changes were not saved"
            )
        if status == b"released":
            return None
        return self._save_reply(reply, key, expected_version)

    async def touch(
        self, key: SessionKey, *, now: float, policy: SessionPolicy
    ) -> SessionRecord | None:
        """The live record with activity and TTL refreshed, or None. Never creates."""
        reply = await self._run(
            "touch", self._touch, self._keys(key), self._common_args(now, policy, key)
        )
        if reply[0] == b"live":
            return self._decode(reply[1], key)
        if reply[0] == b"untrusted":
            self._report_out_of_layout(reply[1], key)
        return None

    async def save_state(
        self,
        key: SessionKey,
        state: dict[str, Any],
        *,
        expected_version: int,
        now: float,
        policy: SessionPolicy,
    ) -> SessionRecord | None:
        """Compare-and-set of ``conversation_state`` on ``version``; None if the session is gone."""
        reply = await self._run(
            "save_state",
            self._save_state,
            self._keys(key),
            (*self._common_args(now, policy, key), expected_version, encode_state(state)),
        )
        return self._save_reply(reply, key, expected_version)

    def _save_reply(
        self, reply: Sequence[bytes], key: SessionKey, expected_version: int
    ) -> SessionRecord | None:
        status = reply[0]
        if status == b"saved":
            return self._decode(reply[1], key)
        if status == b"conflict":
            raise StateConflictError(
                f"conversation_state was saved by another writer "
                f"(version {int(reply[1])}, expected {expected_version})"
            )
        if status == b"untrusted":
            self._report_out_of_layout(reply[1], key)
        return None

    async def delete(self, key: SessionKey) -> bool:
        # The idle timeout and clock do not matter to a delete.
        args = (self.key_prefix, "0", "1", 1, "")
        existed = await self._run("delete", self._delete, self._keys(key), args)
        return bool(existed)

    async def sweep_expired(self, *, now: float, policy: SessionPolicy) -> list[SessionKey]:
        """Remove the records idle for ``policy.idle_timeout`` by ``now``, in batches."""
        swept: list[SessionKey] = []
        while True:
            batch = await self._run(
                "sweep_expired",
                self._sweep,
                (self.global_index_key(),),
                (*self._common_args(now, policy), SWEEP_BATCH),
            )
            swept.extend(
                parse_session_key(self.key_prefix, redis_key.decode("utf-8")) for redis_key in batch
            )
            if len(batch) < SWEEP_BATCH:
                return swept

    async def aclose(self) -> None:
        """Close the client and its connection pool."""
        await self._redis.aclose()

    # -- beyond the SessionStore protocol --------------------------------------------

    async def count_user_sessions(self, user_id: str, *, now: float, policy: SessionPolicy) -> int:
        """How many of the user's sessions are live at ``now``, across all processes."""
        count = await self._run(
            "count_user_sessions",
            self._count_user,
            (self.user_index_key(user_id),),
            self._common_args(now, policy),
        )
        return int(count)

    async def ping(self) -> None:
        """Raise :class:`SessionStoreUnavailableError` unless Redis answers."""
        try:
            await self._redis.ping()
        except _UNAVAILABLE_ERRORS as exc:
            raise SessionStoreUnavailableError(self.address, "ping", exc) from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
