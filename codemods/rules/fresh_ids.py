"""CTX101 fresh-ids-per-message: a new thread/run id right before a legacy context.

A thread/run id generated (``uuid4()``, ``generate_thread_id()``, ...) in the
same function right before a legacy context is built from it: every message
then starts a new conversation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ctxmigrate.codemods.audit_sites import RELATED_LINE, AuditSite
from ctxmigrate.codemods.rules.base import Example, RuleDefinition

if TYPE_CHECKING:
    import libcst as cst

    from ctxmigrate.codemods.analysis.references import RawReference, ReferenceFinder

# Callees that mint a new identifier on every call.
FRESH_ID_CALLEE = re.compile(
    r"^(?:uuid[1-8]|token_hex|token_urlsafe|token_bytes|urandom|getrandbits|ulid|new_ulid"
    r"|nanoid|(?:generate|gen|new|make|create|random)_\w*(?:id|uuid))$"
)
# The ids whose freshness matters: the conversation and the run.
_ID_PARAMETERS = ("thread_id", "run_id")

_DEPS = {"app/deps.py": "def create_user_execution_context(user_id, thread_id):\n    pass\n"}
VALID = (
    Example(
        {
            **_DEPS,
            "app/handler.py": "from app.deps import create_user_execution_context\n\n\n"
            "async def handle(message):\n"
            "    return create_user_execution_context(message.user_id, message.thread_id)\n",
        },
        "app/handler.py",
        None,
    ),
)
INVALID = (
    Example(
        {
            **_DEPS,
            "app/handler.py": "import uuid\n\n"
            "from app.deps import create_user_execution_context\n\n\n"
            "async def handle(message):\n"
            "    thread_id = uuid.uuid4().hex\n"
            "    return create_user_execution_context(message.user_id, thread_id)\n",
        },
        "app/handler.py",
        "review",
    ),
)


def _fresh_id_generator(node: cst.CSTNode) -> str | None:
    """The spelled callee of a fresh-id call inside ``node``, if any."""
    import libcst as cst

    from ctxmigrate.codemods.analysis.scopes import cst_dotted, iter_nodes

    for child in iter_nodes(node):
        if isinstance(child, cst.Call):
            dotted = cst_dotted(child.func)
            if dotted is not None and FRESH_ID_CALLEE.match(dotted.rpartition(".")[2]):
                return dotted
    return None


def _signature(ref: RawReference) -> tuple[str, ...]:
    from ctxmigrate.codemods.arguments import call_signature

    return call_signature(ref.target.params, ref.target.spec.signature)


def _passed_ids(ref: RawReference) -> Iterator[tuple[str, cst.BaseExpression]]:
    """(parameter, value) of the thread/run ids a legacy call passes."""
    if ref.call is None:
        return
    signature = _signature(ref)
    for position, arg in enumerate(ref.call.args):
        if arg.star:
            return
        if arg.keyword is not None:
            parameter = arg.keyword.value
        elif position < len(signature):
            parameter = signature[position]
        else:
            continue
        if parameter in _ID_PARAMETERS:
            yield parameter, arg.value


def _fresh_id_message(parameter: str, generator: str, callee: str) -> str:
    consequence = (
        "every message starts a new conversation and loses the previous state"
        if parameter == "thread_id"
        else "every message gets a new run and a new context instead of the session's"
    )
    return (
        f"fresh {parameter} generated per message ({generator}()) right before "
        f"{callee}(...) at line {RELATED_LINE}: {consequence}; take the {parameter} "
        "from the message or the session"
    )


def find_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
    import libcst as cst

    from ctxmigrate.codemods.analysis.scopes import cst_dotted

    reported: set[int] = set()
    for ref in finder.references:
        if ref.usage != "call" or not ref.target.spec.carries_ids:
            continue
        callee = cst_dotted(ref.callee) if ref.callee is not None else None
        callee = callee or ref.target.qualname.rpartition(".")[2]
        for parameter, value in _passed_ids(ref):
            generated_at: cst.CSTNode | None = None
            generator = _fresh_id_generator(value)
            if generator is not None:
                generated_at = value
            elif isinstance(value, cst.Name):
                assigned = [
                    (order, assigned_value)
                    for scope, name, assigned_value, order in finder.assignments
                    if scope is ref.scope and name == value.value and order < ref.order
                ]
                if assigned:
                    _, latest = max(assigned, key=lambda item: item[0])
                    generator = _fresh_id_generator(latest)
                    if generator is not None:
                        generated_at = latest
            if generated_at is None or generator is None or id(generated_at) in reported:
                continue
            reported.add(id(generated_at))
            yield AuditSite(
                RULE,
                generated_at,
                ref.target.qualname,
                ref.scope.report_function,
                _fresh_id_message(parameter, generator, callee),
                related=ref.node,
            )


RULE = RuleDefinition(
    id="CTX101",
    name="fresh-ids-per-message",
    description="A thread/run id generated right before a legacy context is built: "
    "every message starts a new conversation.",
    fixable=False,
    find_sites=find_sites,
    valid=VALID,
    invalid=INVALID,
)
