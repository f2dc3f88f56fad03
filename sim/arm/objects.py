"""A task's objects (:class:`~robot_rl.backends.arm.ObjectSpec`) in the sim arm's scene.

Three kinds, from what the spec says:

* **free** (default): a body with a free joint, resting on the table; its pose is in ``qpos``.
* **fixed**: a mocap body: contact never moves it, ``set_object_pose`` places it (a task's
  randomized fixture, e.g. a hole).
* **held** (``held_offset_m``): a body welded to the hand at that offset from the TCP; it moves
  with the hand, its contacts count in the arm's external wrench.

Each object is one box or several (``parts``). Collisions are explicit pairs only (like the arm
model's): objects touch the gripper (except a held one), the table (except a fixed one) and each
other (unless both are fixed or both held).
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from robot_rl.backends.arm import ObjectSpec

HAND_BODY = "hand"
TCP_SITE = "tcp"
GRIPPER_GEOMS = ("finger_left", "finger_right", "hand")
#: Stiff, nearly hard contact (time constant 5 ms): grasps and jams stay put instead of sinking in.
STIFF_SOLREF = (0.005, 1.0)
STIFF_SOLIMP = (0.95, 0.99, 0.001, 0.5, 2.0)


def geom_names(obj: ObjectSpec) -> list[str]:
    """The MuJoCo geom names of an object: its name, or ``name/i`` per part."""
    return [obj.name] if not obj.parts else [f"{obj.name}/{i}" for i in range(len(obj.parts))]


def add_objects(spec: mujoco.MjSpec, objects: tuple[ObjectSpec, ...]) -> None:
    """Add the objects' bodies, geoms and contact pairs to an arm model spec."""
    tcp_in_hand_m = np.asarray(spec.site(TCP_SITE).pos, dtype=np.float64)
    for obj in objects:
        if obj.held_offset_m is not None:
            pos = tcp_in_hand_m + np.asarray(obj.held_offset_m)  # TCP frame = hand frame, shifted
            body = spec.body(HAND_BODY).add_body(name=obj.name, pos=pos.tolist())
        else:
            body = spec.worldbody.add_body(name=obj.name, pos=[0.5, 0.0, obj.half_size_m[2]], mocap=obj.fixed)
            if not obj.fixed:
                body.add_freejoint(name=f"{obj.name}_joint")
        boxes = obj.parts or (((0.0, 0.0, 0.0), obj.half_size_m),)
        volumes = [float(np.prod(half)) for _, half in boxes]
        for name, (offset, half), volume in zip(geom_names(obj), boxes, volumes):
            geom = body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=list(half), pos=list(offset), rgba=list(obj.rgba))
            geom.contype = geom.conaffinity = 0  # explicit pairs below
            geom.mass = obj.mass_kg * volume / sum(volumes)
    _add_contact_pairs(spec, objects)


def _add_contact_pairs(spec: mujoco.MjSpec, objects: tuple[ObjectSpec, ...]) -> None:
    """Objects touch the gripper (torsional friction, stiff contact for stable grasps), the table,
    and each other (MuJoCo's default contact softness: a 20 ms time constant, which also sets how
    hard a held tool's impact is)."""
    for i, obj in enumerate(objects):
        sliding = [obj.friction, obj.friction, 0.005, 0.0001, 0.0001]
        for name in geom_names(obj):
            if obj.held_offset_m is None:
                for finger in GRIPPER_GEOMS:
                    grip = [obj.friction * 1.5, obj.friction * 1.5, 0.01, 0.001, 0.001]
                    _stiff(spec.add_pair(geomname1=finger, geomname2=name, condim=4, friction=grip))
            if not obj.fixed:
                spec.add_pair(geomname1=name, geomname2="table", condim=3, friction=sliding)
        for other in objects[i + 1 :]:
            if (obj.fixed and other.fixed) or (obj.held_offset_m is not None and other.held_offset_m is not None):
                continue
            for name in geom_names(obj):
                for other_name in geom_names(other):
                    spec.add_pair(geomname1=name, geomname2=other_name, condim=3, friction=sliding)


def _stiff(pair: mujoco.MjsPair) -> None:
    pair.solref, pair.solimp = list(STIFF_SOLREF), list(STIFF_SOLIMP)


@dataclasses.dataclass(frozen=True)
class ObjectBindings:
    """Where each object's pose lives in a compiled model (addresses looked up once).

    Attributes:
        free_qpos, free_dof: free objects' ``qpos`` / ``qvel`` addresses.
        mocap: fixed objects' mocap indices.
        held_body: held objects' body ids.
    """

    free_qpos: dict[str, int]
    free_dof: dict[str, int]
    mocap: dict[str, int]
    held_body: dict[str, int]

    @classmethod
    def bind(cls, model: mujoco.MjModel, objects: tuple[ObjectSpec, ...]) -> "ObjectBindings":
        free = [o.name for o in objects if not o.fixed and o.held_offset_m is None]
        return cls(
            free_qpos={n: int(model.jnt_qposadr[model.joint(f"{n}_joint").id]) for n in free},
            free_dof={n: int(model.jnt_dofadr[model.joint(f"{n}_joint").id]) for n in free},
            mocap={o.name: int(model.body_mocapid[model.body(o.name).id]) for o in objects if o.fixed},
            held_body={o.name: model.body(o.name).id for o in objects if o.held_offset_m is not None},
        )

    def poses(self, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Every object's pose, ``(7,)`` = position [m] + quaternion (w, x, y, z), base frame."""
        poses = {name: data.qpos[adr : adr + 7].copy() for name, adr in self.free_qpos.items()}
        poses.update({name: np.concatenate([data.mocap_pos[i], data.mocap_quat[i]]) for name, i in self.mocap.items()})
        poses.update({name: np.concatenate([data.xpos[b], data.xquat[b]]) for name, b in self.held_body.items()})
        return poses

    def place(self, data: mujoco.MjData, name: str, pos_m: np.ndarray, quat_wxyz: np.ndarray) -> None:
        """Set a free or fixed object's pose (a free one at rest); the caller runs ``mj_forward``."""
        quat = np.asarray(quat_wxyz, dtype=np.float64)
        quat = quat / np.linalg.norm(quat)
        if name in self.free_qpos:
            adr, dof = self.free_qpos[name], self.free_dof[name]
            data.qpos[adr : adr + 3], data.qpos[adr + 3 : adr + 7] = pos_m, quat
            data.qvel[dof : dof + 6] = 0.0
        elif name in self.mocap:
            data.mocap_pos[self.mocap[name]], data.mocap_quat[self.mocap[name]] = pos_m, quat
        elif name in self.held_body:
            raise KeyError(f"object {name!r} is held in the gripper: it moves with the hand and cannot be placed")
        else:
            raise KeyError(f"no object {name!r}; objects: {sorted([*self.free_qpos, *self.mocap, *self.held_body])}")


def hand_geoms(model: mujoco.MjModel) -> set[int]:
    """Geoms that move with the hand (hand, fingers, held objects): their contacts are the
    external wrench on the robot."""
    hand = model.body(HAND_BODY).id
    bodies = {hand}
    for body in range(model.nbody):  # parents come before children in a compiled model
        if model.body_parentid[body] in bodies and body != 0:
            bodies.add(body)
    return {g for g in range(model.ngeom) if model.geom_bodyid[g] in bodies}
