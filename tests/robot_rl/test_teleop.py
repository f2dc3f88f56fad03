"""Device-independent teleop logic: deadband, axis maps, the intervention switch, the mapper."""

import threading

import numpy as np
import pytest

from robot_rl.human.teleop import (
    AxisMap,
    ButtonMap,
    InputLatch,
    InterventionSwitch,
    RawInput,
    TeleopDevice,
    TeleopEvent,
    TeleopMapper,
    apply_deadband,
)

XYZ = AxisMap.from_axes([(0, 1.0), (1, 1.0), (2, 1.0)], device_dim=3, deadband=0.2)


def raw(axes=(0.0, 0.0, 0.0), held=(), pressed=(), connected=True):
    return RawInput(np.asarray(axes, dtype=float), frozenset(held), frozenset(pressed), connected, 1.0)


# ---------------------------------------------------------------------- deadband and axis map
def test_deadband_is_zero_inside_continuous_at_the_edge_and_full_at_the_end():
    db = np.array(0.2)
    assert apply_deadband(np.array([0.0, 0.1, -0.2, 0.2]), db).tolist() == [0.0, 0.0, 0.0, 0.0]
    just_out = apply_deadband(np.array([0.2 + 1e-6, -0.2 - 1e-6]), db)
    assert np.all(np.abs(just_out) < 1e-5) and just_out[0] > 0 > just_out[1]
    assert apply_deadband(np.array([1.0, -1.0, 1.7]), db).tolist() == [1.0, -1.0, 1.0]
    values = np.linspace(-1, 1, 201)
    assert np.all(np.diff(apply_deadband(values, db)) >= 0)  # monotonic


def test_deadband_per_axis():
    out = apply_deadband(np.array([0.3, 0.3]), np.array([0.0, 0.5]))
    assert out[0] == pytest.approx(0.3) and out[1] == 0.0


def test_from_axes_builds_an_explicit_matrix_with_signs():
    amap = AxisMap.from_axes([(1, -1.0), (0, -1.0), (2, -1.0)], device_dim=6, deadband=0.0)
    assert np.asarray(amap.matrix).tolist() == [
        [0, -1, 0, 0, 0, 0], [-1, 0, 0, 0, 0, 0], [0, 0, -1, 0, 0, 0],
    ]
    action = amap.action(np.array([0.5, -0.25, 0.0, 0.9, 0.9, 0.9]))
    assert action.dtype == np.float32 and action.shape == (4,) == amap.action_shape
    np.testing.assert_allclose(action, [0.25, -0.5, 0.0, 1.0])  # gripper defaults to open


def test_scale_then_clip_to_the_action_bounds():
    amap = AxisMap.from_axes([(0, 1.0), (1, 1.0)], device_dim=2, deadband=0.0, scale=(3.0, 0.5), gripper=False)
    np.testing.assert_allclose(amap.action(np.array([0.5, 1.0])), [1.0, 0.5])
    np.testing.assert_allclose(amap.action(np.array([-0.5, -1.0])), [-1.0, -0.5])


def test_a_full_matrix_mixes_axes():
    amap = AxisMap(matrix=((0.5, 0.5),), deadband=0.0, gripper=False)
    np.testing.assert_allclose(amap.action(np.array([1.0, 1.0])), [1.0])


def test_active_only_looks_at_mapped_axes():
    amap = AxisMap.from_axes([(0, 1.0)], device_dim=3, deadband=0.1)
    assert not amap.active(np.array([0.05, -1.0, 1.0]))  # unmapped axes (a resting trigger) ignored
    assert amap.active(np.array([0.15, 0.0, 0.0]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"matrix": ()}, "non-empty"),
        ({"matrix": ((1.0,),), "deadband": 1.0}, "deadband"),
        ({"matrix": ((1.0, 0.0),), "deadband": (0.1, 0.1, 0.1)}, "per device axis"),
        ({"matrix": ((1.0,),), "scale": (1.0, 2.0)}, "per motion dimension"),
        ({"matrix": ((1.0,),), "action_low": 1.0, "action_high": -1.0}, "action_low"),
    ],
)
def test_axis_map_rejects_bad_configs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AxisMap(**kwargs)


def test_wrong_number_of_device_axes_is_an_error():
    with pytest.raises(ValueError, match="3 device axes"):
        XYZ.motion(np.zeros(6))
    with pytest.raises(ValueError, match="out of range"):
        AxisMap.from_axes([(6, 1.0)], device_dim=6)


# ---------------------------------------------------------------------- intervention switch
def test_hold_mode_button_and_axes():
    switch = InterventionSwitch("hold", on_axes=True)
    kw = dict(pressed=False, connected=True, now_s=0.0)
    assert switch.update(held=True, activity=False, **kw)
    assert not switch.update(held=False, activity=False, **kw)
    assert switch.update(held=False, activity=True, **kw)
    assert not InterventionSwitch("hold", on_axes=False).update(held=False, activity=True, **kw)


def test_hold_mode_release_delay():
    switch = InterventionSwitch("hold", on_axes=True, release_delay_s=0.3)
    assert switch.update(held=False, pressed=False, activity=True, connected=True, now_s=10.0)
    assert switch.update(held=False, pressed=False, activity=False, connected=True, now_s=10.2)
    assert not switch.update(held=False, pressed=False, activity=False, connected=True, now_s=10.4)


def test_toggle_mode_flips_on_presses_and_disconnect_clears_it():
    switch = InterventionSwitch("toggle", on_axes=False)
    kw = dict(held=False, activity=False, now_s=0.0)
    assert switch.update(pressed=True, connected=True, **kw)
    assert switch.update(pressed=False, connected=True, **kw)  # stays on without holding
    assert not switch.update(pressed=True, connected=True, **kw)
    assert switch.update(pressed=True, connected=True, **kw)
    assert not switch.update(pressed=False, connected=False, **kw)
    assert not switch.update(pressed=False, connected=True, **kw)  # not latched across a reconnect


def test_unknown_mode():
    with pytest.raises(ValueError, match="toggle"):
        InterventionSwitch("sticky")


# ---------------------------------------------------------------------- mapper
def mapper(mode="hold", on_axes=True, **buttons):
    return TeleopMapper(XYZ, ButtonMap(**buttons), InterventionSwitch(mode, on_axes))


def test_mapper_idle_device_does_not_intervene():
    event = mapper().event(raw())
    assert not event.intervening and event.action is None and event.connected


def test_mapper_axes_take_over_with_the_policy_gripper_until_a_button_is_pressed():
    m = mapper(gripper_close=0, gripper_open=1)
    policy = np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32)  # the policy holds the gripper closed
    event = m.event(raw(axes=(1.0, 0.0, 0.0)), policy)
    assert event.intervening
    np.testing.assert_allclose(event.action, [1.0, 0.0, 0.0, -1.0])  # no drop on take-over
    event = m.event(raw(axes=(1.0, 0.0, 0.0), held=[1]), policy)
    assert event.action[-1] == 1.0
    event = m.event(raw(axes=(0.0, 0.0, 1.0)), policy)  # button released: the command stays latched
    assert event.action[-1] == 1.0 and event.action[2] == 1.0
    assert m.event(raw(), policy).action is None  # hand back: latch cleared
    assert m.event(raw(axes=(1.0, 0.0, 0.0)), policy).action[-1] == -1.0


def test_mapper_gripper_button_alone_intervenes_in_hold_mode():
    event = mapper(gripper_close=0).event(raw(pressed=[0]))
    assert event.intervening and event.action.tolist() == [0.0, 0.0, 0.0, -1.0]


def test_mapper_gripper_toggle():
    m = mapper(mode="toggle", intervene="i", gripper_toggle="g")
    assert m.event(raw(pressed=["i"]), np.array([0, 0, 0, 1.0])).action[-1] == 1.0
    assert m.event(raw(pressed=["g"])).action[-1] == -1.0
    assert m.event(raw()).action[-1] == -1.0
    assert m.event(raw(pressed=["g"])).action[-1] == 1.0


def test_mapper_buttons_are_edge_triggered():
    m = mapper(success=5, failure=6, rerecord=7, end_episode=8)
    first = m.event(raw(held=[5, 6, 7, 8], pressed=[5, 6, 7, 8]))
    assert first.success and first.failure and first.rerecord and first.end_episode
    held_on = m.event(raw(held=[5, 6, 7, 8]))
    assert not (held_on.success or held_on.failure or held_on.rerecord or held_on.end_episode)


def test_mapper_disconnected_never_intervenes_and_never_latches():
    m = mapper(mode="toggle", intervene=0)
    assert m.event(raw(axes=(1.0, 0, 0), pressed=[0])).intervening
    event = m.event(raw(axes=(1.0, 0, 0), held=[0], pressed=[0], connected=False))
    assert not event.intervening and event.action is None and not event.connected
    assert not m.event(raw()).intervening


def test_event_validation():
    with pytest.raises(ValueError):
        TeleopEvent(action=None, intervening=True)
    with pytest.raises(ValueError):
        TeleopEvent(action=np.zeros(4), intervening=True, connected=False)


# ---------------------------------------------------------------------- latch
def test_latch_keeps_taps_between_takes_and_the_newest_axes():
    latch = InputLatch(2)
    latch.update(held=frozenset({3}))
    latch.update(held=frozenset())
    latch.update(axes=np.array([0.5, 0.0]))
    latch.update(axes=np.array([0.25, -0.5]))
    first = latch.take()
    assert first.pressed == {3} and first.held == frozenset() and first.axes.tolist() == [0.25, -0.5]
    assert latch.take().pressed == frozenset()


def test_latch_stale_axes_read_zero_and_disconnect_clears_everything():
    latch = InputLatch(1)
    latch.update(axes=np.array([0.9]), held=frozenset({1}))
    assert latch.take(stale_after_s=10.0).axes[0] == 0.9
    assert latch.take(stale_after_s=0.0).axes[0] == 0.0
    latch.disconnect()
    gone = latch.take()
    assert not gone.connected and gone.held == frozenset() and gone.axes[0] == 0.0


def test_latch_is_safe_across_threads():
    latch = InputLatch(1)

    def writer():
        for i in range(2000):
            latch.update(axes=np.array([i / 2000]), held=frozenset({i % 2}))

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        assert latch.take().axes.shape == (1,)
    thread.join(timeout=10)
    assert latch.take().axes[0] == pytest.approx(1999 / 2000)


def test_teleop_device_protocol_is_structural():
    class Minimal:
        name, action_shape = "m", (4,)

        def connect(self): ...
        def close(self): ...
        def __enter__(self): return self
        def __exit__(self, *exc): ...
        def new_episode(self): ...
        def poll(self, policy_action=None): return TeleopEvent(None, False)

    assert isinstance(Minimal(), TeleopDevice)
    assert not isinstance(object(), TeleopDevice)
