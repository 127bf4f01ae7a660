"""A process that imports LibCST while the main process discovers and
summarises, then runs the analysis (``engine.run``'s step 4).

Why: importing LibCST costs about 0.09 CPU-seconds, and every process that
parses with it pays that; on two cores, that import in each of two analysis
workers was a fifth of a cold audit of the 5,200-file benchmark tree. The
server is forked (``fork`` start method only) once the run knows it must
discover files, imports LibCST and the rules while the main process lists,
greps and summarises (git and the main process leave a core partly idle
then), and receives the analysis job when the index is built. It analyses
the files itself, or, given several workers, forks them after the import:
each starts with LibCST loaded, so the import is paid once.

The main process talks to it over one pipe. Before the analysis, it may
``share`` other work (the summaries): main process and server each take the
next item from a counter they share, so the two processes that exist anyway
do it, with no pool to fork. Then the analysis job goes in, and one outcome
per file comes out as it is done. If the run ends before the analysis (no
candidate, a reused report, an error), ``close`` stops it unused. The server
exits when its pipe closes, so a main process that dies does not leave it
behind; its helpers take nothing more once it stops, and it waits for them.
"""

from __future__ import annotations

import mmap
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess
    from multiprocessing.synchronize import Lock

Item = TypeVar("Item")
Result = TypeVar("Result")


class AnalysisServer:
    """The forked server: ``share`` any number of times, then ``analyze`` at
    most once, then ``close``."""

    def __init__(self, fix: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._connection, child = context.Pipe()
        self._claims = _Claims(context.Lock())
        self._process: BaseProcess = context.Process(
            target=_serve,
            args=(child, self._connection, self._claims, fix),
            name="ctxmigrate-analysis",
            daemon=False,
        )
        self._process.start()
        child.close()
        self._sent = False

    def share(self, function: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        """``[function(item) for item in items]``, computed by this process and
        the server together, each taking the next item not yet taken: on two
        cores, the two processes that exist anyway, with no pool to fork.
        ``function`` is a module-level function (sent by reference)."""
        self._claims.reset()
        self._send(("share", function, list(items)))
        results = {p: function(items[p]) for p in self._claims.positions(len(items))}
        results.update(self._receive()[1])
        return [results[position] for position in range(len(items))]

    def analyze(
        self, state: tuple[Any, ...], items: Sequence[Any], workers: int
    ) -> Iterator[tuple[int, Any]]:
        """(position, outcome) of each item (``engine._analyze_in_worker``), as
        each is done: the server and ``workers - 1`` processes it forks take the
        items in turn."""
        self._sent = True
        self._send(("analyze", state, list(items), workers))
        for _ in items:
            message = self._receive()
            yield message[1], message[2]

    def _send(self, message: tuple[Any, ...]) -> None:
        try:
            self._connection.send(message)
        except OSError:
            raise RuntimeError("the analysis process ended unexpectedly") from None

    def _receive(self) -> Any:
        try:
            message = self._connection.recv()
        except EOFError:
            raise RuntimeError("the analysis process ended unexpectedly") from None
        if message[0] == "error":
            raise RuntimeError(f"the analysis process failed: {message[1]}")
        return message

    def close(self) -> None:
        """Stop the server: at once when it got no job; else let it stop its
        workers (it does when the last outcome is sent, or when this end closes
        early), killing it only if that takes longer than ``STOP_SECONDS``."""
        self._connection.close()
        if self._sent:
            self._process.join(STOP_SECONDS)
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()


# A helper stops after the file it is analysing: seconds at most.
STOP_SECONDS = 10.0


class _Claims:
    """A counter shared by the main process and the server (an anonymous
    shared mapping, created before the fork): each takes the next item's
    position from it."""

    def __init__(self, lock: Lock) -> None:
        self._lock = lock
        self._memory = mmap.mmap(-1, 8)

    def reset(self) -> None:
        with self._lock:
            self._memory[:8] = bytes(8)

    def take(self, total: int) -> int | None:
        with self._lock:
            taken = int.from_bytes(self._memory[:8], "little")
            if taken >= total:
                return None
            self._memory[:8] = (taken + 1).to_bytes(8, "little")
        return taken

    def positions(self, total: int) -> Iterator[int]:
        """The positions this process takes, one at a time, until none is left."""
        while (position := self.take(total)) is not None:
            yield position

    def stop(self, total: int) -> None:
        """Nothing more is taken."""
        with self._lock:
            self._memory[:8] = total.to_bytes(8, "little")


def _serve(connection: Connection, main_end: Connection, claims: _Claims, fix: bool) -> None:
    from ctxmigrate.codemods import engine

    # The main process's end, copied by the fork: while this process holds it,
    # neither side would see the other close the pipe.
    main_end.close()
    engine.preload_analysis(fix)
    try:
        while True:
            try:
                message = connection.recv()
            except EOFError:
                return  # the run needed no (more) analysis
            if message[0] == "share":
                _, function, items = message
                results = {p: function(items[p]) for p in claims.positions(len(items))}
                connection.send(("shared", results))
                continue
            _, state, items, workers = message
            engine.set_worker_state(state)
            _analyze(connection, claims, items, workers)
            return
    except OSError:
        pass  # the main process stopped listening (an error, an interrupt)
    except _HelperFailed as error:
        connection.send(("error", str(error)))
    except Exception as error:  # reported by the main process, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


class _HelperFailed(Exception):
    """What a helper reported (its error, or that it ended unexpectedly)."""


def _analyze(connection: Connection, claims: _Claims, items: list[Any], workers: int) -> None:
    """Analyse ``items`` here and in ``workers - 1`` forked helpers (which start
    with LibCST and the state), sending each outcome to the main process as it
    comes. A helper that fails or dies is an error; so that none is left
    behind, the helpers take nothing more once this returns or raises, and are
    waited for."""
    from multiprocessing.connection import wait

    from ctxmigrate.codemods.engine import _analyze_in_worker

    context = multiprocessing.get_context("fork")
    claims.reset()
    helpers: list[tuple[BaseProcess, Connection]] = []
    try:
        for _ in range(workers - 1):
            receiver, sender = context.Pipe(duplex=False)
            # What the helper must not keep open (see ``_help``).
            others = [connection, *(end for _, end in helpers), receiver]
            helper = context.Process(
                target=_help, args=(sender, others, claims, items), daemon=True
            )
            helper.start()
            sender.close()
            helpers.append((helper, receiver))
        listening = [receiver for _, receiver in helpers]

        def forward(patience: float | None) -> None:
            for ready in wait(listening, patience):
                assert isinstance(ready, Connection)
                try:
                    message = ready.recv()
                except EOFError:
                    message = ("error", "a worker process ended unexpectedly")
                if message is None:
                    listening.remove(ready)
                elif message[0] == "error":
                    raise _HelperFailed(message[1])
                else:
                    connection.send(message)

        for position in claims.positions(len(items)):
            connection.send(("outcome", position, _analyze_in_worker(items[position])))
            forward(0)
        while listening:
            forward(None)
    finally:
        claims.stop(len(items))
        for process, receiver in helpers:
            receiver.close()  # a helper still sending gets an error and ends
            process.join()


def _help(sender: Connection, others: list[Connection], claims: _Claims, items: list[Any]) -> None:
    """A helper: (position, outcome) for each item it takes, then None.

    It first closes the ends of the other pipes its fork copied: holding the
    read end of its own, it would never see the server stop reading (its
    outputs would fill the pipe and it would wait forever), and holding the
    server's end towards the main process, neither would see the other go.
    """
    from ctxmigrate.codemods.engine import _analyze_in_worker

    for end in others:
        end.close()
    try:
        for position in claims.positions(len(items)):
            sender.send(("outcome", position, _analyze_in_worker(items[position])))
        sender.send(None)
    except OSError:
        pass  # the server stopped listening
    except Exception as error:
        sender.send(("error", f"{type(error).__name__}: {error}"))
