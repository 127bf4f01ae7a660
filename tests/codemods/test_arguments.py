"""Mapping a legacy call's arguments onto the legacy signature, and the call-site helpers."""

from __future__ import annotations

import libcst as cst
import pytest

from ctxmigrate.codemods.arguments import (
    as_keyword,
    as_positional,
    call_signature,
    code_for,
    map_arguments,
)


def call(code: str) -> cst.Call:
    node = cst.parse_expression(code)
    assert isinstance(node, cst.Call)
    return node


def mapped(code: str, signature: tuple[str, ...]) -> list[tuple[str, str]]:
    mapping = map_arguments(call(code), signature)
    assert mapping.problem is None, mapping.problem
    return [(name, code_for(argument.value)) for name, argument in mapping.arguments]


def problem(code: str, signature: tuple[str, ...]) -> str | None:
    mapping = map_arguments(call(code), signature)
    assert mapping.problem is None or mapping.arguments == ()
    return mapping.problem


# -- mapping ---------------------------------------------------------------------


def test_positional_and_keyword_arguments_bind_in_the_order_written() -> None:
    signature = ("user_id", "thread_id", "run_id")
    assert mapped("f(u, run_id=r, thread_id=t)", signature) == [
        ("user_id", "u"),
        ("run_id", "r"),
        ("thread_id", "t"),
    ]
    assert mapped("f()", signature) == []


def test_more_positional_arguments_than_parameters() -> None:
    assert problem("f(a, b)", ("user_context",)) == (
        "passes 2 positional arguments; the legacy signature (user_context) takes at most 1"
    )


def test_a_star_args_factory_collects_extra_positional_arguments() -> None:
    assert problem("f(a, b, c)", ("func", "*args", "**kwargs")) == (
        "passes 3 positional arguments; the legacy signature (func, *args, **kwargs) "
        "names 1 and collects the rest in *args, which the session API cannot take"
    )
    assert mapped("f(a)", ("func", "*args", "**kwargs")) == [("func", "a")]


def test_a_double_star_kwargs_factory_collects_unknown_keywords() -> None:
    assert problem("f(a, colour=c)", ("func", "*args", "**options")) == (
        "passes keyword argument 'colour', which the legacy signature "
        "(func, *args, **options) collects in **options; the session API cannot take it"
    )


def test_unknown_keyword_without_double_star() -> None:
    assert problem("f(a, colour=c)", ("user_id", "thread_id")) == (
        "passes unknown keyword argument 'colour'; the legacy signature is (user_id, thread_id)"
    )


def test_keyword_only_parameters_bind_by_keyword_only() -> None:
    signature = ("user_id", "*", "thread_id")
    assert mapped("f(u, thread_id=t)", signature) == [("user_id", "u"), ("thread_id", "t")]
    assert problem("f(u, t)", signature) == (
        "passes 2 positional arguments; the legacy signature (user_id, *, thread_id) "
        "takes at most 1"
    )


def test_keyword_only_parameters_after_star_args_bind_by_keyword() -> None:
    signature = ("user_id", "*rest", "thread_id")
    assert mapped("f(u, thread_id=t)", signature) == [("user_id", "u"), ("thread_id", "t")]
    assert "collects the rest in *rest" in (problem("f(u, t)", signature) or "")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("f(*args)", "passes *args: cannot map *args/**kwargs to the session API"),
        ("f(**kwargs)", "passes **kwargs: cannot map *args/**kwargs to the session API"),
        ("f(u, user_id=u)", "passes user_id twice"),
    ],
)
def test_calls_that_cannot_be_mapped(code: str, expected: str) -> None:
    assert problem(code, ("user_id", "thread_id")) == expected


def test_call_signature_drops_a_discovered_method_receiver_only() -> None:
    assert call_signature(("cls", "websocket"), ("x",)) == ("websocket",)
    assert call_signature(("self", "websocket"), ("x",)) == ("websocket",)
    assert call_signature(("websocket", "cls"), ("x",)) == ("websocket", "cls")
    assert call_signature(None, ("user_id", "thread_id")) == ("user_id", "thread_id")
    assert call_signature((), ("x",)) == ()


# -- call-site helpers ------------------------------------------------------------


def test_as_keyword_keeps_an_argument_already_passed_by_keyword_as_written() -> None:
    argument = call("f(user_id = u)").args[0]
    assert as_keyword("user_id", argument) is argument
    assert code_for(as_keyword("user_id", argument)) == "user_id = u"


def test_as_keyword_names_a_positional_argument() -> None:
    argument = call("f(u , t)").args[0]
    assert code_for(as_keyword("user_id", argument)) == "user_id=u , "


def test_as_positional_drops_the_keyword() -> None:
    argument = call("f(user_context=ctx)").args[0]
    assert code_for(as_positional(argument)) == "ctx"
