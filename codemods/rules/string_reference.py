"""CTX102 string-reference: a string that a rewrite of the legacy calls would break.

A string that names a legacy function by import path
(``mock.patch("pkg.handler.create_user_execution_context")``) or by text
(``"create_user_execution_context(" in source``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ctxmigrate.codemods.audit_sites import AuditSite
from ctxmigrate.codemods.rules.base import Example, RuleDefinition

if TYPE_CHECKING:
    from ctxmigrate.codemods.analysis.references import ReferenceFinder

_DOTTED_PATH = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")

_DEPS = {"app/deps.py": "def create_user_execution_context(user_id, thread_id):\n    pass\n"}
VALID = (
    Example(
        {**_DEPS, "app/handler.py": 'GREETING = "create a user execution context"\n'},
        "app/handler.py",
        None,
    ),
)
INVALID = (
    Example(
        {
            **_DEPS,
            "app/test_handler.py": "from unittest import mock\n\n"
            'PATCH = mock.patch("app.deps.create_user_execution_context")\n',
        },
        "app/test_handler.py",
        "review",
    ),
)


def find_sites(finder: ReferenceFinder) -> Iterator[AuditSite]:
    from ctxmigrate.codemods.analysis.project_index import ModuleSymbol
    from ctxmigrate.codemods.sites import Target

    index = finder.index
    methods = {target.spec.method for target in index.targets if target.spec.method is not None}
    # A string naming a legacy class breaks with no rewrite: the class stays.
    # Only the functions' names (whose calls go away) are checked by text.
    legacy_functions = {
        target.qualname.rpartition(".")[2] for target in index.targets if target.spec.method is None
    }
    for node, scope in finder.strings:
        value = node.evaluated_value
        if not isinstance(value, str):
            continue
        last = value.rpartition(".")[2]
        if _DOTTED_PATH.fullmatch(value) and (last in finder.known or last in methods):
            head, *rest = value.split(".")
            # "pkg.ws.WebSocketContext.create_for_user": the class, then its factory.
            factory_method = last in methods
            symbols = index.attribute_chain(
                (ModuleSymbol(head),), rest[:-1] if factory_method else rest
            )
            target = next((s for s in symbols if isinstance(s, Target)), None)
            if target is not None and (not factory_method or target.spec.method == last):
                yield AuditSite(
                    RULE,
                    node,
                    target.qualname,
                    scope.report_function,
                    f"string reference to {value} (a mock.patch/monkeypatch target or an "
                    "import path): once the call sites are rewritten it no longer "
                    "intercepts anything; update it with the migration",
                    keep_in_tests=False,
                )
                continue
        for name in sorted(legacy_functions):
            if value == name or re.search(rf"\b{re.escape(name)}\s*\(", value):
                target = next(t for t in index.targets if t.qualname.endswith("." + name))
                what = f"'{name}('" if value != name else f"'{name}'"
                yield AuditSite(
                    RULE,
                    node,
                    target.qualname,
                    scope.report_function,
                    f"the string names the legacy function by text ({what}): a source-text "
                    "check, patch.object or hasattr-style lookup that a rewrite would break",
                    keep_in_tests=False,
                )
                break


RULE = RuleDefinition(
    id="CTX102",
    name="string-reference",
    description="A string naming a legacy function (mock.patch target, source-text check) "
    "that a rewrite would break.",
    fixable=False,
    find_sites=find_sites,
    valid=VALID,
    invalid=INVALID,
)
