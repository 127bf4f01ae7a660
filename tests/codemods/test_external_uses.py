"""apply keeps an import that other modules still reach through the rewritten module."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ctxmigrate.codemods.config import Config
from ctxmigrate.codemods.engine import run
from ctxmigrate.codemods.external_uses import dotted_mentions
from ctxmigrate.codemods.rewrite.planning import fix_sources
from ctxmigrate.codemods.rules.reuse_session import ReuseSessionCodemod
from tests.codemods.support import LEGACY_CONFIG, LEGACY_FACTORY_MODULE, git

CODEMODS = (ReuseSessionCodemod(),)

HANDLER = b"""\
from app.dependencies import create_user_execution_context


async def handle(user_id, thread_id):
    return create_user_execution_context(user_id=user_id, thread_id=thread_id)
"""
OLD_IMPORT = b"from app.dependencies import create_user_execution_context\n"


def fixed_handler(**other_modules: str) -> tuple[bytes, list[str]]:
    sources = {
        **LEGACY_FACTORY_MODULE,
        "app/__init__.py": b"",
        "app/handler.py": HANDLER,
        **{path: textwrap.dedent(text).encode() for path, text in other_modules.items()},
    }
    result = fix_sources(sources, LEGACY_CONFIG, CODEMODS)["app/handler.py"]
    assert result.fixed is not None
    assert b"await get_or_create_user_session(" in result.fixed
    return result.fixed, result.notes


def test_import_removed_when_no_other_module_reaches_it() -> None:
    fixed, notes = fixed_handler(
        **{"app/unrelated.py": "from app.dependencies import create_user_execution_context\n"}
    )
    assert OLD_IMPORT not in fixed
    assert notes == []


def test_import_kept_for_a_re_export_to_another_module() -> None:
    fixed, notes = fixed_handler(
        **{"app/views.py": "from app.handler import create_user_execution_context as make\n"}
    )
    assert OLD_IMPORT in fixed
    assert notes == [
        "kept the import of create_user_execution_context: app.views imports "
        "create_user_execution_context from app.handler, which would break without it"
    ]


def test_import_kept_for_a_mock_patch_target_in_a_test_file() -> None:
    fixed, notes = fixed_handler(
        **{
            "tests/test_handler.py": """\
            from unittest import mock

            def test_handle():
                with mock.patch("app.handler.create_user_execution_context"):
                    pass
            """
        }
    )
    assert OLD_IMPORT in fixed
    assert "tests.test_handler names app.handler.create_user_execution_context" in notes[0]


def test_import_kept_for_attribute_access_through_a_module_alias() -> None:
    fixed, notes = fixed_handler(
        **{
            "app/compat.py": """\
            from app import handler as h

            factory = h.create_user_execution_context
            """
        }
    )
    assert OLD_IMPORT in fixed
    assert "app.compat names h.create_user_execution_context" in notes[0]


@pytest.mark.parametrize(
    "importer",
    [
        # Imported when called: removing the import breaks later(), not the import of the module.
        "def later():\n    from app.handler import create_user_execution_context\n"
        "    return create_user_execution_context\n",
        "class Lazy:\n    def get(self):\n"
        "        from .handler import create_user_execution_context as c\n"
        "        return c\n",
        "try:\n    import json\nexcept ImportError:\n    json = None\nelse:\n"
        "    def later():\n        from app import handler\n"
        "        from app.handler import (\n"
        "            create_user_execution_context,\n        )\n",
    ],
)
def test_import_kept_for_an_import_inside_a_function_or_class(importer: str) -> None:
    fixed, notes = fixed_handler(**{"app/other.py": importer})
    assert OLD_IMPORT in fixed
    assert notes == [
        "kept the import of create_user_execution_context: app.other imports "
        "create_user_execution_context from app.handler, which would break without it"
    ]


def test_import_kept_for_a_nested_import_on_a_real_tree(project: Path) -> None:
    (project / "tests" / "test_handler.py").write_bytes(
        b"def test_later():\n    from app.handler import create_user_execution_context\n"
    )
    result = run([project], Config(root=project), fix=True, use_cache=False)
    (fixed,) = [fix for fix in result.fixes if fix.path.endswith("app/handler.py")]
    assert fixed.fixed is not None and OLD_IMPORT in fixed.fixed
    assert "tests.test_handler imports create_user_execution_context" in fixed.notes[0]


@pytest.mark.parametrize(
    ("importer", "mention"),
    [
        (
            "def later():\n    import app.handler as h\n"
            "    return h.create_user_execution_context\n",
            "h.create_user_execution_context",
        ),
        (
            "class Lazy:\n    def get(self):\n        from app import handler\n"
            "        return handler.create_user_execution_context\n",
            "handler.create_user_execution_context",
        ),
    ],
)
def test_import_kept_for_attribute_access_through_a_module_bound_in_a_function(
    importer: str, mention: str
) -> None:
    fixed, notes = fixed_handler(**{"app/other.py": importer})
    assert OLD_IMPORT in fixed
    assert notes == [
        f"kept the import of create_user_execution_context: app.other names {mention}, "
        "which would break without it"
    ]


def test_import_kept_for_a_star_import_of_the_module() -> None:
    fixed, notes = fixed_handler(**{"app/everything.py": "from app.handler import *\n"})
    assert OLD_IMPORT in fixed
    assert "app.everything does `from app.handler import *`" in notes[0]


def test_import_removed_when_no_importer_reaches_the_rewritten_module() -> None:
    # A star import of a module outside the tree; the name imported, in a
    # function, from where it is defined: nothing reaches it through the handler.
    fixed, notes = fixed_handler(
        **{
            "app/elsewhere.py": "from os.path import *\n\n\n"
            "def later():\n    from app.dependencies import create_user_execution_context\n"
            "    return create_user_execution_context\n",
        }
    )
    assert OLD_IMPORT not in fixed
    assert notes == []


def test_imports_anywhere_of_text_that_cannot_be_decoded_is_none() -> None:
    from ctxmigrate.codemods.analysis.parsing import ModuleFile
    from ctxmigrate.codemods.external_uses import imports_anywhere

    module_file = ModuleFile("app/x.py", Path("/project/app/x.py"), "app.x", False, False)
    source = b"from app.handler import create_user_execution_context\n"
    known = frozenset({"create_user_execution_context"})
    assert imports_anywhere(source, module_file, known) == (
        ("app.handler", "create_user_execution_context"),
    )
    assert imports_anywhere(b"# -*- coding: no-such-codec -*-\n" + source, module_file, known) == ()


def test_import_removed_when_star_import_cannot_see_it_because_of_all() -> None:
    sources = {
        **LEGACY_FACTORY_MODULE,
        "app/__init__.py": b"",
        "app/handler.py": b'__all__ = ["handle"]\n' + HANDLER,
        "app/everything.py": b"from app.handler import *\n",
    }
    result = fix_sources(sources, LEGACY_CONFIG, CODEMODS)["app/handler.py"]
    assert result.fixed is not None
    assert OLD_IMPORT not in result.fixed


def test_dotted_mentions_reads_paths_ending_in_a_known_name() -> None:
    source = b'patch("a.b.make_ctx")\nx = mod.make_ctx\nself.make_ctx_more\nmake_ctx()\n'
    assert dotted_mentions(source, ["make_ctx"]) == frozenset({"a.b.make_ctx", "mod.make_ctx"})


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_bytes(b"")
    for path, text in LEGACY_FACTORY_MODULE.items():
        (tmp_path / path).write_bytes(text)
    (tmp_path / "app" / "handler.py").write_bytes(HANDLER)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_handler.py").write_bytes(
        b'from unittest import mock\n\nTARGET = "app.handler.create_user_execution_context"\n'
    )
    return tmp_path


def test_run_with_fix_keeps_an_import_a_test_file_patches(project: Path) -> None:
    config = Config(root=project)
    result = run([project], config, fix=True, use_cache=False)
    (fixed,) = [fix for fix in result.fixes if fix.path.endswith("app/handler.py")]
    assert fixed.fixed is not None and OLD_IMPORT in fixed.fixed
    assert "names app.handler.create_user_execution_context" in fixed.notes[0]


def test_needs_bindings_only_for_a_star_or_an_import_of_a_head() -> None:
    from ctxmigrate.codemods.analysis.parsing import ModuleFile
    from ctxmigrate.codemods.external_uses import Heads, needs_bindings

    lazy = ModuleFile("app/lazy.py", Path("/project/app/lazy.py"), "app.lazy", False, False)
    # app.handler calls a legacy function through deps (and self); app.other through tools.
    heads = Heads(
        {"app.handler": frozenset({"deps", "self"}), "app.other": frozenset({"tools"})},
        frozenset({"deps", "self", "tools"}),
    )

    def primary(module: str | None) -> str | None:
        return module if module in ("app", "app.handler", "app.other") else None

    def needs(text: str) -> bool:
        return needs_bindings(text.encode(), lazy, heads, primary)

    # What the text shows already (imports of known names, mentions): no summary.
    assert not needs("from app.handler import WebSocketContext\nself.deps = self\n")
    assert not needs("from app.elsewhere import deps\nfrom app.handler import run\n")
    assert not needs("from app.handler import tools  # a head of app.other, not of app.handler\n")
    assert not needs("from .handler import run  # deps, in a comment\n")
    # What only its bindings tell.
    assert needs("from app.handler import *\n")
    assert needs("def f():\n    from app.handler import (\n        deps,\n    )\n")
    assert needs("from .handler import deps as d\n")
    # Text that cannot be decoded: the summary decides.
    assert needs("# -*- coding: no-such-codec -*-\nfrom app.handler import run\n")


def test_owners_bound_anywhere_in_the_importer() -> None:
    from ctxmigrate.codemods.analysis.parsing import ModuleFile
    from ctxmigrate.codemods.external_uses import modules_bound_anywhere

    other = ModuleFile("app/other.py", Path("/project/app/other.py"), "app.other", False, False)
    source = (
        b"import app.handler as h\nimport os.path\nfrom . import handler, views as v\n"
        b"def f():\n    import app.other_handler as h\n    return '\\d'\n"
    )
    assert modules_bound_anywhere(source, other) == {
        "h": ["app.handler", "app.other_handler"],
        "handler": ["app.handler"],
        "v": ["app.views"],
    }
    assert modules_bound_anywhere(b"def f(:\n", other) == {}


@pytest.mark.parametrize("checkout", [True, False], ids=["git checkout", "plain directory"])
def test_import_kept_for_a_module_that_names_no_legacy_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, checkout: bool
) -> None:
    # app.other is no candidate (it names no legacy name), yet it takes from
    # the handler the module the handler called the factory through.
    files = {
        **LEGACY_FACTORY_MODULE,
        "app/__init__.py": b"",
        "app/handler.py": b"from app import dependencies as deps\n\n\n"
        b"async def handle(user_id, thread_id):\n"
        b"    return deps.create_user_execution_context(user_id=user_id, thread_id=thread_id)\n",
        "app/other.py": b"from app.handler import deps\n\nVALUE = deps\n",
        "app/unrelated.py": b"from app import dependencies as deps\n\nVALUE = deps\n",
    }
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    if checkout:
        git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    result = run([tmp_path], Config(root=tmp_path), fix=True, use_cache=False, jobs=1)
    (fixed,) = result.fixes
    assert fixed.fixed is not None
    assert fixed.fixed.startswith(b"from app import dependencies as deps\n")
    assert b"await get_or_create_user_session(" in fixed.fixed
    assert fixed.notes == [
        "kept the import of deps: app.other imports deps from app.handler, "
        "which would break without it"
    ]
