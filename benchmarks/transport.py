"""Transport benchmark: our wire codec against agentlace (SERL's transport) and a leaner pickle.

    .venv/bin/python benchmarks/transport.py            # [--seconds 3] [--no-ingest]

Needs lz4 (``pip install -e '.[bench]'``). Every number comes from processes on this machine
talking over tcp://127.0.0.1, all variants measured in the same run. The variants, and the data
they send (chunks of 10 steps, what our actor sends by default, ``--chunk-steps 10``; camera
images rendered once from pick_cube, the same for every variant), are described in
benchmarks/transport_agentlace.py: ``ours`` (DEALER -> ROUTER typed messages, no waiting per
message), ``agentlace`` (faithful to SERL's agentlace: one dict per step with observations and
next_observations, two lz4+pickle REQ -> REP round trips per update, per-transition inserts) and
``lean`` (one pickled dict of stacked arrays per chunk, no compression, one round trip).

1. image transitions/s: 30 float32 state + two 128x128x3 uint8 cameras + 7 float32 action,
2. state transitions/s: 30 float32 state + 7 float32 action. The sender sends as fast as it
   can; the receiver copies every transition into a preallocated ring. Also: CPU time per
   transition, sender + receiver processes (all threads), which this shared 2-core machine
   disturbs less than the rates. Each variant runs twice, alternating; the best run is shown.
3. learner SAC updates/s while ingesting transitions offered at a fixed rate, ours against
   agentlace (benchmarks/transport_ingest.py; ``--no-ingest`` skips it).
4. weight broadcast latency (1M and 10M float32 parameters) and 10 Hz control-loop jitter while
   10M-parameter weights arrive every 0.5 s, for ours, agentlace (lz4 + pickle, received in a
   background thread) and a naive pickle actor (benchmarks/transport_weights.py). A run without
   weights shows the machine's own jitter.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import zmq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transport_agentlace import (CHUNK, SENDERS, VARIANTS, Frames, camera_frames, end_process,  # noqa: E402
                                 make_receiver, make_ring, open_socket, wire_bytes)
from transport_weights import PUBLISH_EVERY_S, WEIGHT_VARIANTS, loop_jitter_ms, weight_latencies_ms  # noqa: E402

START_TIMEOUT_S = 60.0  # a spawned process must be up within this
JITTER_ROUNDS = 3  # each jitter variant (and the floor) runs this many times, alternating
COLUMNS = {"agentlace": "agentlace-faithful", "lean": "pickle, stacked arrays (leaner than agentlace)"}


# ------------------------------------------------------------------------- transitions/s


def sender(variant: str, endpoint: str, frames: Frames | None, stop: mp.Event, report: mp.Queue) -> None:
    """Send chunks until ``stop``; report (transitions sent, CPU seconds of this process)."""
    context = zmq.Context()
    socket = open_socket(context, variant, frames, bind=False)
    socket.connect(endpoint)
    send, seq = SENDERS[variant](socket, frames, stop), 0
    cpu = time.process_time()  # every thread of the process, ZeroMQ's I/O thread included
    while not stop.is_set():
        send(seq)
        seq += 1
    report.put((seq * CHUNK, time.process_time() - cpu))
    context.destroy(linger=0)


def receive_for(socket: zmq.Socket, receive: Callable[[], int], seconds: float) -> tuple[int, float, float]:
    """Receive for ``seconds``; returns (transitions, wall seconds, CPU seconds of this process)."""
    if not socket.poll(int(START_TIMEOUT_S * 1000), zmq.POLLIN):
        raise RuntimeError("the sender process sent nothing within the start timeout")
    receive()
    count, start, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        if socket.poll(100, zmq.POLLIN):
            count += receive()
    return count, time.perf_counter() - start, time.process_time() - cpu


def transitions_per_s(variant: str, frames: Frames | None, seconds: float) -> dict:
    """Transitions/s received, and CPU microseconds per transition (sender + receiver)."""
    context, spawn = zmq.Context(), mp.get_context("spawn")
    socket = open_socket(context, variant, frames, bind=True)
    socket.bind("tcp://127.0.0.1:*")
    stop, report = spawn.Event(), spawn.Queue()
    process = spawn.Process(target=sender, args=(variant, socket.getsockopt_string(zmq.LAST_ENDPOINT), frames, stop, report))
    process.start()
    try:
        receive = make_receiver(variant, socket, make_ring(variant, frames))
        count, wall, cpu = receive_for(socket, receive, seconds)
        stop.set()
        sent, sender_cpu = report.get(timeout=10)
        return {"rate": count / wall, "cpu_us": (cpu / count + sender_cpu / sent) * 1e6}
    finally:
        stop.set()
        end_process(process)
        context.destroy(linger=0)


def best_of(runs: int, measure: Callable[[str], dict]) -> dict[str, dict]:
    """Alternate the variants ``runs`` times; keep each one's best (this machine is shared)."""
    results: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for _ in range(runs):
        for variant in VARIANTS:
            results[variant].append(measure(variant))
    return {v: {"rate": max(r["rate"] for r in rs), "cpu_us": min(r["cpu_us"] for r in rs)} for v, rs in results.items()}


# ------------------------------------------------------------------------------ report


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"machine: {model}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); {platform.platform()}\n"
            f"versions: Python {platform.python_version()}, numpy {np.__version__}, pyzmq {zmq.__version__}, libzmq {zmq.zmq_version()}")


def row(name: str, values: dict[str, float | None], higher_is_better: bool, unit_format: str = "{:,.0f}") -> str:
    """ours, then each baseline and how much better ours is ("-": not measured)."""
    cells = [unit_format.format(values["ours"])]
    for baseline in COLUMNS:
        value = values.get(baseline)
        ratio = None if value is None else (values["ours"] / value if higher_is_better else value / values["ours"])
        cells += ["-", "-"] if value is None else [unit_format.format(value), f"{ratio:.1f}x"]
    return f"| {name} | " + " | ".join(cells) + " |"


def transition_rows(frames: Frames, seconds: float) -> list[str]:
    lines = []
    for kind_frames, name in ((frames, "image transitions"), (None, "state transitions")):
        best = best_of(2, lambda variant: transitions_per_s(variant, kind_frames, seconds))
        lines.append(row(f"{name}/s", {v: best[v]["rate"] for v in VARIANTS}, True))
        lines.append(row(f"{name}: CPU us per transition, both processes", {v: best[v]["cpu_us"] for v in VARIANTS}, False, "{:.0f}"))
    return lines


def ingest_rows(frames: Frames, seconds: float) -> tuple[list[str], str]:
    import transport_ingest

    found, lines = transport_ingest.measure(frames, seconds), []
    for kind, what in (("state", "30 floats"), ("images", "2 x 128x128 + 30 floats")):
        offered = transport_ingest.OFFERED[kind]
        pair = {v: found[(kind, v)] for v in ("ours", "agentlace")}
        lines.append(row(f"learner SAC updates/s (state config, batch 256, 1 thread) while ingesting {offered:,.0f} "
                         f"transitions/s ({what})", {v: r["updates"] for v, r in pair.items()}, True, "{:.1f}"))
        lines.append(row(f"  transitions/s ingested meanwhile, of {offered:,.0f} offered",
                         {v: r["ingested"] for v, r in pair.items()}, True))
        lines.append(row("  learner-process CPU us per ingested transition", {v: r["cpu_us"] for v, r in pair.items()}, False))
    return lines, f"the same learner loop with nothing sent: {found['none']['updates']:.1f} updates/s"


def weight_and_jitter_rows(seconds: float) -> tuple[list[str], str]:
    lines = []
    for total, samples in ((1_000_000, 30), (10_000_000, 12)):
        found = {v: weight_latencies_ms(v, total, samples) for v in WEIGHT_VARIANTS}
        label = f"{total // 1_000_000}M f32 weights publish -> decoded, ms"
        for stat, fn in (("median", np.median), ("p95", lambda x: np.percentile(x, 95))):
            lines.append(row(f"{label}, {stat}", {v: float(fn(ms)) for v, ms in found.items()}, False, "{:.1f}"))
    runs: dict[str, list[dict]] = {v: [] for v in (*WEIGHT_VARIANTS, "floor")}
    for _ in range(JITTER_ROUNDS):  # alternating: this VM's own jitter comes and goes (0.1-9 ms p99 seen)
        for variant in WEIGHT_VARIANTS:
            runs[variant].append(loop_jitter_ms(variant, seconds))
        runs["floor"].append(loop_jitter_ms("ours", seconds, publish=False))
    median = {v: {stat: float(np.median([r[stat] for r in rs])) for stat in ("p99", "max", "updates")} for v, rs in runs.items()}
    for stat in ("p99", "max"):
        lines.append(row(f"10 Hz loop abs(action period - 100 ms), {stat}, ms (10M weights every {PUBLISH_EVERY_S} s; "
                         f"median of {JITTER_ROUNDS} runs)", {v: median[v][stat] for v in WEIGHT_VARIANTS}, False, "{:.2f}"))
    swapped = ", ".join(f"{v} {median[v]['updates']:.0f}" for v in WEIGHT_VARIANTS)
    each = "; ".join(f"{v} " + "/".join(f"{r['p99']:.2f}" for r in rs) for v, rs in runs.items())
    return lines, (f"weight updates swapped in per jitter run (median): {swapped}; the same loop without weights "
                   f"(this machine's floor): p99 {median['floor']['p99']:.2f} ms, max {median['floor']['max']:.2f} ms; "
                   f"every run's p99 (ms): {each}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring window per throughput run (the jitter runs take 3x)")
    parser.add_argument("--no-ingest", action="store_true", help="skip the learner-updates-while-ingesting rows")
    args = parser.parse_args()
    print(machine(), f"\nload average before the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    frames, source = camera_frames()
    print(f"camera images: {source}", end="\n\n", flush=True)
    notes = ["bytes per image transition on the wire (requests): " +
             ", ".join(f"{v} {wire_bytes(v, frames):,.0f}" for v in VARIANTS) + "; state: " +
             ", ".join(f"{v} {wire_bytes(v, None):,.0f}" for v in VARIANTS)]
    lines = ["| measurement | ours | " + " | ".join(f"{name} | ours better by" for name in COLUMNS.values()) + " |",
             "|---|---|---|---|---|---|"] + transition_rows(frames, args.seconds)
    if not args.no_ingest:
        more, note = ingest_rows(frames, args.seconds)
        lines, notes = lines + more, notes + [note]
    more, note = weight_and_jitter_rows(3 * max(args.seconds, 3.0))
    print("\n".join(lines + more))
    print("\n" + "\n".join(notes + [note, "weights and jitter: agentlace = lz4 + pickle, received in a background thread; "
                                     "lean = plain pickle, received in the control loop (a naive actor)"]))
    print(f"load average after the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
