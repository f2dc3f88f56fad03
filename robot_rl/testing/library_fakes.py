"""Keep a test fake honest against the library it stands in for.

A backend over a vendor library that has no protocol-level simulator here (``ur_rtde``,
``panda_py``) is tested against a fake at the library boundary. :func:`check_fake_matches` makes
that fake break when the installed library changes: every public method of the fake must exist on
the real class and accept the same calls — same parameter count, same required count, and the same
names wherever the library publishes names. pybind11 extensions have no ``inspect.signature``;
their signatures are read from the docstring lines pybind11 writes (``name(self: T, a: int, b:
float = 0.5) -> R``, one per overload).

Methods a fake adds for the test's own use (to inject a fault, to read what was sent) start with
``fake_`` and are not checked.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any

_GENERATED_NAME = re.compile(r"arg\d+$")


@dataclasses.dataclass(frozen=True)
class Parameter:
    name: str
    required: bool


def _scan(text: str, start: int = 0):
    """``(index, char, depth)`` for each character of ``text`` from ``start`` outside quotes; ``depth``
    counts the brackets open before it (a closing bracket has the depth it closes to)."""
    depth, quote = 0, ""
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            quote = "" if char == quote else quote
            continue
        if char in "'\"":
            quote = char
            continue
        depth += (char in "([{") - (char in ")]}")
        yield i, char, depth


def _split_top_level(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets and quotes."""
    cuts = [i for i, char, depth in _scan(text) if char == "," and depth == 0]
    bounds = zip([-1, *cuts], [*cuts, len(text)])
    return [text[a + 1:b] for a, b in bounds if text[a + 1:b].strip()]


def _close_paren(text: str, open_at: int) -> int:
    for i, char, depth in _scan(text, open_at):
        if depth == 0 and char in ")]}":
            return i
    raise ValueError(f"unbalanced signature: {text[open_at:open_at + 80]!r}")


def _parse_params(inside: str) -> tuple[Parameter, ...]:
    params = []
    for part in _split_top_level(inside):
        part = part.strip()
        if not part or part in ("*", "/") or part.startswith("*"):
            continue
        name = part.split(":", 1)[0].split("=", 1)[0].strip()
        params.append(Parameter(name, "=" not in part))
    if params and params[0].name == "self":
        params = params[1:]
    return tuple(params)


def pybind_overloads(func: Any, name: str) -> list[tuple[Parameter, ...]]:
    """The overloads pybind11 documented for ``func`` (its docstring's signature lines)."""
    doc = getattr(func, "__doc__", None) or ""
    overloads = []
    for match in re.finditer(rf"(?:^|\n)\s*(?:\d+\.\s*)?{re.escape(name)}\(", doc):
        open_at = match.end() - 1
        inside = doc[open_at + 1:_close_paren(doc, open_at)]
        if inside.strip() == "*args, **kwargs":
            continue  # pybind11's "Overloaded function." header line
        overloads.append(_parse_params(inside))
    return overloads


def library_overloads(cls: type, name: str) -> list[tuple[Parameter, ...]]:
    """Every way ``cls.name`` can be called, from ``inspect`` or from pybind11's docstring."""
    func = getattr(cls, name)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None
    variadic = signature is not None and any(
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in signature.parameters.values())
    if signature is None or variadic:
        overloads = pybind_overloads(func, name)
        if not overloads:
            raise ValueError(f"{cls.__name__}.{name}: no signature from inspect or its docstring")
        return overloads
    params = list(signature.parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [tuple(Parameter(p.name, p.default is p.empty) for p in params)]


def _matches(fake: tuple[Parameter, ...], real: tuple[Parameter, ...]) -> bool:
    if len(fake) != len(real):
        return False
    for mine, theirs in zip(fake, real):
        if mine.required != theirs.required:
            return False
        if not _GENERATED_NAME.match(theirs.name) and mine.name != theirs.name:
            return False
    return True


def check_fake_matches(fake_cls: type, real_cls: type) -> list[str]:
    """Check every public method of ``fake_cls`` against ``real_cls``; returns the checked names.

    Raises ``AssertionError`` naming the method, the fake's parameters and the library's
    overloads when a method is missing from the library or no overload takes the same call.
    """
    checked = []
    for name, member in vars(fake_cls).items():
        if name.startswith(("_", "fake_")) or not callable(member):
            continue
        if not hasattr(real_cls, name):
            raise AssertionError(f"{fake_cls.__name__}.{name}: {real_cls.__module__}.{real_cls.__name__} has no such method")
        fake = library_overloads(fake_cls, name)[0]
        real = library_overloads(real_cls, name)
        if not any(_matches(fake, overload) for overload in real):
            raise AssertionError(
                f"{fake_cls.__name__}.{name}{_show(fake)} matches no overload of "
                f"{real_cls.__name__}.{name}: " + "; ".join(_show(o) for o in real))
        checked.append(name)
    if not checked:
        raise AssertionError(f"{fake_cls.__name__} has no public methods to check")
    return checked


def _show(params: tuple[Parameter, ...]) -> str:
    return "(" + ", ".join(p.name + ("" if p.required else "=...") for p in params) + ")"
