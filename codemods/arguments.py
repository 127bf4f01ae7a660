"""Call-site rewriting shared by the three codemods.

Two halves: mapping a legacy call's arguments onto the legacy signature (so a
positional ``create_user_execution_context(u, t)`` becomes
``user_id=u, thread_id=t``), and building the new call around the configured
target, keeping every argument node (its value, comments and whitespace) as it
was written so a multi-line call stays multi-line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import libcst as cst

from ctxmigrate.codemods.targets import is_expression_target

GENERATOR_EXPRESSION_REASON = (
    "inside a generator expression: await would turn it into an async generator "
    "and break its consumers"
)

# Receivers that a discovered method signature carries but a call never passes.
_IMPLICIT_RECEIVERS = frozenset({"self", "cls"})


@dataclass(frozen=True)
class ArgumentMapping:
    """The call's arguments by legacy parameter name, in the order they were written.

    ``problem`` is the reason the arguments cannot be mapped (the site then
    needs review); ``arguments`` is empty in that case.
    """

    arguments: tuple[tuple[str, cst.Arg], ...] = ()
    problem: str | None = None

    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self.arguments)


def call_signature(params: Sequence[str] | None, legacy_default: Sequence[str]) -> tuple[str, ...]:
    """The parameter names a call is mapped by: the discovered definition's, else the default.

    A discovered method (``WebSocketContext.create_for_user``) lists its
    receiver first; callers never pass it, so it is dropped.
    """
    if params is None:
        return tuple(legacy_default)
    names = tuple(params)
    if names and names[0] in _IMPLICIT_RECEIVERS:
        names = names[1:]
    return names


def map_arguments(call: cst.Call, signature: Sequence[str]) -> ArgumentMapping:
    """Bind each argument of ``call`` to a parameter of ``signature`` as Python would.

    ``signature`` lists names in order, with ``*args`` (``*`` when bare) and
    ``**kwargs`` entries: positional arguments bind only to the names before
    the star, keywords to every plain name; what a star parameter would
    collect has no name the session API could take, so it is a problem.
    """
    bound: list[tuple[str, cst.Arg]] = []
    seen: set[str] = set()
    positional_index = 0
    star = next((i for i, name in enumerate(signature) if name.startswith("*")), len(signature))
    by_position = signature[:star]
    var_positional = next((n for n in signature if n[:1] == "*" and n[1:2] not in ("", "*")), None)
    var_keyword = next((n for n in signature if n.startswith("**")), None)
    names = [name for name in signature if not name.startswith("*")]
    shown = ", ".join(signature)
    for argument in call.args:
        if argument.star == "*":
            return ArgumentMapping(
                problem="passes *args: cannot map *args/**kwargs to the session API"
            )
        if argument.star == "**":
            return ArgumentMapping(
                problem="passes **kwargs: cannot map *args/**kwargs to the session API"
            )
        if argument.keyword is None:
            if positional_index >= len(by_position):
                positional = sum(1 for arg in call.args if arg.keyword is None)
                if var_positional is not None:
                    problem = (
                        f"passes {positional} positional arguments; the legacy signature "
                        f"({shown}) names {len(by_position)} and collects the rest in "
                        f"{var_positional}, which the session API cannot take"
                    )
                else:
                    problem = (
                        f"passes {positional} positional arguments; the legacy signature "
                        f"({shown}) takes at most {len(by_position)}"
                    )
                return ArgumentMapping(problem=problem)
            name = by_position[positional_index]
            positional_index += 1
        else:
            name = argument.keyword.value
            if name not in names and var_keyword is not None:
                return ArgumentMapping(
                    problem=(
                        f"passes keyword argument {name!r}, which the legacy signature "
                        f"({shown}) collects in {var_keyword}; the session API cannot take it"
                    )
                )
            if name not in names:
                return ArgumentMapping(
                    problem=(
                        f"passes unknown keyword argument {name!r}; "
                        f"the legacy signature is ({shown})"
                    )
                )
        if name in seen:
            return ArgumentMapping(problem=f"passes {name} twice")
        seen.add(name)
        bound.append((name, argument))
    return ArgumentMapping(arguments=tuple(bound))


def as_keyword(name: str, argument: cst.Arg) -> cst.Arg:
    """``argument`` passed by keyword; its value, comma and whitespace stay as written."""
    if argument.keyword is not None:
        return argument
    return argument.with_changes(
        keyword=cst.Name(name),
        equal=cst.AssignEqual(
            whitespace_before=cst.SimpleWhitespace(""),
            whitespace_after=cst.SimpleWhitespace(""),
        ),
    )


def as_positional(argument: cst.Arg) -> cst.Arg:
    """``argument`` passed positionally; its value, comma and whitespace stay as written."""
    return argument.with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)


def expression_target_problem(target: str, receivers: frozenset[str]) -> str | None:
    """Why a ``self.``/``cls.`` target cannot be written at a site, or None.

    ``receivers`` are the names that are the enclosing method's receiver at
    the site (``Reference.receivers``).
    """
    if not is_expression_target(target):
        return None
    head = target.split(".", 1)[0]
    if head not in receivers:
        return (
            f"the configured target {target} needs {head}, but the site is not inside a "
            f"method whose receiver is {head} (a module-level or nested function, a "
            f"staticmethod, another first parameter, or {head} rebound)"
        )
    return None


def target_expression(target: str) -> cst.BaseExpression:
    """The callee written at the site: the imported name, or the configured expression."""
    if is_expression_target(target):
        return cst.parse_expression(target)
    return cst.Name(target.rpartition(".")[2])


def awaited_call(call: cst.Call, callee: cst.BaseExpression, args: Sequence[cst.Arg]) -> cst.Await:
    """``await callee(args)`` in place of ``call``.

    The call's own parentheses (``(make(...))``) move to the ``await`` so the
    text around the site is unchanged; the argument list keeps the call's
    whitespace, so a multi-line call stays multi-line.
    """
    inner = call.with_changes(func=callee, args=tuple(args), lpar=(), rpar=())
    return cst.Await(expression=inner, lpar=call.lpar, rpar=call.rpar)


def awaited_keyword_call(
    call: cst.Call, callee: cst.BaseExpression, mapping: ArgumentMapping
) -> cst.Await:
    """``await callee(...)`` in place of ``call``, every mapped argument passed by keyword.

    Keywords keep a positional legacy call correct whatever order the new API
    declares its parameters in (``run_id`` is keyword-only in
    ``get_or_create_user_session``).
    """
    keyword_arguments = [as_keyword(name, argument) for name, argument in mapping.arguments]
    return awaited_call(call, callee, keyword_arguments)


def callee_label(target: str) -> str:
    """How the new callee reads in a message: the imported name or the whole expression."""
    return target if is_expression_target(target) else target.rpartition(".")[2]


def code_for(node: cst.CSTNode) -> str:
    """Source text of a node (for ``Decision.fix`` in reports)."""
    return cst.Module(body=()).code_for_node(node)
