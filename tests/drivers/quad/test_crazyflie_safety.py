"""The Crazyflie backend's safety over the CRTP peer: the host-side dead-man, geofence, tilt guard and
low-battery landing, link loss (the peer dies; the downlink goes quiet and the firmware lands on its
own), and hostile or garbled peers (a clear error within the deadline, never a hang)."""

import math
import socket
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
from crazyflie_flight import FAST, airborne, hover, poll

from drivers.quad.crazyflie import CrazyflieBackend, CrazyflieLinkLost
from drivers.quad.crazyflie_config import CrazyflieConfig


def mode(drone: CrazyflieBackend) -> str:
    return drone.link_status().mode


def test_dead_man_holds_then_lands_and_a_command_resumes(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.1, 0.2, 0.4))
    hover(drone)
    stopped_s = time.monotonic()  # the policy goes quiet
    poll(lambda: mode(drone) == "hold", 1.0)
    assert 0.2 <= time.monotonic() - stopped_s < 0.8  # watchdog_s 0.2 (slack: a loaded host)
    assert "dead-man" in drone.link_status().events[-1]
    count = peer.call("vehicle.count", "rpyt")
    poll(lambda: mode(drone) == "landing", 1.5)  # after deadman_hold_s 0.3
    assert drone.link_status().setpoint_rate_hz > 60  # the stream never stopped (sent, over the last second)
    poll(lambda: peer.call("vehicle.count", "rpyt") > count + 20, 1.0)  # and they arrive
    np.testing.assert_allclose(peer.call("vehicle.snapshot").pos_m, [0.1, 0.2, 0.4], atol=0.15)  # held there
    poll(lambda: mode(drone) == "idle", 4.0)
    assert peer.call("vehicle.snapshot").pos_m[2] < 0.01
    hover(drone)
    assert mode(drone) == "flying" and drone.read_state().armed


def test_leaving_the_geofence_lands_and_only_touchdown_gives_control_back(peer, make_drone):
    drone = make_drone(geofence_low_m=(-0.5, -0.5, 0.0), geofence_high_m=(0.5, 0.5, 1.5))
    airborne(drone, peer, (0.4, 0.0, 0.4), vel_m_s=(0.8, 0.0, 0.0))
    poll(lambda: mode(drone) == "landing", 1.0, every=lambda: hover(drone))
    assert "left the geofence" in drone.link_status().events[-1]
    sent = hover(drone)  # the policy asks for level flight: it gets the landing
    assert np.abs(sent.body_rates_rad_s).max() > 0.05 or sent.collective_thrust_frac < drone.spec.hover_thrust_frac
    assert mode(drone) == "landing"
    poll(lambda: mode(drone) == "idle", 5.0, every=lambda: hover(drone))
    assert peer.call("vehicle.snapshot").pos_m[2] < 0.01


def test_tilt_guard_levels_out_then_hands_back(peer, make_drone):
    drone = make_drone()
    tilted = (math.cos(0.6), math.sin(0.6), 0.0, 0.0)  # 1.2 rad about body x: beyond tilt_guard_rad 1.0
    airborne(drone, peer, (0.0, 0.0, 1.0), quat_wxyz=tilted)
    poll(lambda: mode(drone) == "hold", 0.5, every=lambda: hover(drone))
    assert "tilt guard" in drone.link_status().events[-1]
    poll(lambda: mode(drone) == "flying", 4.0, every=lambda: hover(drone))  # released once within max_tilt_rad
    state = drone.read_state()
    assert state.quat_wxyz[0] > math.cos(0.6 / 2) and state.pos_m[2] > 0.3  # levelled, still in the air


def test_low_battery_lands_and_refuses_to_fly_again(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.3))
    peer.set("vehicle.battery_v", 3.0)
    poll(lambda: mode(drone) == "landing", 3.0, every=lambda: hover(drone))  # low_battery_dwell_s 0.5
    assert "battery 3.00 V" in drone.link_status().events[-1]
    poll(lambda: mode(drone) == "idle", 4.0, every=lambda: hover(drone))  # commands cannot take it back
    with pytest.raises(RuntimeError, match="swap the battery"):
        hover(drone)


def test_a_dead_peer_is_reported_within_the_link_timeout_and_nothing_hangs(peer, make_drone):
    drone = make_drone(link_timeout_s=0.3)
    airborne(drone, peer, (0.0, 0.0, 0.3))
    hover(drone)
    peer.call("kill")
    killed_s = time.monotonic()
    poll(lambda: mode(drone) == "lost", 1.0)
    assert time.monotonic() - killed_s < 0.3 + 0.2  # link_timeout_s 0.3, or cflib's own error sooner
    with pytest.raises(CrazyflieLinkLost, match="link lost"):
        drone.read_state()
    with pytest.raises(CrazyflieLinkLost, match="land on its own"):
        hover(drone)
    drone.stop()  # only logs: there is nothing to send
    closing_s = time.monotonic()
    drone.close()
    assert time.monotonic() - closing_s < 2.0 and not drone.connected


def test_a_quiet_downlink_makes_the_firmware_land_on_its_own(peer, make_drone):
    drone = make_drone(link_timeout_s=0.3)
    airborne(drone, peer, (0.0, 0.0, 0.4))
    hover(drone)
    peer.set("downlink_muted", True)  # the radio out of range one way: setpoints still arrive
    poll(lambda: mode(drone) == "lost", 2.0)
    assert "no state estimate" in drone.link_status().lost_reason
    poll(lambda: peer.get("vehicle.setpoint").kind == "land", 0.5)
    height_m, _, _, duration_s = peer.get("vehicle.setpoint").values
    assert height_m == 0.0 and 1.0 < duration_s < 2.0  # height / land_speed_m_s + 1 s
    poll(lambda: peer.call("vehicle.snapshot").pos_m[2] < 0.02, 6.0)  # the high-level commander landed it
    drone.emergency_stop()  # still sent with the link counted lost: the uplink may work
    poll(lambda: peer.get("vehicle.locked"), 0.5)


def test_garbled_toc_fails_the_connection_with_a_clear_error_in_time(peer):
    peer.set("garble_toc_item", 3)  # a log TOC item with a type byte no firmware sends
    drone = CrazyflieBackend(CrazyflieConfig(uri=peer.uri, **{**FAST, "connect_timeout_s": 1.0}))
    started_s = time.monotonic()
    with pytest.raises(ConnectionError, match="TOC download stalled"):
        drone.connect()
    # the timeout plus cflib's own teardown (its threads join in up to ~1 s under load)
    assert time.monotonic() - started_s < 3.0 and not drone.connected


def test_a_firmware_that_does_not_take_the_flight_mode_is_refused(peer):
    peer.set("refuse_params", True)
    drone = CrazyflieBackend(CrazyflieConfig(uri=peer.uri, **{**FAST, "connect_timeout_s": 1.0}))
    with pytest.raises(ConnectionError, match="flightmode.stabModeRoll was not confirmed as 0"):
        drone.connect()


def test_nobody_at_the_address_fails_fast():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed
    drone = CrazyflieBackend(CrazyflieConfig(uri=f"udp://127.0.0.1:{port}", **{**FAST, "connect_timeout_s": 1.0}))
    started_s = time.monotonic()
    with pytest.raises(ConnectionError, match="connection failed"):
        drone.connect()
    assert time.monotonic() - started_s < 1.5


def test_garbage_packets_from_the_peer_are_survived(peer, make_drone):
    drone = make_drone()
    airborne(drone, peer, (0.0, 0.0, 0.4))
    state_block = next(i for i, b in peer.get("blocks").items() if len(b.variables) == 10)
    garbage = [b"", bytes(200), b"\x5e" + bytes([state_block]) + b"\x01\x02",  # a state log packet cut short
               b"\x5d\x06", b"\x2c\xff\xff\x07", b"\x9c\x8c", b"\xfc" + struct.pack("<Bi", 0, 7),  # bad echo
               b"\x0c" + b"console says hi", b"\xac" + bytes(range(30)), b"\x3c" + bytes(14)]
    for _ in range(5):
        for raw in garbage:
            peer.call("inject", raw)
        hover(drone)
    poll(lambda: drone.link_status().state_age_s < 0.05, 0.5, every=lambda: hover(drone))
    assert mode(drone) == "flying" and abs(drone.read_state().pos_m[2] - 0.4) < 0.15


def test_a_firmware_without_the_supervisor_log_still_arms(peer_process):
    peer_process.restart(supervisor_info=False)
    drone = CrazyflieBackend(CrazyflieConfig(uri=peer_process.uri, **FAST))
    with drone:
        assert drone.link_status().supervisor_info is None
        hover(drone)
        poll(lambda: peer_process.get("vehicle.armed"), 0.5)
        drone.stop()
        poll(lambda: not drone.read_state().armed, 1.0)


FLY_UNTIL_STDIN = """
import select, sys
import numpy as np
from drivers.quad.crazyflie import CrazyflieBackend
from drivers.quad.crazyflie_config import CrazyflieConfig
from robot_rl.backends.quadrotor import ThrustRates
drone = CrazyflieBackend(CrazyflieConfig(uri=sys.argv[1], land_speed_m_s=1.0, touchdown_height_m=0.03))
drone.connect()
hover = ThrustRates(collective_thrust_frac=drone.spec.hover_thrust_frac, body_rates_rad_s=np.zeros(3))
drone.command(hover)
print("armed", flush=True)
while not select.select([sys.stdin], [], [], 0.02)[0]:
    drone.command(hover)
print("exiting at", drone.read_state().pos_m[2], flush=True)  # and ends without close()
"""


def test_a_script_that_ends_without_close_still_lands(peer):
    script = subprocess.Popen([sys.executable, "-c", FLY_UNTIL_STDIN, peer.uri], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert script.stdout.readline().strip() == "armed"
        peer.call("vehicle.place", np.array([0.0, 0.0, 0.4]))
        poll(lambda: peer.call("vehicle.snapshot").pos_m[2] > 0.3 and peer.call("vehicle.count", "rpyt") > 50, 2.0)
        script.stdin.write("bye\n")
        script.stdin.flush()
        assert float(script.stdout.readline().split()[-1]) > 0.3  # it was flying when the script ended
        assert script.wait(timeout=10.0) == 0
    finally:
        script.kill()
    assert peer.call("vehicle.snapshot").pos_m[2] < 0.02  # down by the time the process had ended
    kinds = [p.kind for p in peer.get("vehicle.received")]
    assert "stop" in kinds and peer.get("vehicle.setpoint").values[3] == 0  # touchdown cut, cflib's last zero
