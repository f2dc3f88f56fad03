"""Our VESC codec against pyvesc's frames (where pyvesc 1.0.5 works), the firmware's scalings,
the telemetry layout, and a decoder that survives hostile byte streams."""

import struct

import pytest

from drivers.car import vesc_codec as codec
from drivers.car.vesc_values import parse_values

pyvesc = pytest.importorskip("pyvesc", reason="pyvesc (test extra, needs pythoncrc) is the reference framing")
from pyvesc.packet.codec import frame as pyvesc_frame
from vesc_emulator import values_reply


def test_crc16_xmodem_check_value():
    assert codec.crc16_xmodem(b"123456789") == 0x31C3  # the CRC-16/XMODEM catalogue check value


@pytest.mark.parametrize("ours, theirs", [
    (lambda: codec.set_rpm(3000), lambda: pyvesc.encode(pyvesc.SetRPM(3000))),
    (lambda: codec.set_rpm(-12345), lambda: pyvesc.encode(pyvesc.SetRPM(-12345))),
    (lambda: codec.set_current(5.0), lambda: pyvesc.encode(pyvesc.SetCurrent(5000))),  # pyvesc: mA
    (lambda: codec.set_current_brake(10.0), lambda: pyvesc.encode(pyvesc.SetCurrentBrake(10000))),
    (lambda: codec.set_duty(0.25), lambda: pyvesc.encode(pyvesc.SetDutyCycle(25000))),  # pyvesc: raw 1e5
    (lambda: codec.set_duty(-1.0), lambda: pyvesc.encode(pyvesc.SetDutyCycle(-100000))),
    (codec.get_values, lambda: pyvesc.encode_request(pyvesc.GetValues)),
])
def test_frames_equal_pyvesc(ours, theirs):
    assert codec.encode_frame(ours()) == theirs()


@pytest.mark.parametrize("size", [1, 255, 256, 1000])
def test_short_and_long_frames_equal_pyvesc_framing(size):
    payload = bytes(range(256)) * 4
    ours = codec.encode_frame(payload[:size])
    assert ours == pyvesc_frame(payload[:size])
    assert ours[0] == (2 if size < 256 else 3)


def test_servo_and_alive_payloads_follow_the_firmware():
    # COMM_SET_SERVO_POS: buffer_get_float16(data, 1000.0): int16 position * 1000; COMM_ALIVE: no fields
    assert codec.set_servo_pos(0.5304) == bytes([12]) + struct.pack(">h", 530)
    assert codec.alive() == bytes([30])
    assert codec.parse_command(codec.set_servo_pos(0.75)) == ("SET_SERVO_POS", 0.75)
    assert codec.parse_command(codec.set_rpm(-4000)) == ("SET_RPM", -4000.0)
    assert codec.parse_command(codec.alive()) == ("ALIVE", None)


@pytest.mark.parametrize("build, message", [
    (lambda: codec.set_duty(1.5), "duty must be in"),
    (lambda: codec.set_servo_pos(-0.1), "position must be in"),
    (lambda: codec.set_current_brake(-1.0), "brake current must be >= 0"),
    (lambda: codec.set_rpm(3e9), "out of the field's range"),
    (lambda: codec.encode_frame(b""), "1..65535 bytes"),
    (lambda: codec.parse_command(b"\x63"), "unknown VESC command id 63"),
    (lambda: codec.parse_command(b"\x08\x00"), "payload of 2 bytes, expected 5"),
])
def test_bad_values_are_clear_errors(build, message):
    with pytest.raises(codec.VescProtocolError, match=message):
        build()


def test_decoder_finds_frames_in_any_chunking_and_skips_garbage():
    a, b = codec.encode_frame(codec.set_rpm(1000)), codec.encode_frame(bytes(300))
    stream = b"\x00\xff" + a + b
    decoder = codec.FrameDecoder()
    out = [p for i in range(len(stream)) for p in decoder.feed(stream[i:i + 1])]  # one byte at a time
    assert out == [codec.set_rpm(1000), bytes(300)]
    assert decoder.stats.frames == 2 and decoder.stats.skipped_bytes == 2
    assert decoder.take_errors() == [("garbage", "1 byte(s) outside any frame: 00"),
                                     ("garbage", "1 byte(s) outside any frame: ff")]
    decoder.feed(b"\x00\xff" + a)  # in one chunk: one report
    assert decoder.take_errors() == [("garbage", "2 byte(s) outside any frame: 00ff")]


@pytest.mark.parametrize("damage, reason", [
    (lambda f: f[:-3] + bytes([f[-3] ^ 0x40]) + f[-2:], "bad CRC"),
    (lambda f: f[:-1] + b"\x07", "bad stop byte"),
    (lambda f: b"\x03\xff\xff" + f[2:], "bad length"),  # a long frame declaring 65535 bytes
])
def test_corrupt_frames_are_rejected_and_the_next_good_one_is_found(damage, reason):
    good = codec.encode_frame(codec.set_rpm(1000))
    decoder = codec.FrameDecoder()
    assert decoder.feed(damage(good) + good) == [codec.set_rpm(1000)]
    reasons = [r for r, _ in decoder.take_errors()]
    assert reasons[0] == reason and decoder.stats.frames == 1  # remains of the bad frame may be rejected too


def test_a_huge_short_length_waits_then_is_dropped_as_truncated_when_good_frames_follow():
    good = codec.encode_frame(codec.get_values())
    decoder = codec.FrameDecoder()
    assert decoder.feed(b"\x02\xff\x04\x01") == []  # declares 255 bytes: could still be coming
    assert decoder.take_errors() == []
    assert decoder.feed(good) == [codec.get_values()]
    assert [r for r, _ in decoder.take_errors()] == ["truncated frame"]


def test_a_stream_of_fake_start_bytes_leaves_a_small_buffer_and_a_working_decoder():
    decoder = codec.FrameDecoder()
    assert decoder.feed(b"\x02\xff" + b"\x02" * 20000 + b"\x03\x03\xff") == []
    assert len(decoder._buf) <= codec.MAX_PAYLOAD_BYTES + 6  # at most one incomplete candidate is held
    assert decoder.stats.rejected["bad CRC"] > 1000
    assert decoder.feed(codec.encode_frame(codec.alive()) * 2)[-1:] == [codec.alive()]


def test_values_reply_parses_in_si_units():
    values = parse_values(values_reply(erpm=-12000, battery_v=11.7, fault_code=2, motor_current_a=3.25,
                                       input_current_a=-1.5, duty=0.123, tachometer=-42))
    assert values.erpm == -12000 and values.input_voltage_v == pytest.approx(11.7)
    assert values.motor_current_a == pytest.approx(3.25) and values.input_current_a == pytest.approx(-1.5)
    assert values.duty == pytest.approx(0.123) and values.tachometer == -42 and values.tachometer_abs == 42
    assert values.fault_code == 2 and values.fault == "FAULT_CODE_UNDER_VOLTAGE"
    assert values.temp_fet_c == pytest.approx(25.0) and values.temp_mos3_c == pytest.approx(28.0)
    assert values.vq_v == pytest.approx(0.2) and values.status == 0


def test_values_reply_short_forms_and_errors():
    basic = parse_values(values_reply(erpm=1, battery_v=12.0, fault_code=0, extended=False))
    assert basic.pid_pos_deg is None and basic.vd_v is None and basic.status is None
    longer = parse_values(values_reply(erpm=1, battery_v=12.0, fault_code=99) + bytes(40))  # newer firmware
    assert longer.fault == "FAULT_CODE_99"
    with pytest.raises(codec.VescProtocolError, match="needs at least 54"):
        parse_values(values_reply(erpm=1, battery_v=12.0, fault_code=0)[:30])
    with pytest.raises(codec.VescProtocolError, match="not a GET_VALUES reply"):
        parse_values(codec.set_rpm(5))
