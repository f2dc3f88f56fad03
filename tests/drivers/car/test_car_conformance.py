"""The car backend checks (robot_rl.testing.car_backend) on the MuJoCo car and on the VESC car over a pty against
the emulated VESC: the same observable contract, simulated (in sim time) and through the real packet format (in
wall time, with the command watchdog)."""

from robot_rl.testing.car_backend import check_car_backend

from drivers.car.config import VescConfig
from drivers.car.vesc import VescCar
from sim.car.backend import MujocoCar


def test_the_mujoco_car_passes_the_car_checks():
    check_car_backend(MujocoCar(), watchdog=False)


def test_the_vesc_car_over_the_emulator_passes_the_car_checks(emulator):
    # the rig's default limits, a link timeout generous enough for a loaded 2-core machine
    check_car_backend(VescCar(VescConfig(port=emulator.port, link_timeout_s=1.5)), watchdog=True)
