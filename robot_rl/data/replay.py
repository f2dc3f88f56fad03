"""A preallocated ring buffer of transitions that stores every observation once.

Slot ``i`` holds one canonical observation (``"state"`` float32 plus uint8 camera images, see
:class:`~robot_rl.data.schema.ObsSpec`). The transition out of slot ``i`` (its action, reward and
``terminated`` flag) leads to the observation in slot ``(i + 1) % capacity``, which is therefore
both the ``next_obs`` of one transition and the ``obs`` of the next: images are stored once.
``valid[i]`` says whether slot ``i`` has such a transition. Writing an observation into a slot
clears the slot's flag (its old successor no longer follows it); only ``add`` sets the flag of
the slot before, when it continues the same episode. So the latest observation is never valid,
the last observation of an episode never becomes valid, and sampling never crosses an episode
boundary or the ring's write position (the successor of slot ``capacity - 1`` is slot 0).
An episode added in segments (``add_segment``, e.g. the chunks actors send) stays one episode for
n-step sampling: each segment's end is linked to the next segment (:mod:`robot_rl.data.segments`).

Several episodes can be open at once, one per *lane* (the sub-envs of a vector env:
``start_episode(obs, lane)``, ``add_batch``): their steps interleave in the ring, so each slot
also records its successor slot (``_succ``; ``i + 1`` when one episode is written alone) and
transitions and n-step walks follow it. A slot is always written before its successor, so the
rule above (writing a slot kills its outgoing transition) still keeps every valid transition whole.

``terminated`` is stored per transition; a truncated step is stored as an ordinary transition
(``terminated`` 0.0, it bootstraps from the real ``next_obs``) that ends the episode.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from robot_rl.data.episodes import Episode
from robot_rl.data.memory import announce_memory, available_memory_bytes, describe_obs  # noqa: F401  (available_memory_bytes: re-exported)
from robot_rl.data.nstep import n_step_transitions
from robot_rl.data.replay_checks import check_episode, check_obs, check_out, check_step, check_steps
from robot_rl.data.segments import SegmentEnd, SegmentLinks
from robot_rl.data.schema import Batch, ObsSpec

logger = logging.getLogger(__name__)

STATE_DICT_VERSION = 1
# Rejection sampling gives up (and draws from the list of valid slots) after this many rounds, or
# at once when fewer than this share of the filled slots are valid (many one-step episodes).
_MAX_REJECTION_ROUNDS = 8
_MIN_ACCEPTANCE = 0.25


class ReplayBuffer:
    """Uniform replay over the valid transitions of a fixed number of observation slots.

    Feed it online with ``start_episode(obs)`` then ``add(...)`` per step (``add_batch`` for the
    N sub-envs of a vector env, one lane each), or with whole episodes from the episode store
    (``add_episode``). ``sample`` returns a numpy
    :class:`~robot_rl.data.schema.Batch` drawn with the buffer's own seeded generator.
    """

    def __init__(self, obs_spec: ObsSpec, action_dim: int, capacity: int, name: str = "online", seed: int = 0,
                 check_memory: bool = True) -> None:
        if int(capacity) < 2:
            raise ValueError(f"replay {name!r}: capacity must be at least 2 slots, got {capacity}")
        if int(action_dim) < 1:
            raise ValueError(f"replay {name!r}: action_dim must be at least 1, got {action_dim}")
        self.obs_spec, self.action_dim, self.capacity, self.name = obs_spec, int(action_dim), int(capacity), name
        self._shapes = self._slot_shapes(obs_spec)  # what one slot stores, per observation key
        announce_memory(self, check_memory)
        self._obs = {key: np.empty((self.capacity, *shape), dtype) for key, (shape, dtype) in self._shapes.items()}
        self._action = np.empty((self.capacity, self.action_dim), np.float32)
        self._reward = np.empty(self.capacity, np.float32)
        self._terminated = np.empty(self.capacity, np.bool_)
        self._valid = np.zeros(self.capacity, np.bool_)
        self._succ = np.zeros(self.capacity, np.int64)  # the slot each transition leads to
        self._links = SegmentLinks(self.capacity)  # write serials and segment links, per slot
        self._rng = np.random.default_rng(seed)
        self._next = 0  # the slot the next observation is written to
        self._filled = 0  # slots 0.._filled-1 hold an observation
        self._count = 0  # number of valid transitions
        self._added = 0  # transitions added since construction (never decreases)
        self._open: dict[int, int] = {}  # lane -> slot of its open episode's latest observation

    @staticmethod
    def bytes_needed(obs_spec: ObsSpec, action_dim: int, capacity: int) -> int:
        """Bytes of all preallocated arrays: observations once, action, reward, two flags, segment links."""
        return _bytes_per_slot(obs_spec.shapes(), action_dim) * int(capacity)

    def planned_nbytes(self) -> int:
        """Bytes this buffer allocates (known before it does; the memory budget line shows it)."""
        return _bytes_per_slot(self._shapes, self.action_dim) * self.capacity

    def describe_contents(self) -> str:
        """What one slot holds, for the memory budget line (e.g. ``2 cameras 128x128 uint8 + 7 floats``)."""
        return describe_obs(self.obs_spec)

    def _slot_shapes(self, obs_spec: ObsSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Key -> (shape, dtype) stored per slot: the canonical observation (subclasses may store another form)."""
        return obs_spec.shapes()

    def _gather_obs(self, slots: np.ndarray) -> dict[str, np.ndarray]:
        """The stored observations of ``slots``, as a batch (new arrays)."""
        return {key: array[slots] for key, array in self._obs.items()}

    @property
    def nbytes(self) -> int:
        """Bytes actually allocated (equals :meth:`bytes_needed`)."""
        arrays = [*self._obs.values(), self._action, self._reward, self._terminated, self._valid, self._succ]
        return sum(array.nbytes for array in arrays) + self._links.nbytes

    def __len__(self) -> int:
        return self._count

    @property
    def transitions_added(self) -> int:
        """Transitions added since construction, including those since overwritten."""
        return self._added

    # ------------------------------------------------------------------ writing
    def start_episode(self, obs: Mapping[str, np.ndarray], lane: int = 0) -> None:
        """Store the first observation of a new episode in ``lane`` (ends the lane's episode in progress)."""
        obs = check_obs(self.name, self._shapes, obs, "obs")
        self._open[int(lane)] = self._write_obs(obs)

    def add(self, action: Any, reward: float, terminated: bool, truncated: bool,
            next_obs: Mapping[str, np.ndarray], lane: int = 0) -> None:
        """Store ``next_obs`` in the next slot; the step from the lane's previous slot becomes sampleable."""
        if lane not in self._open:
            raise ValueError(f"replay {self.name!r}: no episode in progress (lane {lane}); call start_episode(obs) first "
                             "(an episode ends at terminated/truncated, or when add_episode is called)")
        action, reward = check_step(self.name, self.action_dim, action, reward)
        next_obs = check_obs(self.name, self._shapes, next_obs, "next_obs")
        prev = self._open[lane]
        slot = self._write_obs(next_obs)
        self._action[prev], self._reward[prev], self._terminated[prev] = action, reward, bool(terminated)
        self._succ[prev] = slot
        self._set_valid(prev, True)
        self._added += 1
        if terminated or truncated:
            del self._open[lane]
        else:
            self._open[lane] = slot

    def add_batch(self, actions: Any, rewards: Any, terminated: Any, truncated: Any, next_obs: Mapping[str, np.ndarray]) -> None:
        """One step of N parallel episodes (lanes ``0..N-1``, each started with ``start_episode``):
        ``actions (N, A)``, ``rewards``, ``terminated``, ``truncated`` ``(N,)`` and ``next_obs`` with
        a leading ``N`` axis. A lane whose episode ended needs ``start_episode(obs, lane)`` again."""
        actions, rewards, terminated, truncated = check_steps(self.name, self.action_dim, actions, rewards, terminated, truncated)
        n = len(rewards)
        missing = [lane for lane in range(n) if lane not in self._open]
        if missing:
            raise ValueError(f"replay {self.name!r}: lanes {missing} have no episode in progress; call start_episode(obs, lane) first")
        next_obs = check_obs(self.name, self._shapes, next_obs, "next_obs", batch=n)
        prev = np.array([self._open[lane] for lane in range(n)], np.int64)
        slots = (self._next + np.arange(n)) % self.capacity
        if np.intersect1d(prev, slots).size:
            raise ValueError(f"replay {self.name!r}: capacity {self.capacity} is too small for {n} parallel episodes")
        self._write_obs_batch(next_obs, slots)
        self._action[prev], self._reward[prev], self._terminated[prev], self._succ[prev] = actions, rewards, terminated, slots
        self._count += int(np.count_nonzero(~self._valid[prev]))
        self._valid[prev] = True
        self._added += n
        for lane, slot, done in zip(range(n), slots.tolist(), (terminated | truncated).tolist()):
            if done:
                del self._open[lane]
            else:
                self._open[lane] = slot

    def add_episode(self, episode: Episode) -> int:
        """Add every transition of an on-disk episode; returns how many were added.

        The episode's observation keys must be the buffer's (``"state"`` plus the cameras; a
        state-mode episode holds only ``"state"``). An episode longer than the buffer keeps its
        last ``capacity - 1`` transitions. Ends any episode in progress.
        """
        added = self._added
        self.add_segment(episode)
        return self._added - added

    def add_segment(self, episode: Episode, after: SegmentEnd | None = None) -> SegmentEnd:
        """:meth:`add_episode`, returning where the segment's last observation is (slot, write serial).

        ``after``: what ``add_segment`` returned for the segment this one continues; the caller
        guarantees that ``episode``'s first observation IS the one at ``after`` (same episode, next
        steps). n-step walks then go on into this segment, unless ``after``'s slot was overwritten
        since or this segment's first observation did not fit (longer than the buffer).
        """
        observations = check_episode(self.name, self._shapes, self.action_dim, episode)
        self._links.check(after)
        steps = len(episode.actions)
        keep = min(steps + 1, self.capacity)  # observations that fit
        first = steps + 1 - keep
        slots = (self._next + np.arange(keep)) % self.capacity
        for key, array in observations.items():
            self._obs[key][slots] = array[first:]
        moves = slots[:-1]
        self._action[moves] = episode.actions[first:]
        self._reward[moves] = episode.rewards[first:]
        self._terminated[moves] = episode.terminated[first:]
        self._succ[moves] = slots[1:]
        self._valid[moves] = True
        self._valid[slots[-1]] = False
        self._links.wrote_run(slots)
        self._advance(keep)
        self._count = int(np.count_nonzero(self._valid))
        self._open.clear()
        self._added += keep - 1
        if after is not None and first == 0:
            self._links.link(after, int(slots[0]))
        return self._links.end(slots[-1])

    def _write_obs(self, obs: Mapping[str, np.ndarray]) -> int:
        """Write one observation at the write position; its old outgoing transition dies."""
        slot = self._next
        for key, value in obs.items():
            self._obs[key][slot] = value
        self._set_valid(slot, False)
        self._links.wrote(slot)
        self._advance(1)
        return slot

    def _write_obs_batch(self, obs: Mapping[str, np.ndarray], slots: np.ndarray) -> None:
        """Write N observations to the N slots at the write position (in order)."""
        for key, value in obs.items():
            self._obs[key][slots] = value
        self._count -= int(np.count_nonzero(self._valid[slots]))
        self._valid[slots] = False
        self._links.wrote_run(slots)
        self._advance(len(slots))

    def _advance(self, slots: int) -> None:
        self._next = (self._next + slots) % self.capacity
        self._filled = min(self._filled + slots, self.capacity)

    def _set_valid(self, slot: int, value: bool) -> None:
        if self._valid[slot] != value:
            self._valid[slot] = value
            self._count += 1 if value else -1

    # ------------------------------------------------------------------ sampling
    def sample(self, batch_size: int, out: Batch | None = None, n_step: int = 1, discount: float | None = None) -> Batch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the valid ones.

        ``out``: a batch of the same size from an earlier ``sample`` that the caller is done
        with; it is refilled in place and returned. That skips allocating (and the kernel
        zeroing) fresh pages, about 2x faster for images; without it every batch is new memory.
        ``n_step > 1``: n-step transitions (see :mod:`robot_rl.data.nstep`) with the per-sample
        bootstrap multiplier in ``Batch.discount``; needs ``discount``.
        """
        if self._count == 0:
            raise ValueError(f"replay {self.name!r} has no transitions to sample yet: add an episode, "
                             "or start_episode() then add() at least one step")
        if int(batch_size) < 1:
            raise ValueError(f"replay {self.name!r}: batch_size must be positive, got {batch_size}")
        if out is not None:
            check_out(self.name, self._shapes, self.action_dim, out, int(batch_size))
        index = self._sample_slots(int(batch_size))
        if n_step > 1:
            return self._n_step_batch(index, out, n_step, discount)
        following = self._succ[index]
        if out is not None:
            return self._gather_into(out, index, following)
        return Batch(
            obs=self._gather_obs(index),
            action=self._action[index],
            reward=self._reward[index],
            next_obs=self._gather_obs(following),
            terminated=self._terminated[index].astype(np.float32),
        )

    def _n_step_batch(self, index: np.ndarray, out: Batch | None, n_step: int, discount: float | None) -> Batch:
        if discount is None or not 0.0 <= discount <= 1.0:
            raise ValueError(f"replay {self.name!r}: n_step={n_step} needs a discount in [0, 1], got {discount}")
        steps = n_step_transitions(index, n_step, discount, self._reward, self._terminated, self._valid, self._links.links,
                                   successor=self._succ)
        if out is not None:
            batch = self._gather_into(out, index, steps.following)
        else:
            batch = Batch(obs=self._gather_obs(index), action=self._action[index], reward=steps.reward,
                          next_obs=self._gather_obs(steps.following), terminated=steps.terminated)
        batch.reward[:], batch.terminated[:] = steps.reward, steps.terminated
        batch.discount = steps.discount
        return batch

    def _gather_into(self, out: Batch, index: np.ndarray, following: np.ndarray) -> Batch:
        for key, array in self._obs.items():
            np.take(array, index, axis=0, out=out.obs[key], mode="clip")  # "clip": no temporary copy
            np.take(array, following, axis=0, out=out.next_obs[key], mode="clip")
        np.take(self._action, index, axis=0, out=out.action, mode="clip")
        np.take(self._reward, index, out=out.reward, mode="clip")
        np.copyto(out.terminated, self._terminated[index])
        return out

    def _sample_slots(self, size: int) -> np.ndarray:
        """Uniform valid slots: draw from the filled slots, reject invalid ones, redraw the shortfall."""
        accept = self._count / self._filled
        chosen, needed = [], size
        rounds = _MAX_REJECTION_ROUNDS if accept >= _MIN_ACCEPTANCE else 0
        for _ in range(rounds):
            draws = int(needed / accept * 1.1) + 8  # enough to finish in one round, usually
            candidates = self._rng.integers(0, self._filled, draws)
            hits = candidates[self._valid[candidates]][:needed]
            chosen.append(hits)
            needed -= hits.size
            if needed == 0:
                return np.concatenate(chosen)
        chosen.append(self._rng.choice(np.flatnonzero(self._valid), needed))
        return np.concatenate(chosen)

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict:
        """Positions and RNG state, JSON-able; the arrays themselves reload from the episode store."""
        rng = self._rng.bit_generator.state
        return {
            "version": STATE_DICT_VERSION,
            "name": self.name,
            "capacity": self.capacity,
            "next_slot": self._next,
            "filled": self._filled,
            "transitions": self._count,
            "transitions_added": self._added,
            # 128-bit integers as strings, so any JSON reader keeps them exact.
            "rng": {"bit_generator": rng["bit_generator"], "state": str(rng["state"]["state"]),
                    "inc": str(rng["state"]["inc"]), "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"]},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Continue the sampling sequence of a saved buffer.

        Call it after refilling the arrays (``add_episode`` from the episode store). The RNG is
        restored; the saved positions are compared with the refilled ones and a difference (e.g.
        an episode that was in flight when the run stopped) is logged, since the arrays are the truth.
        Segment links are not saved either: they describe the refilled arrays (``add_segment``).
        """
        if state.get("version") != STATE_DICT_VERSION:
            raise ValueError(f"replay {self.name!r}: state_dict version {state.get('version')!r} is not "
                             f"{STATE_DICT_VERSION}")
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay {self.name!r}: state_dict is for capacity {state['capacity']:,}, "
                             f"this buffer has {self.capacity:,}")
        rng = state["rng"]
        self._rng.bit_generator.state = {
            "bit_generator": rng["bit_generator"],
            "state": {"state": int(rng["state"]), "inc": int(rng["inc"])},
            "has_uint32": rng["has_uint32"], "uinteger": rng["uinteger"],
        }
        saved = (state["next_slot"], state["filled"], state["transitions"])
        if saved != (self._next, self._filled, self._count):
            logger.warning("replay %r: saved positions (next slot, filled, transitions) %s differ from the "
                           "refilled buffer's %s; keeping the refilled ones", self.name, saved,
                           (self._next, self._filled, self._count))
        self._added = max(self._added, int(state["transitions_added"]))


def _bytes_per_slot(shapes: Mapping[str, tuple[tuple[int, ...], np.dtype]], action_dim: int) -> int:
    """One slot's bytes: its stored observation, action, reward, two flags, successor and segment links."""
    obs = sum(int(np.prod(shape)) * np.dtype(dtype).itemsize for shape, dtype in shapes.values())
    return obs + 4 * int(action_dim) + 4 + 1 + 1 + 8 + SegmentLinks.BYTES_PER_SLOT
