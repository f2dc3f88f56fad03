"""The real RC car: a VESC motor controller over a serial port, the ``vesc`` backend of the ``car``
family (registered in :mod:`drivers.car.registration`, entry point in pyproject.toml; the contract
is :mod:`robot_rl.backends.car`).

* :mod:`drivers.car.vesc_codec`: the VESC packet format (framing, CRC16-XMODEM) and command payloads;
* :mod:`drivers.car.vesc_values`: the ``COMM_GET_VALUES`` telemetry reply (firmware 3.x-6.x layout);
* :mod:`drivers.car.config`: the per-rig settings (:class:`~drivers.car.config.VescConfig`, a TOML rig file);
* :mod:`drivers.car.control`: the speed/steer controller (m/s -> ERPM, steering -> servo) as array functions;
* :mod:`drivers.car.link`: the serial link (pyserial, imported on ``connect()``);
* :mod:`drivers.car.vesc`: :class:`~drivers.car.vesc.VescCar`, the backend, with its I/O thread and safety rules.

Importing this package is cheap (it imports nothing); pyserial is imported when the backend connects.
"""
