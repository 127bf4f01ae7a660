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

The main process talks to it over one pipe: the job goes in, one outcome per
file comes out, in the order of the items. If the run ends before the
analysis (no candidate, a reused report, an error), ``close`` stops it
unused. The server exits when its pipe closes, so a main process that dies
does not leave it behind.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess


class AnalysisServer:
    """The forked server; ``analyze`` at most once, then ``close``."""

    def __init__(self, fix: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._connection, child = context.Pipe()
        self._process: BaseProcess = context.Process(
            target=_serve, args=(child, fix), name="ctxmigrate-analysis", daemon=False
        )
        self._process.start()
        child.close()
        self._sent = False

    def analyze(self, state: tuple[Any, ...], items: Sequence[Any], workers: int) -> Iterator[Any]:
        """Each item's outcome (``engine._analyze_in_worker``), in order."""
        self._sent = True
        self._connection.send((state, list(items), workers))
        for _ in items:
            kind, value = self._connection.recv()
            if kind == "error":
                raise RuntimeError(f"the analysis process failed: {value}")
            yield value

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


# A worker stops after the chunk it is analysing: seconds at most.
STOP_SECONDS = 10.0


def _serve(connection: Connection, fix: bool) -> None:
    from ctxmigrate.codemods import engine

    engine.preload_analysis(fix)
    try:
        state, items, workers = connection.recv()
    except EOFError:
        return  # the run needed no analysis
    try:
        engine.set_worker_state(state)
        for outcome in _outcomes(items, workers):
            connection.send(("outcome", outcome))
    except OSError:
        pass  # the main process stopped listening (an error, an interrupt)
    except Exception as error:  # reported by the main process, which raises it
        connection.send(("error", f"{type(error).__name__}: {error}"))
    finally:
        connection.close()


def _outcomes(items: list[Any], workers: int) -> Iterator[Any]:
    from ctxmigrate.codemods import engine

    if workers <= 1:
        yield from map(engine._analyze_in_worker, items)
        return
    from concurrent.futures import ProcessPoolExecutor

    # Forked from this process: the workers start with LibCST and the state.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    try:
        chunk = max(1, len(items) // (workers * 4))
        yield from pool.map(engine._analyze_in_worker, items, chunksize=chunk)
    finally:
        # Waited for: a worker left behind would never see its queue close.
        pool.shutdown(wait=True, cancel_futures=True)
