"""The public surface: ``__all__`` is sorted and complete, and every public name is documented."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from functools import cache
from types import ModuleType

import pytest

import botqueue

# Importing __main__ would run the command line.
MODULE_NAMES = sorted(
    info.name
    for info in pkgutil.walk_packages(botqueue.__path__, f"{botqueue.__name__}.")
    if not info.name.endswith(".__main__")
)
Definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


@cache
def _tree(module_name: str) -> ast.Module:
    return ast.parse(inspect.getsource(importlib.import_module(module_name)))


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n", 1)[0].strip()


def _documented(module_name: str) -> dict[str, str]:
    """Top-level names of a module and the first line of their docstrings ('' if none).

    A constant or alias counts as documented by a string literal right after its assignment.
    """
    found: dict[str, str] = {}
    body = _tree(module_name).body
    for node, following in zip(body, [*body[1:], None], strict=True):
        if isinstance(node, Definition):
            found[node.name] = _first_line(ast.get_docstring(node))
            continue
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            doc = ""
            if (
                isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
                and isinstance(following.value.value, str)
            ):
                doc = _first_line(following.value.value)
            for target in targets:
                if isinstance(target, ast.Name):
                    found[target.id] = doc
    return found


def _defining_module(name: str) -> str:
    value = getattr(botqueue, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        return str(value.__module__)
    owners = [m for m in MODULE_NAMES if name in _documented(m)]
    assert len(owners) == 1, f"{name} is assigned in {owners}"
    return owners[0]


def test_modules_were_found() -> None:
    assert {"botqueue.operations", "botqueue.producer", "botqueue.transports.sqlite"} <= set(
        MODULE_NAMES
    )


def test_all_is_sorted_and_unique() -> None:
    assert list(botqueue.__all__) == sorted(botqueue.__all__)
    assert len(set(botqueue.__all__)) == len(botqueue.__all__)


@pytest.mark.parametrize("name", botqueue.__all__)
def test_exported_name_exists_and_is_documented(name: str) -> None:
    assert hasattr(botqueue, name)
    module_name = _defining_module(name)
    value = getattr(botqueue, name)
    simple = getattr(value, "__name__", name)
    documented = _documented(module_name)
    key = simple if simple in documented else name
    assert documented.get(key), f"{name} has no docstring in {module_name}"


def test_dir_lists_every_exported_name() -> None:
    assert set(botqueue.__all__) <= set(dir(botqueue))


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(botqueue, "no_such_name")  # noqa: B009 (the point is a dynamic lookup)


@pytest.mark.parametrize("package", ["botqueue.observability", "botqueue.transports"])
def test_lazily_exported_names_of_subpackages_resolve(package: str) -> None:
    module = importlib.import_module(package)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from botqueue import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(botqueue.__all__)


def test_public_names_of_the_package_are_exported() -> None:
    # The names are imported on first access (PEP 562): resolve them all first.
    for name in botqueue.__all__:
        getattr(botqueue, name)
    public = {
        name
        for name, value in vars(botqueue).items()
        if not name.startswith("_") and not isinstance(value, ModuleType)
    }
    assert public == set(botqueue.__all__)


@pytest.mark.parametrize("module_name", [botqueue.__name__, *MODULE_NAMES])
def test_module_has_a_docstring(module_name: str) -> None:
    assert _first_line(ast.get_docstring(_tree(module_name)))


@pytest.mark.parametrize("module_name", [botqueue.__name__, *MODULE_NAMES])
def test_public_classes_functions_and_methods_have_docstrings(module_name: str) -> None:
    missing = []
    for node in _tree(module_name).body:
        if not isinstance(node, Definition) or node.name.startswith("_"):
            continue
        if not _first_line(ast.get_docstring(node)):
            missing.append(node.name)
        if isinstance(node, ast.ClassDef):
            missing.extend(
                f"{node.name}.{member.name}"
                for member in node.body
                if isinstance(member, Definition)
                and not member.name.startswith("_")
                and not _first_line(ast.get_docstring(member))
            )
    assert missing == [], f"undocumented in {module_name}: {missing}"
