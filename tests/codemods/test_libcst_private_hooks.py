"""The private LibCST hooks ctxmigrate overrides still exist with the shapes it relies on.

The import edits override two private ``AddImportsVisitor`` methods (to join a
new import to the existing top block without a stray blank line), and span
computation subclasses the private ``CodegenState`` and drives
``Module._codegen`` directly (LibCST's ``PositionProvider`` costs several times
more). A LibCST release may rename or reshape any of them without notice:
``libcst<2`` in pyproject.toml bounds the risk, and this test turns a change
into one loud failure that names the hook, instead of goldens drifting.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import libcst as cst
import pytest
from libcst._nodes.internal import CodegenState
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor


def parameters(function: Callable[..., object]) -> list[tuple[str, inspect._ParameterKind]]:
    return [(p.name, p.kind) for p in inspect.signature(function).parameters.values()]


POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
KEYWORD = inspect.Parameter.KEYWORD_ONLY

HOOKS: list[tuple[str, Callable[[], object], list[tuple[str, inspect._ParameterKind]]]] = [
    (
        "AddImportsVisitor._split_module",
        lambda: AddImportsVisitor._split_module,
        [("self", POSITIONAL), ("orig_module", POSITIONAL), ("updated_module", POSITIONAL)],
    ),
    (
        "AddImportsVisitor._insert_empty_line",
        lambda: AddImportsVisitor._insert_empty_line,
        [("self", POSITIONAL), ("statements", POSITIONAL)],
    ),
    (
        "CodegenState.record_syntactic_position",
        lambda: CodegenState.record_syntactic_position,
        [
            ("self", POSITIONAL),
            ("node", POSITIONAL),
            ("start_node", KEYWORD),
            ("end_node", KEYWORD),
        ],
    ),
    (
        "Module._codegen",
        lambda: cst.Module._codegen,
        [("self", POSITIONAL), ("state", POSITIONAL), ("kwargs", inspect.Parameter.VAR_KEYWORD)],
    ),
]


@pytest.mark.parametrize(("hook", "lookup", "expected"), HOOKS, ids=[hook for hook, *_ in HOOKS])
def test_private_hook_exists_with_the_expected_signature(
    hook: str, lookup: Callable[[], Callable[..., object]], expected: object
) -> None:
    try:
        function = lookup()
    except AttributeError as missing:
        pytest.fail(f"LibCST private hook {hook} is gone ({missing}); ctxmigrate overrides it")
    assert parameters(function) == expected, (
        f"LibCST private hook {hook} changed signature: {inspect.signature(function)}; "
        "ctxmigrate's override must be adapted"
    )


def test_codegen_state_is_built_from_indent_and_newline_and_collects_tokens() -> None:
    fields = {field.name for field in dataclasses.fields(CodegenState)}
    assert {"default_indent", "default_newline", "tokens"} <= fields, (
        f"LibCST private CodegenState fields changed: {sorted(fields)}"
    )
    module = cst.parse_module("x = 1\n")
    state = CodegenState(default_indent="    ", default_newline="\n")
    module._codegen(state)
    assert "".join(state.tokens) == "x = 1\n", "CodegenState.tokens no longer holds the code"


def test_add_imports_visitor_still_calls_both_hooks() -> None:
    """An override that LibCST stops calling would silently change every import edit."""
    called: list[str] = []

    class Spy(AddImportsVisitor):
        def _split_module(self, *args: object) -> object:  # type: ignore[override]
            called.append("_split_module")
            return super()._split_module(*args)  # type: ignore[arg-type]

        def _insert_empty_line(self, *args: object) -> object:  # type: ignore[override]
            called.append("_insert_empty_line")
            return super()._insert_empty_line(*args)  # type: ignore[arg-type]

    context = CodemodContext()
    module = cst.parse_module("import os\n\nx = 1\n")
    AddImportsVisitor.add_needed_import(context, "sys")
    Spy(context).transform_module(module)
    assert called == ["_split_module", "_insert_empty_line"], (
        f"AddImportsVisitor no longer calls its private hooks as expected: {called}"
    )
