"""robot_rl.testing.library_fakes reads pybind11 and Python signatures and catches a fake that drifts."""

from __future__ import annotations

import pytest

from robot_rl.testing.library_fakes import (
    check_fake_matches,
    library_overloads,
    pybind_overloads,
)


class Library:
    def move(self, position, speed=0.2):
        pass


class PyBindLike:
    """A callable whose docstring is what pybind11 writes for two overloads."""

    def send(*args, **kwargs):
        pass

    send.__doc__ = """send(*args, **kwargs)
Overloaded function.

1. send(self: lib.X, targets: list[typing.Annotated[numpy.ArrayLike, "[3, 1]"]], gain: float = array([[1., 0.], [0., 1.]])) -> bool

2. send(self: lib.X, arg0: list[float], arg1: float) -> bool
"""


def test_pybind_docstrings_give_every_overload_with_defaults_and_nested_brackets():
    first, second = pybind_overloads(PyBindLike.send, "send")
    assert [(p.name, p.required) for p in first] == [("targets", True), ("gain", False)]
    assert [(p.name, p.required) for p in second] == [("arg0", True), ("arg1", True)]


def test_a_matching_fake_passes_and_generated_names_match_any_name():
    class Fake:
        def move(self, position, speed=0.2):
            pass

        def send(self, pose, time):
            pass

        def fake_inject_fault(self):
            pass

    class Real(Library, PyBindLike):
        pass

    assert check_fake_matches(Fake, Real) == ["move", "send"]


def _move(self, position):
    pass


def _move_renamed(self, pos, speed=0.2):
    pass


def _move_required_speed(self, position, speed):
    pass


@pytest.mark.parametrize("methods", [{"move": _move}, {"move": _move_renamed}, {"move": _move_required_speed},
                                     {"jump": _move}])
def test_a_fake_that_drifted_from_the_library_fails_naming_the_method(methods):
    fake = type("Fake", (), methods)
    with pytest.raises(AssertionError, match="Fake.(move|jump)"):
        check_fake_matches(fake, Library)


def test_a_method_without_any_signature_is_a_clear_error():
    class Opaque:
        def thing(*args, **kwargs):
            pass

    with pytest.raises(ValueError, match="Opaque.thing: no signature"):
        library_overloads(Opaque, "thing")
