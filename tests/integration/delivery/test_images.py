"""The container images: Dockerfile invariants, and their build steps run without Docker.

No Docker engine runs here, so `hack/image-check.sh` performs the Dockerfiles' pip steps
(builder: project wheel plus dependency wheels; runtime: `--no-index` install from those
wheels only) and runs each image's ENTRYPOINT + CMD as uid 10001. The tests below also prove
that the script's pip commands are the Dockerfiles' pip commands, so the two cannot drift.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHECK = ROOT / "hack" / "image-check.sh"
IMAGES = {
    "operator": (ROOT / "operator" / "Dockerfile", ["operator", "run"]),
    "agent": (
        ROOT / "edge-agent" / "Dockerfile",
        ["agent", "run", "--config", "/etc/trustspace/agent.yaml"],
    ),
}
BASE_RE = re.compile(r"^python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse(dockerfile: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, f"{dockerfile}: dangling line continuation"
    return out


def stages(instructions: list[Instruction]) -> dict[str, list[Instruction]]:
    result: dict[str, list[Instruction]] = {}
    current: list[Instruction] | None = None
    for ins in instructions:
        if ins.keyword == "FROM":
            match = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", ins.args, re.IGNORECASE)
            assert match, f"every stage is named: FROM {ins.args}"
            current = result.setdefault(match.group(2), [])
        if current is not None:
            current.append(ins)
    return result


def pip_commands(stage: list[Instruction]) -> list[str]:
    """The `pip ...` commands of a stage's RUN instructions, whitespace-normalised."""
    commands = []
    for ins in stage:
        if ins.keyword != "RUN":
            continue
        body = re.sub(r"--mount=\S+\s*", "", ins.args)
        for part in re.split(r"&&|;", body):
            words = part.split()
            if words and words[0] == "pip":
                commands.append(" ".join(words))
    return commands


def script_pip_commands(function: str) -> list[str]:
    """Calls of `builder_pip` / `runtime_pip` in the check script, as the Dockerfile spells them."""
    commands = []
    for line in CHECK.read_text(encoding="utf-8").splitlines():
        words = line.split()
        if words and words[0] == function:
            text = " ".join(["pip", *words[1:]]).replace('"$wheels"', "/wheels")
            commands.append(text)
    return commands


def arg_default(instructions: list[Instruction], name: str) -> str:
    for ins in instructions:
        if ins.keyword == "ARG" and ins.args.startswith(f"{name}="):
            return ins.args.split("=", 1)[1]
    raise AssertionError(f"no ARG {name}=...")


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_dockerfile_invariants(image: str) -> None:
    dockerfile, cmd = IMAGES[image]
    text = dockerfile.read_text(encoding="utf-8")
    instructions = parse(dockerfile)
    by_stage = stages(instructions)

    # Multi-stage: a builder and a runtime, both from the pinned slim Python base.
    assert list(by_stage) == ["builder", "runtime"]
    base = arg_default(instructions, "PYTHON_IMAGE")
    assert BASE_RE.fullmatch(base), f"base image not pinned to a 3.11.x-slim-bookworm tag: {base}"
    assert "latest" not in text.lower()
    for stage in by_stage.values():
        assert stage[0].args.split()[0] == "${PYTHON_IMAGE}"
    assert "@sha256:" in text, "a comment must say how to pin the base image's digest"

    builder, runtime = by_stage["builder"], by_stage["runtime"]
    # The runtime stage installs from wheels only: no index, no sources, no compilers.
    assert pip_commands(runtime) == [
        "pip install --no-index --find-links /wheels 'trustspace[postgres]'"
    ]
    runtime_text = " ".join(i.args for i in runtime)
    for forbidden in ("apt-get", "gcc", "build-essential", "COPY . "):
        assert forbidden not in runtime_text
    assert not [i for i in runtime if i.keyword in ("COPY", "ADD") and "--from" not in i.args]
    assert "pip wheel --no-deps . -w /wheels" in pip_commands(builder)

    # Non-root for everything after the install, and the entrypoint the chart relies on.
    users = [i for i in runtime if i.keyword == "USER"]
    assert [u.args for u in users] == ["10001:10001"]
    assert runtime.index(users[0]) > max(i for i, x in enumerate(runtime) if x.keyword == "RUN")
    assert [i.args for i in runtime if i.keyword == "ENTRYPOINT"] == ['["trustspace"]']
    cmds = [json.loads(i.args) for i in runtime if i.keyword == "CMD"]
    assert cmds == [cmd]
    assert not [i for i in instructions if i.keyword == "HEALTHCHECK"]

    # OCI labels, with the version the project declares.
    labels = " ".join(i.args for i in runtime if i.keyword == "LABEL")
    for key in ("title", "description", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert arg_default(runtime, "VERSION") == pyproject["project"]["version"]


def test_the_images_share_their_builder_stage() -> None:
    (op, _), (agent, _) = IMAGES["operator"], IMAGES["agent"]
    assert stages(parse(op))["builder"] == stages(parse(agent))["builder"]
    assert arg_default(parse(op), "PYTHON_IMAGE") == arg_default(parse(agent), "PYTHON_IMAGE")


def test_check_script_runs_the_dockerfile_pip_commands() -> None:
    by_stage = stages(parse(IMAGES["operator"][0]))
    assert script_pip_commands("builder_pip") == pip_commands(by_stage["builder"])
    assert script_pip_commands("runtime_pip") == pip_commands(by_stage["runtime"])
    # ... from the same build context: what the builder COPYs is what the script copies.
    copied = [
        source
        for ins in by_stage["builder"]
        if ins.keyword == "COPY"
        for source in shlex.split(ins.args)[:-1]
    ]
    tar_line = next(line for line in CHECK.read_text().splitlines() if "-cf -" in line)
    for source in copied:
        assert source in tar_line.split(), f"{source} is in the image but not in the check"


def test_dockerignore_keeps_the_context_to_the_wheel_sources() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "an allow-list: exclude everything, then name what the build needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "src", "operator", "edge-agent"}
    assert "**/__pycache__" in lines


def test_image_check_rejects_an_unknown_image() -> None:
    result = subprocess.run(
        [str(CHECK), "web"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "unknown image 'web'" in result.stderr


def test_image_check_builds_installs_and_runs_both_entrypoints() -> None:
    """The real check: wheels, offline install, entrypoints as uid 10001 (about 1-2 minutes)."""
    result = subprocess.run(
        [str(CHECK)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "PYTHON"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "ok: operator agent" in result.stderr
    assert "trustspace operator run --help -> ok" in result.stderr
    assert "trustspace agent run --config /etc/trustspace/agent.yaml --help -> ok" in result.stderr
    if os.geteuid() == 0:
        assert "entrypoints as uid:gid 10001:10001" in result.stderr, result.stderr
