"""A person at a (virtual) gamepad, acting in step with the env, for the car and quadrotor teleop tests.

The pad is a real SDL virtual joystick (:class:`drivers.teleop.testing.VirtualJoystick`) read by the
gamepad driver through pygame; the driver samples it in ``poll`` (``sample_hz=None``), so what the
person does after step k is what the human's command at step k+1 is made of: no timing, no threads.
"""

import gymnasium as gym

LEFT_X, LEFT_Y, LT, RIGHT_X, RIGHT_Y, RT = 0, 1, 2, 3, 4, 5
A, B, X, Y, LB, RB, BACK, START = 0, 1, 2, 3, 4, 5, 6, 7


def rest(pad):
    """Sticks centred, triggers released (raw -1), no button."""
    for axis in (LEFT_X, LEFT_Y, RIGHT_X, RIGHT_Y):
        pad.set_axis(axis, 0.0)
    pad.set_axis(LT, -1.0)
    pad.set_axis(RT, -1.0)
    for button in range(pad.num_buttons):
        pad.set_button(button, False)


class Person(gym.Wrapper):
    """Runs ``script[k]()`` after the env's step k (1-based) and keeps every step's backend state.

    Attributes:
        states: the backend state after each step of the current episode.
        infos: each step's ``info``.
    """

    def __init__(self, env: gym.Env, script: dict) -> None:
        super().__init__(env)
        self.script = script
        self.states, self.infos = [], []

    def reset(self, **kwargs):
        self.states, self.infos = [], []
        return self.env.reset(**kwargs)

    def step(self, action):
        out = self.env.step(action)
        self.states.append(self.env.unwrapped.state)
        self.infos.append(out[-1])
        act = self.script.get(len(self.states))
        if act is not None:
            act()
        return out
