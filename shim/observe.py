"""Observe the application's own legacy factories in place: which call sites still fire.

Decorate the app's legacy APIs (behaviour unchanged)::

    from ctxmigrate.shim import observe_legacy, write_observations

    @observe_legacy
    def create_user_execution_context(user_id, thread_id, run_id=None, db_session=None): ...

    class WebSocketContext:
        @classmethod
        @observe_legacy            # below @classmethod (above it works too)
        def create_for_user(cls, websocket, user_id, thread_id, run_id, connection_id): ...

    @observe_legacy
    def create_websocket_manager(context): ...

Every call is recorded per call site (the caller's file, line and function: the
first frame outside the wrapper) and per conversation: a call whose conversation
(``user_id``, ``thread_id``) already got a result of the same API counts as
*rebuilt* (a lost session). The conversation comes from the ``user_id`` and
``thread_id`` arguments (by name or position); a function without them (such as
``create_websocket_manager(context)``) takes them from its first argument's
``user_id`` / ``thread_id`` attributes. A call with ``thread_id=None`` starts a
new conversation and is never a rebuild.

Memory is bounded: call sites are bounded by the code, and at most
``max_conversations`` conversations per observer are remembered (the oldest
forgotten first, counted in ``conversations_forgotten``; a forgotten
conversation's next call counts as a first one again). The report holds no user
or thread id.

An ``async def`` stays a coroutine function; its call is recorded when the
coroutine starts, at the line that awaits it (a coroutine started as a task is
awaited by the event loop, so its site is inside ``asyncio``).

``write_observations(path)`` writes this process's report (JSON, versioned,
written atomically); ``{pid}`` and ``{host}`` in the path are replaced, so each
worker writes its own file. Reports from several processes or hosts merge
(:func:`merge_observations`, ``ctxmigrate audit --evidence 'dir/*.json'``). A
child process forked from an observed one starts with empty counts (the parent
reports its own), so nothing is counted twice.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import socket
import sys
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

__all__ = [
    "OBSERVATIONS_FORMAT",
    "OBSERVATIONS_VERSION",
    "LegacyObserver",
    "ObservationsError",
    "legacy_observer",
    "merge_observations",
    "observe_legacy",
    "read_observations",
    "write_observations",
]

OBSERVATIONS_FORMAT = "ctxmigrate-observations"
OBSERVATIONS_VERSION = 1

_P = ParamSpec("_P")
_R = TypeVar("_R")

# Counters of one (api, call site): calls, rebuilt, conversations.
_CALLS, _REBUILT, _CONVERSATIONS = 0, 1, 2

_SiteKey = tuple[str, str, int, str]  # api, path, line, function


class ObservationsError(ValueError):
    """An observations file that cannot be read, parsed or merged (the message says why)."""


class LegacyObserver:
    """Counts calls of observed legacy APIs per call site and per conversation.

    ``max_conversations`` bounds the conversations remembered per observer.
    Safe to call from several threads (sync factories may run in a thread pool);
    recording takes no lock, so two threads recording the same call site at the
    same instant may lose one increment: counts are evidence, not accounting.
    """

    def __init__(self, max_conversations: int = 100_000) -> None:
        if max_conversations < 1:
            raise ValueError(f"max_conversations must be positive, got {max_conversations!r}")
        self.max_conversations = max_conversations
        self._lock = threading.Lock()
        self._reset_state()

    def _reset_state(self) -> None:
        self._sites: dict[_SiteKey, list[int]] = {}
        # (api, user_id, thread_id) -> the call sites that built for it.
        self._conversations: OrderedDict[tuple[str, Any, Any], list[_SiteKey]] = OrderedDict()
        self._conversations_forgotten = 0
        self._live: dict[str, _LiveCount] = {}
        self._untrackable: set[type] = set()
        self._started = datetime.now(UTC)
        self._process_id = uuid.uuid4().hex

    def reset(self) -> None:
        """Forget every count (the next report is a new process in merges)."""
        with self._lock:
            self._reset_state()

    def record(
        self, api: str, path: str, line: int, function: str, user_id: Any, thread_id: Any
    ) -> None:
        """One call of ``api`` from ``path:line`` in ``function`` for a conversation.

        ``thread_id`` ``None`` (or an id that is not hashable) records the call
        without a conversation.
        """
        site = (api, path, line, function)
        # No lock on this path (it would double the cost): with threads, two
        # records of one site at the same instant may count once.
        counts = self._sites.get(site)
        if counts is None:
            counts = self._sites.setdefault(site, [0, 0, 0])
        counts[_CALLS] += 1
        if thread_id is None:
            return
        conversations = self._conversations
        try:
            key = (api, user_id, thread_id)
            builders = conversations.get(key)
        except TypeError:  # unhashable ids: no conversation to follow
            return
        if builders is None:
            conversations[key] = [site]
            counts[_CONVERSATIONS] += 1
            if len(conversations) > self.max_conversations:
                try:
                    conversations.popitem(last=False)
                except KeyError:  # another thread emptied it
                    return
                self._conversations_forgotten += 1
            return
        counts[_REBUILT] += 1
        if site not in builders:
            builders.append(site)
            counts[_CONVERSATIONS] += 1

    def track(self, api: str, obj: object) -> None:
        """Count ``obj`` (a result of ``api``) as live until it is garbage collected.

        Objects that do not support weak references are not counted.
        """
        kind = type(obj)
        if kind in self._untrackable:
            return
        counter = self._live.get(api)
        if counter is None:
            counter = self._live.setdefault(api, _LiveCount())
        try:
            ref = weakref.ref(obj)
        except TypeError:  # no weak references to this type: remembered, not retried
            self._untrackable.add(kind)
            return
        refs = counter.refs
        refs.append(ref)
        if len(refs) > counter.limit:
            counter.prune()

    def live_objects(self) -> dict[str, int]:
        """``{api: n}``: results of each observed API still alive (built outside the
        session layer), for leak detection."""
        return {api: counter.prune() for api, counter in list(self._live.items())}

    def _copy_sites(self) -> list[tuple[_SiteKey, list[int]]]:
        # list() of a dict view runs in C without a thread switch: a consistent copy.
        return list(self._sites.items())

    def api_totals(self) -> dict[str, dict[str, int]]:
        """``{api: {"calls": n, "rebuilt": n}}`` over every call site of each API."""
        with self._lock:
            items = [
                (site[0], counts[_CALLS], counts[_REBUILT]) for site, counts in self._sites.items()
            ]
        totals: dict[str, dict[str, int]] = {}
        for api, calls, rebuilt in items:
            entry = totals.setdefault(api, {"calls": 0, "rebuilt": 0})
            entry["calls"] += calls
            entry["rebuilt"] += rebuilt
        return totals

    def report(self) -> dict[str, Any]:
        """This process's observations as a JSON-ready dict (format version 1)."""
        with self._lock:
            items = [(site, list(counts)) for site, counts in self._copy_sites()]
            forgotten = self._conversations_forgotten
            process = {
                "id": self._process_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "started": self._started.isoformat(timespec="seconds"),
                "written": datetime.now(UTC).isoformat(timespec="seconds"),
            }
        return _report([process], forgotten, dict(items))


def _report(
    processes: list[dict[str, Any]],
    forgotten: int,
    sites: Mapping[_SiteKey, list[int]],
) -> dict[str, Any]:
    ordered = sorted(
        sites.items(), key=lambda item: (-item[1][_CALLS], item[0][1], item[0][2], item[0][0])
    )
    return {
        "format": OBSERVATIONS_FORMAT,
        "version": OBSERVATIONS_VERSION,
        "processes": processes,
        "calls": sum(counts[_CALLS] for counts in sites.values()),
        "rebuilt": sum(counts[_REBUILT] for counts in sites.values()),
        "conversations_forgotten": forgotten,
        "call_sites": [
            {
                "api": api,
                "path": path,
                "line": line,
                "function": function,
                "calls": counts[_CALLS],
                "rebuilt": counts[_REBUILT],
                "conversations": counts[_CONVERSATIONS],
            }
            for (api, path, line, function), counts in ordered
        ],
    }


class _LiveCount:
    """Live results of one API, as weak references without callbacks (a callback
    per object costs more than the rest of a call); dead ones are pruned when the
    list has doubled since the last pruning, so memory follows the live objects."""

    __slots__ = ("limit", "refs")

    def __init__(self) -> None:
        self.refs: list[weakref.ref[Any]] = []
        self.limit = _PRUNE_AT_LEAST

    def prune(self) -> int:
        # A plain weak reference is shared by every caller: the same live object
        # returned twice is one object.
        alive = list({id(ref): ref for ref in self.refs if ref() is not None}.values())
        self.refs = alive
        self.limit = max(_PRUNE_AT_LEAST, 2 * len(alive))
        return len(alive)


_PRUNE_AT_LEAST = 1024


_observer = LegacyObserver()


def legacy_observer() -> LegacyObserver:
    """The process-wide observer that ``@observe_legacy`` records into by default."""
    return _observer


def _reset_after_fork() -> None:
    _observer.reset()
    # A lock held by another thread at the fork would never be released in the child.
    _observer._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


# Decorators the app may stack on top (``@deprecated``): their frames are not the caller.
_WRAPPER_MODULES = frozenset({"typing_extensions", "ctxmigrate.shim.deprecation"})

_ABSENT = sys.maxsize  # an argument position no call reaches


def _conversation_positions(function: Callable[..., Any]) -> tuple[bool, int, int]:
    """Where a call's ``user_id`` and ``thread_id`` are, decided once per function.

    ``(by_name, user_at, thread_at)``: with ``by_name``, the positional index of
    each (``_ABSENT`` if keyword-only), else keyword arguments; without it, the
    first argument's ``user_id``/``thread_id`` attributes.
    """
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        parameters = []
    positional = [
        parameter.name
        for parameter in parameters
        if parameter.kind
        in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    ]
    if "thread_id" not in {parameter.name for parameter in parameters}:
        if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
            return True, _ABSENT, _ABSENT  # ``**kwargs``: the ids are keywords, if anywhere
        return False, _ABSENT, _ABSENT
    user_at = positional.index("user_id") if "user_id" in positional else _ABSENT
    thread_at = positional.index("thread_id") if "thread_id" in positional else _ABSENT
    return True, user_at, thread_at


def _from_first_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    # ``create_websocket_manager(context)``: the conversation of the context.
    if args:
        subject = args[0]
    elif kwargs:
        subject = next(iter(kwargs.values()))
    else:
        return None, None
    return getattr(subject, "user_id", None), getattr(subject, "thread_id", None)


@overload
def observe_legacy(function: Callable[_P, _R], /) -> Callable[_P, _R]: ...
@overload
def observe_legacy(
    *, api: str | None = None, observer: LegacyObserver | None = None
) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...
def observe_legacy(
    function: Any = None, /, *, api: str | None = None, observer: LegacyObserver | None = None
) -> Any:
    """Record every call of a legacy factory; the factory itself runs unchanged.

    ``@observe_legacy`` or ``@observe_legacy(api="name", observer=...)``.
    ``api`` names the API in reports (default: ``module.qualname``); ``observer``
    defaults to the process-wide :func:`legacy_observer`. Works on functions,
    ``async def`` functions, and ``classmethod`` / ``staticmethod`` objects
    (either order of decorators).
    """
    if function is None:
        return lambda decorated: _observe(decorated, api, observer)
    return _observe(function, api, observer)


def _observe(function: Any, api: str | None, observer: LegacyObserver | None) -> Any:
    if isinstance(function, classmethod | staticmethod):
        return type(function)(_observe(function.__func__, api, observer))
    if not callable(function):
        raise TypeError(f"observe_legacy decorates a function, got {function!r}")
    name = api or f"{function.__module__}.{function.__qualname__}"
    by_name, user_at, thread_at = _conversation_positions(function)
    getframe = sys._getframe
    # The observer object is never replaced (reset() empties it in place), so its
    # bound methods can be looked up once here rather than on every call.
    target = observer if observer is not None else _observer
    record, track = target.record, target.track
    is_async = inspect.iscoroutinefunction(function)
    generated = _generated_wrapper(function, name, record, track, is_async=is_async)
    if generated is not None:
        wrapper: Any = generated
    else:

        def record_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
            """Record the call site and conversation; False for the session layer's calls."""
            frame = getframe(2)  # the wrapper's caller
            module = frame.f_globals.get("__name__", "")
            while module in _WRAPPER_MODULES and frame.f_back is not None:
                frame = frame.f_back
                module = frame.f_globals.get("__name__", "")
            if module.startswith("ctxmigrate.shim."):
                # The session layer building a session's context: not a legacy call.
                return False
            code = frame.f_code
            if by_name:
                count = len(args)
                user = args[user_at] if user_at < count else kwargs.get("user_id")
                thread = args[thread_at] if thread_at < count else kwargs.get("thread_id")
            else:
                user, thread = _from_first_argument(args, kwargs)
            record(name, code.co_filename, frame.f_lineno or 0, code.co_qualname, user, thread)
            return True

        if is_async:

            async def observed_coroutine(*args: Any, **kwargs: Any) -> Any:
                if not record_call(args, kwargs):
                    return await function(*args, **kwargs)
                result = await function(*args, **kwargs)
                track(name, result)
                return result

            wrapper = observed_coroutine
        else:

            def observed(*args: Any, **kwargs: Any) -> Any:
                if not record_call(args, kwargs):
                    return function(*args, **kwargs)
                result = function(*args, **kwargs)
                track(name, result)
                return result

            wrapper = observed
    wrapper = functools.wraps(function)(wrapper)
    wrapper.__ctxmigrate_observed__ = name
    return wrapper


_PREFIX = "_ctxm_"
_GENERATED = """\
def _ctxm_make(_ctxm_function, _ctxm_getframe, _ctxm_record, _ctxm_track, _ctxm_name,
               _ctxm_wrappers, _ctxm_defaults, _ctxm_kwdefaults):
    {unpack_defaults}
    {async_}def observed({parameters}):
        _ctxm_frame = _ctxm_getframe(1)
        _ctxm_module = _ctxm_frame.f_globals.get("__name__", "")
        while _ctxm_module in _ctxm_wrappers and _ctxm_frame.f_back is not None:
            _ctxm_frame = _ctxm_frame.f_back
            _ctxm_module = _ctxm_frame.f_globals.get("__name__", "")
        if _ctxm_module.startswith("ctxmigrate.shim."):
            return {await_}_ctxm_function({arguments})
        _ctxm_code = _ctxm_frame.f_code
        {conversation}
        _ctxm_record(_ctxm_name, _ctxm_code.co_filename, _ctxm_frame.f_lineno or 0,
                     _ctxm_code.co_qualname, _ctxm_user, _ctxm_thread)
        _ctxm_result = {await_}_ctxm_function({arguments})
        _ctxm_track(_ctxm_name, _ctxm_result)
        return _ctxm_result
    return observed
"""


def _generated_wrapper(
    function: Any,
    name: str,
    record: Callable[..., None],
    track: Callable[[str, object], None],
    *,
    is_async: bool,
) -> Any:
    """A wrapper with the factory's own parameters, or ``None`` where that cannot be made.

    Forwarding ``*args, **kwargs`` builds and unpacks a dict on every call, which
    costs about as much as everything else the observer does; a wrapper with the
    same parameters (and the very same default objects) passes them positionally
    and reads ``user_id`` / ``thread_id`` as locals. Functions with ``*args`` or
    ``**kwargs``, or without an inspectable signature, get the generic wrapper.
    """
    try:
        signature = inspect.signature(function, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    kinds = inspect.Parameter
    parameters = list(signature.parameters.values())
    if any(
        p.kind in (kinds.VAR_POSITIONAL, kinds.VAR_KEYWORD)
        or not p.name.isidentifier()
        or p.name.startswith(_PREFIX)
        for p in parameters
    ):
        return None
    declared: list[str] = []
    arguments: list[str] = []
    defaults: list[Any] = []
    kwdefaults: dict[str, Any] = {}
    unpack: list[str] = []
    seen_positional_only = False
    star_written = False
    for parameter in parameters:
        if parameter.kind is kinds.POSITIONAL_ONLY:
            seen_positional_only = True
        elif seen_positional_only:
            declared.append("/")
            seen_positional_only = False
        if parameter.kind is kinds.KEYWORD_ONLY and not star_written:
            declared.append("*")
            star_written = True
        text = parameter.name
        if parameter.default is not kinds.empty:
            if parameter.kind is kinds.KEYWORD_ONLY:
                kwdefaults[parameter.name] = parameter.default
                unpack.append(f"{_PREFIX}k_{parameter.name} = _ctxm_kwdefaults[{parameter.name!r}]")
                text += f"={_PREFIX}k_{parameter.name}"
            else:
                unpack.append(f"{_PREFIX}d{len(defaults)} = _ctxm_defaults[{len(defaults)}]")
                text += f"={_PREFIX}d{len(defaults)}"
                defaults.append(parameter.default)
        declared.append(text)
        arguments.append(
            f"{parameter.name}={parameter.name}"
            if parameter.kind is kinds.KEYWORD_ONLY
            else parameter.name
        )
    if seen_positional_only:
        declared.append("/")
    names = [parameter.name for parameter in parameters]
    if "thread_id" in names:
        user = "user_id" if "user_id" in names else "None"
        conversation = f"_ctxm_user, _ctxm_thread = {user}, thread_id"
    elif names:
        first = names[0]
        conversation = (
            f'_ctxm_user = getattr({first}, "user_id", None); '
            f'_ctxm_thread = getattr({first}, "thread_id", None)'
        )
    else:
        conversation = "_ctxm_user = _ctxm_thread = None"
    source = _GENERATED.format(
        unpack_defaults="; ".join(unpack) or "pass",
        async_="async " if is_async else "",
        await_="await " if is_async else "",
        parameters=", ".join(declared),
        arguments=", ".join(arguments),
        conversation=conversation,
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<ctxmigrate observe_legacy {name}>", "exec"), namespace)
    return namespace["_ctxm_make"](
        function, sys._getframe, record, track, name, _WRAPPER_MODULES, defaults, kwdefaults
    )


def _expand(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    return Path(text.replace("{pid}", str(os.getpid())).replace("{host}", socket.gethostname()))


def write_observations(
    path: str | os.PathLike[str], *, observer: LegacyObserver | None = None
) -> Path:
    """Write the observer's report (default: the process-wide one) to ``path``, atomically.

    ``{pid}`` and ``{host}`` in ``path`` are replaced. Writing again replaces the
    file with the cumulative counts, so a periodic writer never double counts.
    Returns the path written.
    """
    import tempfile  # only writers pay for it

    target = _expand(path)
    report = (observer or _observer).report()
    text = json.dumps(report, indent=2) + "\n"
    directory = target.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide it from a collector
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def _check_report(report: Any, source: str) -> dict[str, Any]:
    if not isinstance(report, dict) or report.get("format") != OBSERVATIONS_FORMAT:
        raise ObservationsError(f"{source}: not a ctxmigrate observations report")
    if report.get("version") != OBSERVATIONS_VERSION:
        raise ObservationsError(
            f"{source}: observations format version {report.get('version')!r} is not supported "
            f"(this ctxmigrate reads version {OBSERVATIONS_VERSION})"
        )
    processes = report.get("processes")
    sites = report.get("call_sites")
    if not isinstance(processes, list) or not isinstance(sites, list):
        raise ObservationsError(f"{source}: 'processes' and 'call_sites' must be lists")
    for process in processes:
        if not isinstance(process, dict) or not isinstance(process.get("id"), str):
            raise ObservationsError(f"{source}: every process needs a string 'id'")
    for index, site in enumerate(sites):
        ok = (
            isinstance(site, dict)
            and all(isinstance(site.get(key), str) for key in ("api", "path", "function"))
            and all(
                isinstance(site.get(key), int)
                and not isinstance(site.get(key), bool)
                and site[key] >= 0
                for key in ("line", "calls", "rebuilt", "conversations")
            )
        )
        if not ok:
            raise ObservationsError(
                f"{source}: call_sites[{index}] needs string api/path/function and "
                "non-negative integer line/calls/rebuilt/conversations"
            )
    forgotten = report.get("conversations_forgotten", 0)
    if not isinstance(forgotten, int) or forgotten < 0:
        raise ObservationsError(f"{source}: 'conversations_forgotten' must be a count")
    return report


def read_observations(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate one observations file; :class:`ObservationsError` says what is wrong."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ObservationsError(f"{source}: cannot read observations: {error}") from error
    try:
        report = json.loads(text)
    except json.JSONDecodeError as error:
        raise ObservationsError(f"{source}: not valid JSON: {error}") from error
    return _check_report(report, source)


def merge_observations(reports: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One report from several (processes, hosts): counts add up per call site.

    Two snapshots of the same processes (the same process ids: a periodic writer
    read twice) count once, the later one; reports that share only some
    processes would count them twice and raise :class:`ObservationsError`.
    """
    chosen: dict[frozenset[str], Mapping[str, Any]] = {}
    for report in reports:
        _check_report(report, "observations")
        ids = frozenset(process["id"] for process in report["processes"])
        previous = chosen.get(ids)
        if previous is None or _written(report) >= _written(previous):
            chosen[ids] = report
    seen: set[str] = set()
    for ids in chosen:
        if ids & seen:
            raise ObservationsError(
                "observations overlap: some processes appear in two reports with different "
                "process sets; merge each process's latest report once"
            )
        seen |= ids
    sites: dict[_SiteKey, list[int]] = {}
    processes: list[dict[str, Any]] = []
    forgotten = 0
    for report in chosen.values():
        processes.extend(dict(process) for process in report["processes"])
        forgotten += report.get("conversations_forgotten", 0)
        for site in report["call_sites"]:
            key = (site["api"], site["path"], site["line"], site["function"])
            counts = sites.setdefault(key, [0, 0, 0])
            counts[_CALLS] += site["calls"]
            counts[_REBUILT] += site["rebuilt"]
            counts[_CONVERSATIONS] += site["conversations"]
    processes.sort(key=lambda process: (str(process.get("host")), str(process.get("id"))))
    return _report(processes, forgotten, sites)


def _written(report: Mapping[str, Any]) -> str:
    return max((str(process.get("written", "")) for process in report["processes"]), default="")
