"""The Crazyflie backend through cflib's own code and its ``udp://`` link driver, against the in-test CRTP
peer (:mod:`crazyflie_peer`): connection (log/param TOCs, flight-mode parameters echoed, log blocks at
100 Hz), the setpoints as the peer decodes them, the quadrotor contract, and the quad_hover env over it."""

import math
import subprocess
import sys
import time

import numpy as np
import pytest
from crazyflie_flight import FAST, airborne, hover, poll

import robot_rl
from drivers.quad.crazyflie import CrazyflieBackend, make_backend
from drivers.quad.crazyflie_config import CrazyflieConfig, motor_force_n, thrust_u16_for_force
from robot_rl.backends.base import Backend
from robot_rl.backends.quadrotor import (
    AttitudeCommand,
    MotorThrusts,
    QuadBackend,
    QuadSceneControl,
    VelocityCommand,
)
from robot_rl.testing.conformance import check_bad_actions, check_spaces_and_aliasing


def test_spec_is_known_before_connect_and_nothing_runs_in_init():
    drone = CrazyflieBackend(CrazyflieConfig(uri="udp://127.0.0.1:9"))
    assert not drone.connected and drone._stream is None and drone._link is None
    assert isinstance(drone, Backend) and isinstance(drone, QuadBackend) and isinstance(drone, QuadSceneControl)
    spec = drone.spec
    assert spec.command_levels == ("thrust_rates", "velocity") and spec.watchdog_s == 0.2
    assert spec.max_thrust_per_motor_n == pytest.approx(0.1597, abs=1e-4) and 0.3 < spec.hover_thrust_frac < 0.5
    with pytest.raises(RuntimeError, match="not connected"):
        drone.read_state()
    with pytest.raises(KeyError, match="no cameras"):
        drone.render("fpv")
    with pytest.raises(ValueError, match="observes state only"):
        make_backend(None, "pixels")
    with pytest.raises(ValueError, match="cflib URI"):
        CrazyflieConfig(uri="E7E7E7E7E7")
    assert robot_rl.registry.backends("quadrotor")[("quadrotor", "crazyflie")].config.endswith("CrazyflieConfig")


def test_importing_the_driver_package_does_not_import_cflib():
    code = ("import sys, drivers.quad.crazyflie, drivers.quad.registration; "
            "assert 'cflib' not in sys.modules, 'cflib imported'")
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_connect_sets_the_flight_mode_and_logs_the_state_estimate_at_100_hz(peer, make_drone):
    peer.call("vehicle.place", np.array([0.2, -0.1, 0.0]))
    drone = make_drone()
    assert peer.get("vehicle.flight_params") == {"flightmode.stabModeRoll": 0, "flightmode.stabModePitch": 0,
                                          "flightmode.stabModeYaw": 0, "commander.enHighLevel": 1}
    state_block = next(b for b in peer.get("blocks").values() if len(b.variables) == 10)
    assert state_block.period_s == pytest.approx(0.01)  # one block: position, velocity, quaternion, rates
    state = drone.read_state()
    assert not state.armed and state.battery_v == pytest.approx(4.0)
    np.testing.assert_allclose(state.pos_m, [0.2, -0.1, 0.0], atol=1e-3)
    np.testing.assert_allclose(state.quat_wxyz, [1, 0, 0, 0], atol=2e-3)
    status = poll(lambda: (s := drone.link_status()).state_rate_hz > 0 and math.isfinite(s.latency_ms) and s, 2.0)
    first = drone._link.state_count
    poll(lambda: drone._link.state_count >= first + 50, 2.0)  # 0.5 s at 100 Hz (slack for a starved peer)
    assert status.mode == "idle" and math.isnan(status.radio_link_quality) and status.supervisor_info == 1
    assert peer.get("protocol_errors") == []


def test_state_decoding_matches_the_vehicle_attitude_and_rates(peer, make_drone):
    drone = make_drone()
    half = 0.5 * 0.4  # 0.4 rad about the axis (1, 2, 2) / 3
    quat = np.array([math.cos(half), *(math.sin(half) * np.array([1.0, 2.0, 2.0]) / 3.0)])
    peer.set("vehicle.frozen", True)  # on a test stand: what the peer logs stays what was placed
    peer.call("vehicle.place", np.array([0.25, -0.5, 1.0]), quat, np.array([0.3, -0.2, 0.1]),
              np.array([0.4, -0.3, 0.2]))
    poll(lambda: drone.read_state().pos_m[2] > 0.9, 1.0)
    true, state = peer.call("vehicle.snapshot"), drone.read_state()
    np.testing.assert_allclose(state.pos_m, true.pos_m, atol=1e-3)  # int16 millimetres
    np.testing.assert_allclose(state.quat_wxyz, true.quat_wxyz, atol=5e-3)  # the 32-bit compressed quaternion
    np.testing.assert_allclose(state.vel_m_s, true.vel_m_s, atol=1e-3)
    np.testing.assert_allclose(state.body_rates_rad_s, true.rates_rad_s, atol=1e-3)  # the legacy pitch sign undone


def test_rates_setpoints_stream_at_125_hz_and_the_peer_decodes_what_command_returned(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.5))
    poll(lambda: peer.call("vehicle.count", "rpyt") >= 2, 0.5)
    first = peer.get("vehicle.received")[0]
    assert peer.get("vehicle.armed") and first.kind == "rpyt" and first.values[3] == 0  # the thrust lock's zero
    sent = hover(drone, rates=(0.3, -0.2, 0.5))
    t0 = time.monotonic()  # CLOCK_MONOTONIC: the peer process stamps packets on the same clock
    poll(lambda: peer.call("vehicle.count", "rpyt", t0) >= 60, 1.0,  # 60 at 125 Hz: 0.48 s
         every=lambda: hover(drone, rates=(0.3, -0.2, 0.5)))  # the policy at 50 Hz, the stream at 125 Hz
    received = [p for p in peer.get("vehicle.received") if p.time_s >= t0]
    roll, pitch, yaw, thrust = received[-1].values
    # cflib negates the pitch (legacy nose-up), the firmware inverts the yaw rate: both undone on the peer
    np.testing.assert_allclose(np.radians([roll, -pitch, -yaw]), sent.body_rates_rad_s, atol=1e-6)
    assert thrust == thrust_u16_for_force(drone.spec.hover_thrust_frac * drone.spec.max_thrust_per_motor_n)
    assert sent.collective_thrust_frac == pytest.approx(motor_force_n(thrust) / drone.spec.max_thrust_per_motor_n)
    assert sent.collective_thrust_frac == pytest.approx(drone.spec.hover_thrust_frac, abs=2e-4)
    period_s = float(np.median(np.diff([p.time_s for p in received])))  # the median: robust to a loaded host
    assert period_s <= 0.01, f"setpoints reached the peer every {period_s * 1000:.1f} ms (median)"
    np.testing.assert_allclose(peer.call("vehicle.snapshot").rates_rad_s, [0.3, -0.2, 0.5], atol=0.1)  # signs
    clipped = hover(drone, rates=(20.0, -20.0, 9.0))
    np.testing.assert_allclose(clipped.body_rates_rad_s, [6.0, -6.0, 3.0], atol=1e-5)
    hover(drone)
    assert peer.get("protocol_errors") == []


def test_attitude_level_sets_angle_mode_and_the_vehicle_tilts_as_asked(peer, make_drone):
    drone = make_drone(level="attitude", velocity_level=False)
    assert drone.spec.command_levels == ("attitude",)
    assert peer.get("vehicle.flight_params")["flightmode.stabModePitch"] == 1
    drone.command(AttitudeCommand(collective_thrust_frac=drone.spec.hover_thrust_frac, roll_rad=0.0, pitch_rad=0.0,
                                  yaw_rate_rad_s=0.0))  # arms
    peer.call("vehicle.place", np.array([0.0, 0.0, 0.5]))
    command = AttitudeCommand(collective_thrust_frac=drone.spec.hover_thrust_frac / math.cos(0.2), roll_rad=0.0,
                              pitch_rad=0.2, yaw_rate_rad_s=0.3)
    sent = drone.command(command)
    assert sent.pitch_rad == pytest.approx(0.2, abs=1e-6) and sent.yaw_rate_rad_s == pytest.approx(0.3, abs=1e-6)
    poll(lambda: peer.call("vehicle.snapshot").vel_m_s[0] > 0.3, 3.0, every=lambda: drone.command(command))
    roll, pitch, yaw, _ = peer.get("vehicle.setpoint").values  # positive pitch: nose down, forward
    np.testing.assert_allclose(np.radians([roll, -pitch, -yaw]), [0.0, 0.2, 0.3], atol=1e-6)
    with pytest.raises(ValueError, match="accepts"):
        hover(drone)


def test_velocity_level_goes_out_as_the_generic_velocity_world_setpoint(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.5))
    sent = drone.command(VelocityCommand(vel_m_s=[3.0, 4.0, 0.0], yaw_rate_rad_s=0.2))
    np.testing.assert_allclose(sent.vel_m_s, [0.6, 0.8, 0.0], atol=1e-6)  # max_speed_m_s 1
    poll(lambda: peer.get("vehicle.setpoint").kind == "velocity", 0.5)
    vx, vy, vz, yaw_rate_deg_s = peer.get("vehicle.setpoint").values
    np.testing.assert_allclose([vx, vy, vz, math.radians(yaw_rate_deg_s)], [*sent.vel_m_s, 0.2], atol=1e-6)
    poll(lambda: peer.call("vehicle.snapshot").vel_m_s[1] > 0.5, 4.0,  # the firmware's controller flies it
         every=lambda: drone.command(VelocityCommand(vel_m_s=[3.0, 4.0, 0.0], yaw_rate_rad_s=0.2)))


def test_motor_level_is_refused_with_the_reason(make_drone):
    drone = make_drone()
    with pytest.raises(NotImplementedError, match="no motor-level setpoint"):
        drone.command(MotorThrusts(thrust_frac=np.full(4, 0.4)))


def test_stop_lands_disarms_and_cuts_the_motors_and_commands_resume(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.3, -0.2, 0.3))
    drone.stop()
    assert drone.read_state().armed and drone.link_status().mode == "landing"
    poll(lambda: not drone.read_state().armed, 5.0)
    poll(lambda: peer.get("vehicle.setpoint").kind == "stop" and not peer.get("vehicle.motors_on"), 0.5)  # cut
    assert peer.get("vehicle.notify_stops")  # and the commander handed back
    true = peer.call("vehicle.snapshot")
    assert true.pos_m[2] < 0.01
    np.testing.assert_allclose(true.pos_m[:2], [0.3, -0.2], atol=0.1)  # straight down
    hover(drone)  # a command re-arms
    assert drone.read_state().armed
    drone.stop()  # on the ground: at once
    poll(lambda: not drone.read_state().armed, 1.0)


def test_emergency_stop_locks_until_restarted(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.3))
    drone.emergency_stop()
    poll(lambda: peer.get("vehicle.locked"), 0.5)
    assert not drone.read_state().armed
    poll(lambda: not peer.get("vehicle.motors_on"), 0.5)
    with pytest.raises(RuntimeError, match="emergency-stopped"):
        hover(drone)


def test_close_lands_before_it_closes_the_link(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.3))
    hover(drone)
    drone.close()
    assert not drone.connected and peer.call("vehicle.snapshot").pos_m[2] < 0.01 and not peer.get("vehicle.motors_on")


def test_quad_hover_runs_on_the_crazyflie_over_the_peer(peer):
    env = robot_rl.make("quad_hover", backend="crazyflie", uri=peer.uri, max_episode_steps=20,
                        target_low_m=(-0.2, -0.2, 0.5), target_high_m=(0.2, 0.2, 0.7), start_offset_m=(0.2, 0.2, 0.2),
                        fence_low_m=(-1.0, -1.0, 0.0), fence_high_m=(1.0, 1.0, 1.5),
                        **FAST)
    try:
        check_spaces_and_aliasing(env, steps=15)
        check_bad_actions(env)
        assert env.unwrapped.backend.link_status().mode in ("flying", "hold")
    finally:
        env.close()
    assert peer.call("vehicle.snapshot").pos_m[2] < 0.01 and peer.get("protocol_errors") == []
