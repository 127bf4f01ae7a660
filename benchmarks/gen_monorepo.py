# ruff: noqa: E501  (template lines are the generated code's lines, kept whole to read as code)
"""Generate a synthetic monorepo shaped like a real websocket_core backend.

Deterministic for a given ``--seed`` and ``--files``: the same bytes every run,
so benchmark figures from two machines describe the same tree. The shape
follows a real websocket_core backend (a 5,600-file codebase we studied): thousands of ordinary modules in
packages of varying depth (classes, async handlers, dataclasses, docstrings,
comments), and a few dozen *candidate* files that mention the legacy names,
most of which must not be rewritten (same-name methods, a same-name function
in another module, comments, strings), plus real legacy sites of every kind.

The tree configures its legacy targets in ``pyproject.toml`` (as a real
monorepo with a same-name function elsewhere must), is committed to a fresh
git repository (``git grep`` and the audit's git file listing need one), and
carries ``bench-manifest.json``: the generator parameters and how many
findings of each rule and category it planted, so the benchmark can check the
audit's answer, not just its speed.

    python benchmarks/gen_monorepo.py --out /tmp/monorepo --files 5200 --seed 7

``--mentions N`` makes the tree look like a real one half-way through a
migration: N ordinary modules also *name* the context types (imports,
annotations, ``isinstance`` checks) without calling any legacy factory, so
they are text candidates with no finding. The planted findings do not change.

    python benchmarks/gen_monorepo.py --out /tmp/mentions --files 25000 --mentions 5000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Bump when the generated content changes: bench_audit.py regenerates a tree
# whose manifest names another version instead of benchmarking stale files.
GENERATOR_VERSION = 1
MANIFEST = "bench-manifest.json"
DEFAULT_FILES = 5200
# Ordinary modules average 345 lines; with short __init__ and test files,
# 5,200 files come to about 1.6 million lines.
DEFAULT_MEAN_LINES = 345

ROOT_PACKAGE = "backend"
DEPENDENCIES_MODULE = f"{ROOT_PACKAGE}.websocket_core.dependencies"
CONTEXT_MODULE = f"{ROOT_PACKAGE}.websocket_core.context"
FACTORY = "create_user_execution_context"
MANAGER_FACTORY = "create_websocket_manager"
WEBSOCKET_CONTEXT = "WebSocketContext"

DOMAINS = (
    "agents", "analytics", "auth", "billing", "catalog", "chat", "compliance", "connectors",
    "datasets", "evaluation", "gateway", "identity", "ingestion", "inventory", "ledger",
    "messaging", "monitoring", "notifications", "orchestration", "payments", "pipelines",
    "reporting", "search", "scheduling", "storage", "supervisor", "telemetry", "workflows",
)  # fmt: skip
SUBPACKAGES = (
    "adapters", "api", "clients", "core", "domain", "handlers", "internal", "jobs", "models",
    "repositories", "routes", "schemas", "services", "tasks", "tools", "v1", "v2", "workers",
)  # fmt: skip
NOUNS = (
    "account", "artifact", "batch", "budget", "cache", "channel", "checkpoint", "cursor",
    "document", "embedding", "entry", "event", "export", "feature", "invoice", "job", "lease",
    "message", "metric", "order", "partition", "payload", "plan", "policy", "prompt", "quota",
    "record", "refund", "region", "report", "request", "route", "schedule", "segment", "session",
    "shard", "snapshot", "source", "subscription", "summary", "task", "tenant", "token", "trace",
    "transcript", "upload", "usage", "vector", "webhook", "window", "workspace",
)  # fmt: skip
VERBS = (
    "aggregate", "archive", "assign", "build", "collect", "compact", "dispatch", "enqueue",
    "expire", "fetch", "flush", "index", "load", "merge", "normalize", "publish", "rebuild",
    "reconcile", "refresh", "register", "render", "replay", "resolve", "route", "score", "sync",
    "throttle", "transform", "validate", "verify",
)  # fmt: skip
MODULE_SUFFIXES = (
    "service", "handlers", "repository", "models", "schemas", "client", "utils", "tasks",
    "views", "policies", "serializers", "events", "workers", "queries", "adapters",
)  # fmt: skip
FIELD_TYPES = (
    ("str", '""'), ("int", "0"), ("float", "0.0"), ("bool", "False"),
    ("datetime | None", "None"), ("tuple[str, ...]", "()"), ("str | None", "None"),
)  # fmt: skip


def camel(*words: str) -> str:
    return "".join(word.capitalize() for word in words)


@dataclass
class Planted:
    """Findings the generator planted, by (rule, category): what a careful human expects."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, rule: str, category: str, times: int = 1) -> None:
        self.counts[(rule, category)] += times


class ModuleWriter:
    """Random but realistic Python source, built block by block until a line budget is met."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def noun(self) -> str:
        return self.rng.choice(NOUNS)

    def verb(self) -> str:
        return self.rng.choice(VERBS)

    def header(self, module: str, sibling_imports: list[str]) -> list[str]:
        noun, verb = self.noun(), self.verb()
        lines = [
            f'"""{camel(noun)} {module.rsplit(".", 1)[-1].replace("_", " ")}: '
            f"{verb} and serve {noun} data for the {module.split('.')[1]} domain.",
            "",
            f"Owned by the {module.split('.')[1]} team. Keep I/O in the async methods;",
            "the pure helpers are shared with the batch jobs.",
            '"""',
            "",
            "from __future__ import annotations",
            "",
            "import asyncio",
            "import logging",
            "from collections.abc import Callable, Iterable, Mapping",
            "from dataclasses import dataclass, field",
            "from datetime import datetime, timedelta",
            "from enum import Enum",
            "from typing import Any",
            "",
        ]
        lines += sibling_imports
        lines += ["", "logger = logging.getLogger(__name__)"]
        return lines

    def block(self) -> list[str]:
        makers: tuple[Callable[[], list[str]], ...] = (
            self.dataclass_block,
            self.service_block,
            self.service_block,
            self.async_handler_block,
            self.async_handler_block,
            self.pure_function_block,
            self.enum_block,
            self.error_block,
        )
        return ["", "", *self.rng.choice(makers)()]

    def dataclass_block(self) -> list[str]:
        noun = self.noun()
        name = camel(noun, self.rng.choice(("snapshot", "record", "view", "spec", "result")))
        lines = [
            "@dataclass(frozen=True)",
            f"class {name}:",
            f'    """Immutable {noun} data passed between the service and its callers."""',
            "",
            f"    {noun}_id: str",
        ]
        for _ in range(self.rng.randint(2, 7)):
            annotation, default = self.rng.choice(FIELD_TYPES)
            lines.append(f"    {self.noun()}_{self.rng.choice(('id', 'count', 'label', 'at'))}: "
                         f"{annotation} = {default}")  # fmt: skip
        lines += [
            "    tags: tuple[str, ...] = ()",
            "",
            "    def is_stale(self, now: datetime, ttl: timedelta) -> bool:",
            f"        # {camel(noun)}s without a timestamp are always refreshed.",
            "        created = getattr(self, 'created_at', None)",
            "        return created is None or now - created > ttl",
        ]
        return lines

    def service_block(self) -> list[str]:
        noun, other = self.noun(), self.noun()
        name = camel(noun, self.rng.choice(("service", "repository", "coordinator", "client")))
        lines = [
            f"class {name}:",
            f'    """Coordinates {noun} reads and writes for one tenant."""',
            "",
            "    def __init__(",
            f"        self, backend: Any, clock: Callable[[], datetime], *, max_{other}s: int = 100",
            "    ) -> None:",
            "        self._backend = backend",
            "        self._clock = clock",
            f"        self._max_{other}s = max_{other}s",
            "        self._cache: dict[str, Any] = {}",
        ]
        for _ in range(self.rng.randint(2, 6)):
            verb = self.verb()
            if self.rng.random() < 0.6:
                lines += [
                    "",
                    f"    async def {verb}_{noun}(self, {noun}_id: str, *, force: bool = False) -> Any:",
                    f'        """{verb.capitalize()} one {noun}, from the cache unless ``force``."""',
                    f"        if not force and {noun}_id in self._cache:",
                    f"            return self._cache[{noun}_id]",
                    "        # The backend round-trip dominates latency; keep it single.",
                    f"        result = await self._backend.{verb}({noun}_id)",
                    "        if result is None:",
                    f'            logger.info("{noun} %s not found", {noun}_id)',
                    "            return None",
                    f"        if len(self._cache) >= self._max_{other}s:",
                    "            self._cache.pop(next(iter(self._cache)))",
                    f"        self._cache[{noun}_id] = result",
                    "        return result",
                ]  # fmt: skip
            else:
                lines += [
                    "",
                    f"    def {verb}_{other}s(self, items: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:",
                    f"        cutoff = self._clock() - timedelta(days={self.rng.randint(1, 90)})",
                    "        selected = [",
                    "            dict(item, seen_at=self._clock().isoformat())",
                    "            for item in items",
                    '            if item.get("updated_at") is None or item["updated_at"] >= cutoff',
                    "        ]",
                    f"        selected.sort(key=lambda item: str(item.get('{other}_id', '')))",
                    f"        return selected[: self._max_{other}s]",
                ]  # fmt: skip
        return lines

    def async_handler_block(self) -> list[str]:
        noun, verb = self.noun(), self.verb()
        return [
            f"async def handle_{verb}_{noun}(",
            "    request: Mapping[str, Any], *, service: Any, timeout: float = 5.0",
            ") -> dict[str, Any]:",
            f'    """Validate a {verb} request for a {noun} and hand it to the service."""',
            '    payload = request.get("payload") or {}',
            "    try:",
            f'        {noun}_id = str(payload["{noun}_id"])',
            "    except KeyError as error:",
            f'        logger.warning("{verb} request without %s", error)',
            '        return {"status": "error", "reason": f"missing {error}"}',
            "    try:",
            "        async with asyncio.timeout(timeout):",
            f"            result = await service.{verb}_{noun}({noun}_id)",
            "    except TimeoutError:",
            f"        # Clients retry {verb} requests; a timeout is not an error for them.",
            '        return {"status": "pending", "retry_after": timeout}',
            '    return {"status": "ok", "result": result}',
        ]

    def pure_function_block(self) -> list[str]:
        noun, verb = self.noun(), self.verb()
        threshold = self.rng.randint(2, 500)
        return [
            f"def {verb}_{noun}_batches(",
            f"    {noun}s: Iterable[Mapping[str, Any]], batch_size: int = {threshold}",
            ") -> list[list[Mapping[str, Any]]]:",
            f'    """Split {noun}s into batches; keeps order, drops empty entries."""',
            "    batches: list[list[Mapping[str, Any]]] = [[]]",
            f"    for item in {noun}s:",
            "        if not item:",
            "            continue",
            "        if len(batches[-1]) >= batch_size:",
            "            batches.append([])",
            "        batches[-1].append(item)",
            "    return [batch for batch in batches if batch]",
        ]

    def enum_block(self) -> list[str]:
        noun = self.noun()
        states = self.rng.sample(("pending", "active", "paused", "failed", "done", "expired"), 4)
        return [
            f"class {camel(noun)}State(Enum):",
            *(f'    {state.upper()} = "{state}"' for state in states),
            "",
            "    @property",
            "    def is_terminal(self) -> bool:",
            f"        return self in {{{camel(noun)}State.{states[-1].upper()}}}",
        ]

    def error_block(self) -> list[str]:
        noun = self.noun()
        return [
            f"class {camel(noun)}Error(RuntimeError):",
            f'    """A {noun} operation failed; ``retryable`` tells the worker what to do."""',
            "",
            f"    def __init__(self, {noun}_id: str, reason: str, *, retryable: bool = False) -> None:",
            f'        super().__init__(f"{noun} {{{noun}_id}}: {{reason}}")',
            f"        self.{noun}_id = {noun}_id",
            "        self.retryable = retryable",
        ]  # fmt: skip

    def test_block(self) -> list[str]:
        noun, verb = self.noun(), self.verb()
        size = self.rng.randint(1, 9)
        return [
            "",
            "",
            f"def test_{verb}_{noun}_batches_keeps_order_{size}() -> None:",
            f'    items = [{{"{noun}_id": str(index)}} for index in range({size * 3})]',
            "",
            f"    batches = [items[i : i + {size}] for i in range(0, len(items), {size})]",
            "",
            "    assert [item for batch in batches for item in batch] == items",
            f"    assert all(len(batch) <= {size} for batch in batches)",
        ]  # fmt: skip

    def fill(self, lines: list[str], target_lines: int, *, tests: bool = False) -> list[str]:
        while len(lines) < target_lines:
            lines += self.test_block() if tests else self.block()
        return lines


@dataclass(frozen=True)
class CandidateCode:
    """A candidate file's own imports (go in the header) and its legacy sites or look-alikes."""

    imports: list[str]
    body: list[str]


@dataclass(frozen=True)
class ModuleSlot:
    """Where one generated module goes: its dotted name and its path in the tree."""

    module: str

    @property
    def path(self) -> Path:
        return Path(*self.module.split(".")).with_suffix(".py")

    @property
    def package_parts(self) -> list[str]:
        return self.module.split(".")[:-1]

    def relative_prefix_to_root(self) -> str:
        """The dots of a relative import that reaches ``backend`` from this module."""
        return "." * len(self.package_parts)


class MonorepoGenerator:
    def __init__(
        self, out: Path, files: int, seed: int, mean_lines: int, mentions: int = 0
    ) -> None:
        self.out = out
        self.files = files
        self.seed = seed
        self.mean_lines = mean_lines
        self.mentions = mentions
        self.mentioned = 0
        # Its own generator: a tree without mentions is byte for byte the one
        # earlier versions generated.
        self.mention_rng = random.Random(seed + 1)
        self.rng = random.Random(seed)
        self.writer = ModuleWriter(self.rng)
        self.planted = Planted()
        self.written: dict[Path, str] = {}
        self.python_files = 0
        self.reexports = 0

    # -- layout -----------------------------------------------------------------

    def packages(self, count: int) -> list[list[str]]:
        """Package paths under ``backend`` of depth 1 to 5, every parent included."""
        seen: set[tuple[str, ...]] = set()
        ordered: list[list[str]] = []
        while len(ordered) < count:
            depth = self.rng.choice((1, 2, 2, 3, 3, 3, 4, 4, 5))
            parts = [self.rng.choice(DOMAINS)]
            parts += self.rng.sample(SUBPACKAGES, depth - 1)
            for end in range(1, len(parts) + 1):
                prefix = tuple(parts[:end])
                if prefix not in seen:
                    seen.add(prefix)
                    ordered.append(list(prefix))
        return ordered

    def module_slots(self, packages: list[list[str]]) -> Iterator[ModuleSlot]:
        """Fresh module names in random packages, never the same one twice."""
        used: set[str] = set()
        while True:
            package = self.rng.choice(packages)
            name = f"{self.rng.choice(NOUNS)}_{self.rng.choice(MODULE_SUFFIXES)}"
            module = ".".join([ROOT_PACKAGE, *package, name])
            if module not in used:
                used.add(module)
                yield ModuleSlot(module)

    def target_lines(self) -> int:
        # Log-normal sizes, like real trees: mostly a few hundred lines, a tail of
        # multi-thousand-line modules. 0.18 = sigma**2 / 2 keeps the mean on target.
        median = self.mean_lines / 1.197
        return max(30, min(4000, int(self.rng.lognormvariate(0, 0.6) * median)))

    def write(self, path: Path, text: str) -> None:
        assert path not in self.written, path
        self.written[path] = text
        if path.suffix == ".py":
            self.python_files += 1

    # -- content -----------------------------------------------------------------

    def generate(self) -> None:
        packages = self.packages(max(8, self.files // 12))
        for package in packages:
            self.write(Path(ROOT_PACKAGE, *package, "__init__.py"), "")
        self.write(Path(ROOT_PACKAGE, "__init__.py"), '"""The backend monorepo."""\n')
        self.write_legacy_definitions()

        slots = self.module_slots(packages)
        candidate_count = max(12, self.files // 130)
        candidates = [next(slots) for _ in range(candidate_count)]
        handlers = self.write_candidates(candidates)
        self.write_candidate_tests(handlers, max(2, candidate_count // 6))
        written_modules = list(candidates)
        while self.python_files < self.files:
            slot = next(slots)
            self.write_filler(slot, self.rng.sample(written_modules, 3))
            written_modules.append(slot)
            # About one module in eight has a unit test file beside the package.
            if self.python_files < self.files and self.rng.random() < 0.12:
                self.write_filler_test(slot)
        self.write_project_files()

    def write_filler(self, slot: ModuleSlot, neighbours: list[ModuleSlot]) -> None:
        sibling_imports = sorted(
            f"from {other.module} import {camel(self.writer.noun())}Error" for other in neighbours
        )
        mention = self.mention_block()
        if mention is not None:
            sibling_imports = [*mention.imports, *sibling_imports]
        lines = self.writer.header(slot.module, sibling_imports)
        if mention is not None:
            lines += mention.body
        self.write(slot.path, "\n".join(self.writer.fill(lines, self.target_lines())) + "\n")

    def mention_block(self) -> CandidateCode | None:
        """Names the context types without calling a factory, in about mentions/files modules."""
        if self.mentioned >= self.mentions:
            return None
        remaining = max(1, self.files - self.python_files)
        if self.mention_rng.random() >= (self.mentions - self.mentioned) / remaining:
            return None
        self.mentioned += 1
        noun = self.mention_rng.choice(NOUNS)
        return CandidateCode(
            imports=[
                f"from {CONTEXT_MODULE} import {WEBSOCKET_CONTEXT}",
                f"from {DEPENDENCIES_MODULE} import UserExecutionContext",
            ],
            body=[
                "",
                "",
                f"def describe_{noun}_context(context: UserExecutionContext) -> str:",
                '    """The ids a log line needs; the context comes from the session."""',
                '    return f"{context.user_id}/{context.thread_id}"',
                "",
                "",
                f"def is_{noun}_websocket_view(value: object) -> bool:",
                f"    return isinstance(value, {WEBSOCKET_CONTEXT})",
                "",
                "",
                f"async def handle_{noun}_with_context(",
                f"    context: UserExecutionContext, websocket: {WEBSOCKET_CONTEXT} | None = None",
                ") -> dict[str, Any]:",
                f'    """Serve a {noun} request with the conversation\'s context; never builds one."""',
                '    return {"user": context.user_id, "connected": websocket is not None}',
            ],
        )  # fmt: skip

    def write_filler_test(self, slot: ModuleSlot) -> None:
        test_path = Path("tests", *slot.package_parts[1:], f"test_{slot.path.stem}.py")
        if test_path not in self.written:
            lines = ['"""Unit tests; pure functions only, no I/O."""', ""]
            self.write(test_path, "\n".join(self.writer.fill(lines, 80, tests=True)) + "\n")

    def write_legacy_definitions(self) -> None:
        core = Path(ROOT_PACKAGE, "websocket_core")
        self.write(core / "__init__.py", '"""Websocket layer shared by every domain."""\n')
        self.write(core / "dependencies.py", LEGACY_DEPENDENCIES)
        self.write(core / "context.py", LEGACY_CONTEXT)
        # The census counts the legacy classes too: this UserExecutionContext is
        # one of several (review), this WebSocketContext the only one (keep).
        self.planted.add("CTX104", "review")
        self.planted.add("CTX104", "keep")

    def write_candidates(self, slots: list[ModuleSlot]) -> list[ModuleSlot]:
        """Files mentioning the legacy names; returns the handler modules tests patch."""
        kinds: tuple[Callable[[ModuleSlot], CandidateCode], ...] = (
            self.keyword_handler,
            self.same_name_method,
            self.module_alias_handler,
            self.comments_and_strings,
            self.relative_alias_handler,
            self.same_name_function,
            self.reexport_consumer,
            self.suppressed_and_dynamic,
            self.duplicate_context_class,
        )
        handlers = []
        for index, slot in enumerate(slots):
            kind = kinds[index % len(kinds)]
            code = kind(slot)
            lines = [*self.writer.header(slot.module, code.imports), *code.body]
            self.write(slot.path, "\n".join(self.writer.fill(lines, self.target_lines())) + "\n")
            if kind == self.keyword_handler:
                handlers.append(slot)
        return handlers

    def write_candidate_tests(self, handlers: list[ModuleSlot], count: int) -> None:
        for index in range(count):
            handler = handlers[index % len(handlers)]
            path = Path("tests", "integration", f"test_{handler.path.stem}_{index}.py")
            lines = [
                f'"""Integration tests of {handler.module}: fresh contexts on purpose."""',
                "",
                "from unittest import mock",
                "",
                f"from {CONTEXT_MODULE} import {WEBSOCKET_CONTEXT}",
                f"from {DEPENDENCIES_MODULE} import {FACTORY}, {MANAGER_FACTORY}",
                "",
                "",
                "def test_each_test_builds_an_isolated_context() -> None:",
                f'    context = {FACTORY}(user_id="u-1", thread_id="t-{index}")',
                f"    manager = {MANAGER_FACTORY}(context)",
                f"    websocket_context = {WEBSOCKET_CONTEXT}.create_for_user(",
                f'        websocket=None, user_id="u-1", thread_id="t-{index}", run_id=context.run_id',
                "    )",
                "",
                "    assert manager.context is context",
                "    assert websocket_context.thread_id == context.thread_id",
                "",
                "",
                "def test_handler_builds_its_context_through_the_factory() -> None:",
                f'    with mock.patch("{handler.module}.{FACTORY}") as factory:',
                "        factory.assert_not_called()",
            ]  # fmt: skip
            self.planted.add("CTX001", "keep")
            self.planted.add("CTX003", "keep")
            self.planted.add("CTX002", "keep")
            self.planted.add("CTX102", "review")
            self.write(path, "\n".join(self.writer.fill(lines, 120, tests=True)) + "\n")

    # Each kind returns the lines of its legacy sites and look-alikes and
    # records what it planted. Filler blocks follow, to a realistic size.

    def keyword_handler(self, slot: ModuleSlot) -> CandidateCode:
        name = camel(slot.path.stem.split("_")[0], "message", "handler")
        self.planted.add("CTX001", "rewrite", 2)
        self.planted.add("CTX002", "rewrite")
        self.planted.add("CTX003", "rewrite")
        self.planted.add("CTX101", "review")
        return CandidateCode(
            imports=[
                "import uuid",
                f"from {CONTEXT_MODULE} import {WEBSOCKET_CONTEXT}",
                f"from {DEPENDENCIES_MODULE} import {FACTORY}, {MANAGER_FACTORY}",
            ],
            body=[
                "",
                "",
                f"class {name}:",
                '    """Handles the messages of one websocket connection."""',
                "",
                "    async def handle_message(self, user_id: str, websocket: Any, message: Any) -> None:",
                '        thread_id = message.payload.get("thread_id") or message.thread_id',
                "        run_id = str(uuid.uuid4())",
                f"        context = {FACTORY}(user_id=user_id, thread_id=thread_id, run_id=run_id)",
                f"        ws_manager = {MANAGER_FACTORY}(context)",
                f"        websocket_context = {WEBSOCKET_CONTEXT}.create_for_user(",
                "            websocket=websocket,",
                "            user_id=user_id,",
                "            thread_id=thread_id,",
                "            run_id=context.run_id,",
                "            connection_id=message.connection_id,",
                "        )",
                '        await ws_manager.send_to_user({"type": "ack", "run": websocket_context.run_id})',
                "",
                "    async def handle_resume(self, user_id: str, message: Any) -> Any:",
                "        # Resuming reads the thread the client names; the run id is the client's too.",
                f"        return {FACTORY}(user_id, message.thread_id, message.run_id)",
            ],
        )  # fmt: skip

    def same_name_method(self, slot: ModuleSlot) -> CandidateCode:
        # A different API that merely shares the name: never a finding.
        return CandidateCode(
            imports=[],
            body=[
                "",
                "",
                "class AgentInstanceFactory:",
                '    """Builds agent instances; its execution contexts are per agent run."""',
                "",
                "    def __init__(self, registry: Any) -> None:",
                "        self._registry = registry",
                "",
                f"    async def {FACTORY}(self, user_id: str, thread_id: str, run_id: str) -> Any:",
                "        return {'user_id': user_id, 'thread_id': thread_id, 'run_id': run_id}",
                "",
                "    async def create_agent(self, user_id: str, thread_id: str) -> Any:",
                f'        execution = await self.{FACTORY}(user_id, thread_id, run_id="agent")',
                "        return self._registry.build(execution)",
                "",
                "",
                "async def start_agent(factory: AgentInstanceFactory, user_id: str) -> Any:",
                f'    return await factory.{FACTORY}(user_id, thread_id="t", run_id="r")',
            ],
        )  # fmt: skip

    def module_alias_handler(self, slot: ModuleSlot) -> CandidateCode:
        self.planted.add("CTX001", "rewrite")
        self.planted.add("CTX001", "review", 2)
        return CandidateCode(
            imports=[
                f"import {DEPENDENCIES_MODULE} as ws_deps",
            ],
            body=[
                "",
                "",
                "async def open_thread(user_id: str, thread_id: str, run_id: str) -> Any:",
                f"    return ws_deps.{FACTORY}(user_id, thread_id, run_id)",
                "",
                "",
                "def thread_snapshot(user_id: str, thread_id: str) -> Any:",
                "    # Runs in the admin thread pool, outside the event loop.",
                f"    return ws_deps.{FACTORY}(user_id=user_id, thread_id=thread_id)",
                "",
                "",
                "async def persist_thread(user_id: str, thread_id: str, db_session: Any) -> Any:",
                f"    context = ws_deps.{FACTORY}(",
                "        user_id=user_id, thread_id=thread_id, db_session=db_session",
                "    )",
                "    await db_session.commit()",
                "    return context",
            ],
        )  # fmt: skip

    def comments_and_strings(self, slot: ModuleSlot) -> CandidateCode:
        # Commented-out calls and prose: the pre-filter sees them, the audit must not.
        return CandidateCode(
            imports=[],
            body=[
                "",
                "",
                "MIGRATION_NOTE = (",
                f'    "This module stopped calling {FACTORY} per message; "',
                '    "see the session manager."',
                ")",
                "",
                "",
                "async def resume_conversation(session_manager: Any, user_id: str, thread_id: str) -> Any:",
                "    # Legacy, kept for reference until the rollout finishes:",
                f"    # context = {FACTORY}(user_id=user_id, thread_id=thread_id)",
                f"    # manager = {MANAGER_FACTORY}(context)",
                '    """Return the live session; never builds a second WebSocketContext."""',
                "    return await session_manager.get_or_create_user_session(user_id, thread_id)",
            ],
        )  # fmt: skip

    def relative_alias_handler(self, slot: ModuleSlot) -> CandidateCode:
        self.planted.add("CTX001", "rewrite")
        self.planted.add("CTX003", "rewrite")
        dots = slot.relative_prefix_to_root()
        return CandidateCode(
            imports=[
                f"from {dots}websocket_core.dependencies import {FACTORY} as make_context",
                f"from {dots}websocket_core.dependencies import {MANAGER_FACTORY}",
            ],
            body=[
                "",
                "",
                "async def stream_reply(user_id: str, thread_id: str, chunks: Iterable[str]) -> None:",
                "    async def send_all() -> None:",
                f"        manager = {MANAGER_FACTORY}(",
                "            make_context(user_id=user_id, thread_id=thread_id)",
                "        )",
                "        for chunk in chunks:",
                "            await manager.send_to_user({'type': 'chunk', 'text': chunk})",
                "",
                "    await send_all()",
            ],
        )  # fmt: skip

    def same_name_function(self, slot: ModuleSlot) -> CandidateCode:
        # A module-level function with the legacy name in another module: the
        # configured targets name the real one, so these calls are not legacy.
        return CandidateCode(
            imports=[],
            body=[
                "",
                "",
                f"def {FACTORY}(user_id: str, thread_id: str) -> dict[str, str]:",
                '    """The evaluation harness\'s own context: a plain dict of ids."""',
                '    return {"user_id": user_id, "thread_id": thread_id}',
                "",
                "",
                "async def evaluate(user_id: str, thread_ids: Iterable[str]) -> list[dict[str, str]]:",
                f"    return [{FACTORY}(user_id, thread_id) for thread_id in thread_ids]",
            ],
        )  # fmt: skip

    def reexport_consumer(self, slot: ModuleSlot) -> CandidateCode:
        # A compat module re-exports under another name; this module imports
        # the alias from it and calls it. Every other compat module declares the
        # re-export in __all__ (deliberate); the rest only import the name, and
        # importing it from them is CTX103.
        compat = ".".join([*slot.package_parts, f"compat_{slot.path.stem}"])
        self.reexports += 1
        declared = self.reexports % 2 == 0
        self.write(
            ModuleSlot(compat).path,
            '"""Old import paths, kept for modules not yet migrated."""\n\n'
            f"from {DEPENDENCIES_MODULE} import {FACTORY} as build_user_context\n"
            + ('\n__all__ = ["build_user_context"]\n' if declared else ""),
        )
        self.planted.add("CTX001", "rewrite")
        if not declared:
            self.planted.add("CTX103", "review")
        return CandidateCode(
            imports=[
                f"from {compat} import build_user_context",
            ],
            body=[
                "",
                "",
                "async def handle_feedback(user_id: str, message: Any) -> Any:",
                "    context = build_user_context(user_id=user_id, thread_id=message.thread_id)",
                '    context.conversation_state["feedback"] = message.payload',
                "    return context",
            ],
        )

    def suppressed_and_dynamic(self, slot: ModuleSlot) -> CandidateCode:
        self.planted.add("CTX001", "keep")
        self.planted.add("CTX001", "review", 2)
        return CandidateCode(
            imports=["import functools", f"from {DEPENDENCIES_MODULE} import {FACTORY}"],
            body=[
                "",
                "",
                "async def preview(user_id: str, thread_id: str) -> Any:",
                "    # A preview must not touch the conversation: a scratch context on purpose.",
                f"    return {FACTORY}(user_id=user_id, thread_id=thread_id)  # ctxmigrate: ignore[CTX001]",
                "",
                "",
                "async def compare(user_id: str, thread_ids: Iterable[str]) -> list[Any]:",
                f"    for_thread = functools.partial({FACTORY}, user_id)",
                "    return [for_thread(thread_id) for thread_id in thread_ids]",
                "",
                "",
                "async def fan_out(user_id: str, thread_ids: Iterable[str]) -> list[Any]:",
                f"    build = lambda thread_id: {FACTORY}(user_id=user_id, thread_id=thread_id)",
                "    return [build(thread_id) for thread_id in thread_ids]",
            ],
        )  # fmt: skip

    def duplicate_context_class(self, slot: ModuleSlot) -> CandidateCode:
        self.planted.add("CTX104", "review")
        return CandidateCode(
            imports=[],
            body=[
                "",
                "",
                "@dataclass",
                "class UserExecutionContext:",
                '    """This domain\'s own copy, from before the shared one existed."""',
                "",
                "    user_id: str",
                "    thread_id: str",
                "    metadata: dict[str, Any] = field(default_factory=dict)",
            ],
        )

    def write_project_files(self) -> None:
        self.write(Path("pyproject.toml"), PYPROJECT)
        self.write(Path(".gitignore"), ".venv/\nbuild/\n__pycache__/\n.ctxmigrate_cache/\n")
        self.write(
            Path("README.md"), "# backend\n\nSynthetic monorepo for ctxmigrate benchmarks.\n"
        )

    def manifest(self) -> dict[str, object]:
        python_files = [path for path in self.written if path.suffix == ".py"]
        return {
            "generator_version": GENERATOR_VERSION,
            "seed": self.seed,
            "files": self.files,
            "mean_lines": self.mean_lines,
            "mentions": self.mentions,
            "mention_files": self.mentioned,
            "python_files": len(python_files),
            "lines": sum(self.written[path].count("\n") for path in python_files),
            "bytes": sum(len(self.written[path].encode()) for path in python_files),
            "planted": {
                f"{rule}/{category}": count
                for (rule, category), count in sorted(self.planted.counts.items())
            },
        }

    def save(self) -> dict[str, object]:
        if self.out.exists():
            shutil.rmtree(self.out)
        for path, text in self.written.items():
            target = self.out / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        manifest = self.manifest()
        (self.out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        commit_tree(self.out)
        return manifest


def commit_tree(out: Path) -> None:
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    git += ["-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "Synthetic monorepo"]):
        subprocess.run([*git, *args], cwd=out, check=True)


def generate_monorepo(
    out: Path,
    files: int = DEFAULT_FILES,
    seed: int = 7,
    mean_lines: int = DEFAULT_MEAN_LINES,
    mentions: int = 0,
) -> dict[str, object]:
    """Write the tree to ``out`` (replacing it) and return its manifest."""
    generator = MonorepoGenerator(out, files, seed, mean_lines, mentions)
    generator.generate()
    return generator.save()


def read_manifest(out: Path) -> dict[str, object] | None:
    try:
        manifest: dict[str, object] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest


LEGACY_DEPENDENCIES = f'''"""Per-request dependencies of the websocket layer (legacy: one context per call)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass
class UserExecutionContext:
    user_id: str
    thread_id: str
    run_id: str
    db_session: Any = None
    websocket_connection_id: str | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    conversation_state: dict[str, Any] = field(default_factory=dict)


def {FACTORY}(
    user_id: str,
    thread_id: str,
    run_id: str | None = None,
    db_session: Any = None,
    websocket_connection_id: str | None = None,
) -> UserExecutionContext:
    return UserExecutionContext(
        user_id, thread_id, run_id or uuid.uuid4().hex, db_session, websocket_connection_id
    )


class WebSocketManager:
    def __init__(self, context: UserExecutionContext) -> None:
        self.context = context

    async def send_to_user(self, event: dict[str, Any]) -> None:
        return None


def {MANAGER_FACTORY}(context: UserExecutionContext) -> WebSocketManager:
    return WebSocketManager(context)
'''

LEGACY_CONTEXT = f'''"""The websocket layer's per-connection context."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class {WEBSOCKET_CONTEXT}:
    websocket: Any
    connection_id: str
    user_id: str
    thread_id: str
    run_id: str

    @classmethod
    def create_for_user(
        cls, websocket: Any, user_id: str, thread_id: str, run_id: str, connection_id: str = ""
    ) -> {WEBSOCKET_CONTEXT}:
        return cls(websocket, connection_id or uuid.uuid4().hex, user_id, thread_id, run_id)
'''

PYPROJECT = f"""[project]
name = "backend"
version = "0.0.0"
requires-python = ">=3.11"

# The evaluation harness has its own module-level {FACTORY}: name the real
# legacy definitions instead of discovering every function with that name.
[tool.ctxmigrate]
factories = ["{DEPENDENCIES_MODULE}.{FACTORY}"]
websocket-contexts = ["{CONTEXT_MODULE}.{WEBSOCKET_CONTEXT}"]
manager-factories = ["{DEPENDENCIES_MODULE}.{MANAGER_FACTORY}"]
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="directory to (re)create")
    parser.add_argument("--files", type=int, default=DEFAULT_FILES, help="number of .py files")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--mean-lines", type=int, default=DEFAULT_MEAN_LINES)
    parser.add_argument(
        "--mentions", type=int, default=0, help="modules that only name the context types"
    )
    args = parser.parse_args(argv)
    manifest = generate_monorepo(args.out, args.files, args.seed, args.mean_lines, args.mentions)
    print(
        f"{args.out}: {manifest['python_files']} Python files, {manifest['lines']} lines, "
        f"{manifest['bytes']} bytes"
    )


if __name__ == "__main__":
    main()
