"""Runtime evidence for the migration: how often one conversation gets a new context.

In "observe" mode the deprecated ``create_user_execution_context`` builds a new
context per call, as the legacy code did, and reports each build here with its
conversation and call site. A conversation that gets a second context has lost
its state: every such rebuild is a site the static audit should have flagged,
now confirmed by production traffic. The report names call sites (file, line,
function) and counts; it never contains user or thread ids.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from typing import Any, NamedTuple

from ctxmigrate.shim.store import SessionKey


class CallSite(NamedTuple):
    path: str
    line: int
    function: str


class _SiteCounts:
    __slots__ = ("contexts_built", "rebuilt", "with_db_session")

    def __init__(self) -> None:
        self.contexts_built = 0
        self.rebuilt = 0
        self.with_db_session = 0


def caller_outside_shim() -> CallSite:
    """The first frame up the stack that is neither the shim nor a deprecation wrapper."""
    frame = sys._getframe(1)
    while frame.f_back is not None:
        module = frame.f_globals.get("__name__", "")
        if not (module.startswith("ctxmigrate.shim") or module == "typing_extensions"):
            break
        frame = frame.f_back
    return CallSite(frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_qualname)


class ContextObserver:
    """Counts contexts built per conversation and per call site.

    At most ``max_conversations`` conversations are remembered (the oldest are
    forgotten first) so that observing production traffic cannot exhaust memory;
    a forgotten conversation's next build counts as a first build again.
    """

    def __init__(self, max_conversations: int = 100_000) -> None:
        if max_conversations < 1:
            raise ValueError(f"max_conversations must be positive, got {max_conversations!r}")
        self._max_conversations = max_conversations
        self._builds_per_conversation: OrderedDict[SessionKey, int] = OrderedDict()
        self._sites: dict[CallSite, _SiteCounts] = {}
        self._conversations_forgotten = 0

    def record(
        self, user_id: str, thread_id: str | None, site: CallSite, *, db_session: bool = False
    ) -> None:
        """Note that a context was built for (user_id, thread_id) at ``site``.

        ``thread_id=None`` means the call started a new conversation, which never
        counts as a rebuild.
        """
        counts = self._sites.get(site)
        if counts is None:
            counts = self._sites[site] = _SiteCounts()
        counts.contexts_built += 1
        if db_session:
            counts.with_db_session += 1
        if thread_id is None:
            return
        key = SessionKey(user_id, thread_id)
        builds = self._builds_per_conversation.get(key, 0)
        if builds:
            counts.rebuilt += 1
        self._builds_per_conversation[key] = builds + 1
        if len(self._builds_per_conversation) > self._max_conversations:
            self._builds_per_conversation.popitem(last=False)
            self._conversations_forgotten += 1

    def report(self) -> dict[str, Any]:
        """The observations as a JSON-ready dict (version 1), worst call sites first."""
        sites = sorted(
            self._sites.items(),
            key=lambda item: (-item[1].rebuilt, item[0].path, item[0].line, item[0].function),
        )
        return {
            "version": 1,
            "contexts_built": sum(counts.contexts_built for counts in self._sites.values()),
            "rebuilt": sum(counts.rebuilt for counts in self._sites.values()),
            "conversations": len(self._builds_per_conversation),
            "conversations_forgotten": self._conversations_forgotten,
            "max_contexts_per_conversation": max(self._builds_per_conversation.values(), default=0),
            "call_sites": [
                {
                    "path": site.path,
                    "line": site.line,
                    "function": site.function,
                    "contexts_built": counts.contexts_built,
                    "rebuilt": counts.rebuilt,
                    "with_db_session": counts.with_db_session,
                }
                for site, counts in sites
            ],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.report(), indent=indent)
