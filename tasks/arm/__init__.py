"""Arm tasks (the ``arm`` family): registered here, beside their code, through the
``robot_rl.tasks`` entry point in pyproject.toml. Any backend of the arm family runs them."""

from robot_rl.registry import TaskEntry

TASKS = (
    TaskEntry(
        name="pick_cube",
        family="arm",
        entry_point="tasks.arm.pick_cube:make_task",
        config="tasks.arm.pick_cube:PickCubeConfig",
        description="grasp a 5 cm cube and lift it 5 cm (sparse reward, 100 steps at 10 Hz, scripted expert)",
    ),
    TaskEntry(
        name="peg_insert",
        family="arm",
        entry_point="tasks.arm.peg_insert:make_task",
        config="tasks.arm.peg_insert:PegInsertConfig",
        description="insert a held 2 cm square peg 2 cm deep into a hole with 2 mm clearance (sparse reward, 100 steps at 10 Hz, scripted expert)",
    ),
)
