"""Ctrl-C and SIGTERM held for a block that must happen whole, then delivered as they would have been."""

import os
import signal
import threading

import pytest

from robot_rl.signals import signals_deferred, stop_on_sigterm


def _wait_for_handlers() -> None:
    """Python runs signal handlers between bytecodes: a few calls give it the chance."""
    for _ in range(1000):
        sum(range(10))


@pytest.fixture
def sigterm_interrupts():
    previous = signal.getsignal(signal.SIGTERM)
    stop_on_sigterm()
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_inside_the_block_waits_for_its_end_then_interrupts(signum, sigterm_interrupts):
    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_deferred():
            os.kill(os.getpid(), signum)
            _wait_for_handlers()
            done.append("first")
            done.append("second")
    assert done == ["first", "second"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handlers are back


def test_without_a_signal_the_block_runs_and_nothing_is_raised(sigterm_interrupts):
    with signals_deferred():
        value = 1
    assert value == 1
    with pytest.raises(KeyboardInterrupt):  # and a signal after the block interrupts at once
        os.kill(os.getpid(), signal.SIGINT)
        _wait_for_handlers()


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with signals_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            _wait_for_handlers()
        _wait_for_handlers()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_outside_the_main_thread_the_block_runs_as_it_is():
    errors = []

    def body():
        try:
            with signals_deferred():
                assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # nothing swapped
        except Exception as err:  # noqa: BLE001 - reported to the main thread
            errors.append(err)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert not thread.is_alive() and errors == []
