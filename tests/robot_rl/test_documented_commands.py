"""Every ``robot-rl`` invocation the README shows still parses into its command's config (and
passes the config's own checks); nothing is run."""

import pathlib
import re
import shlex

import pytest
import tyro

from robot_rl.cli import COMMANDS

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def documented_invocations() -> list[str]:
    """``robot-rl ...`` lines of the README's code blocks, comments, ``[optional]`` parts and
    ``...`` placeholders removed."""
    lines, in_code = [], False
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
            continue
        if in_code and line.startswith("robot-rl ") and " ... " not in line:
            command = re.sub(r"\[[^\]]*\]", "", line.split("#")[0]).strip()
            if not command.endswith("--help"):
                lines.append(command)
    return lines


INVOCATIONS = documented_invocations()


def test_the_readme_documents_commands():
    assert len(INVOCATIONS) >= 15 and any(c.startswith("robot-rl train") for c in INVOCATIONS)


@pytest.mark.parametrize("command", INVOCATIONS)
def test_a_documented_invocation_parses(command):
    args = shlex.split(command)[1:]
    config = tyro.extras.subcommand_cli_from_dict(COMMANDS, args=args, prog="robot-rl")
    assert type(config) is COMMANDS[args[0]]
