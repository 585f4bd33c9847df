"""What packwrap tells OpenBSD users to write is what vmd 7.6 and doas accept.

Every vm.conf example (README, docs/openbsd-hosts.md, the blueprint's project README and
its vm_template help) is parsed by the vmctl stand-in's vm.conf reader, which applies
vmd's rules (scripts/vmctl-qemu/vmctlq_conf.py), and must give its user the right to
start instances. The walk-through's vmctl commands (docs/openbsd-hosts.md section 1.2)
run against the stand-in with the walk-through's own vm.conf and doas.conf, as its user
(simulated: VMCTL_QEMU_USER; `doas ...` admin lines run as root; `doas -n` lines through
the doas stand-in). Commands that cannot run on Linux are listed in NOT_RUN.
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "scripts" / "vmctl-qemu"
DOC = REPO / "docs" / "openbsd-hosts.md"
USER = "nobody"  # stands for alice / youruser / <you>
PLACEHOLDERS = ("alice", "youruser", "<you>")
#: Commands of the walk-through that are not run here (OpenBSD-only, or a whole build:
#: tests/e2e/test_vmm_build.py builds with this vm.conf and doas.conf).
NOT_RUN = {"fw_update", "rcctl", "pkg_add", "pip", "packwrap", "cd", "sysctl", "pfctl"}

sys.path.insert(0, str(STANDIN))
import vmctlq_conf  # noqa: E402

sys.path.remove(str(STANDIN))


def fenced(text: str, lang: str = "") -> list[str]:
    """Bodies of the ``` blocks (only those of `lang` when given)."""
    blocks, body, current = [], None, ""
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if body is None:
                body, current = [], line[3:].strip()
            else:
                if not lang or current == lang:
                    blocks.append("".join(body))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def as_user(text: str) -> str:
    for name in PLACEHOLDERS:
        text = text.replace(name, USER)
    return text


def vm_conf_examples() -> list[tuple[str, str]]:
    found = []
    for path in ("README.md", "docs/openbsd-hosts.md", "blueprints/openbsd/project/README.md.j2"):
        text = (REPO / path).read_text()
        text = text.replace("{{ values.vm_template }}", "openbsd-builder")
        blocks = [b for b in fenced(text) if b.startswith("# /etc/vm.conf")]
        assert blocks, f"{path}: no vm.conf example"
        found += [(path, b) for b in blocks]
    help_text = (REPO / "blueprints/openbsd/blueprint.toml").read_text()
    help_line = next(ln for ln in help_text.splitlines() if "allow instance" in ln)
    snippet = re.search(r'`(vm \\"openbsd-builder\\" \{.*\} \})`', help_line).group(1)
    found.append(
        ("blueprint.toml vm_template help", snippet.replace('\\"', '"').replace("; ", "\n"))
    )
    return found


@pytest.mark.parametrize("where,example", vm_conf_examples(), ids=lambda v: v[:40])
def test_every_vm_conf_example_is_one_vmd_accepts(where, example):
    conf = vmctlq_conf.parse(as_user(example), where)
    template = conf.vms["openbsd-builder"]
    assert template.disks or template.cdrom  # vmd refuses a vm block without a device
    assert template.insowner_uid == pwd.getpwnam(USER).pw_uid  # owner inside allow instance
    assert {"boot", "cdrom", "disk", "interface", "memory"} <= template.insflags
    assert template.owner_gid == vmctlq_conf.NO_GROUP  # a group owner breaks instances


@pytest.mark.parametrize(
    "path",
    ["README.md", "docs/openbsd-hosts.md", "blueprints/openbsd/project/README.md.j2",
     "blueprints/openbsd/blueprint.toml"],
)  # fmt: skip
def test_examples_warn_about_group_owners_and_name_socket_owner(path):
    text = (REPO / path).read_text()
    assert "socket owner" in text
    assert "user:group" in text or "alice:" in text


def test_vmd_refuses_the_old_example():
    old = (
        'vm "openbsd-builder" {\n disable\n owner nobody\n memory 1G\n allow instance { boot }\n}\n'
    )
    with pytest.raises(
        vmctlq_conf.ConfError, match='vm "openbsd-builder" failed: Invalid argument'
    ):
        vmctlq_conf.parse(old)


def walkthrough() -> tuple[str, str]:
    text = DOC.read_text()
    section = text[text.index("### 1.2 Pick a mode") : text.index("### 1.3")]
    return tuple(section.split("**(b) doas.**"))  # type: ignore[return-value]


def run_lines(block: str, env: dict[str, str], doas_conf: Path | None = None) -> list:
    results = []
    for line in block.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        if words[0] in NOT_RUN or (words[0] == "doas" and words[1] in NOT_RUN):
            continue
        vmctl = [sys.executable, str(STANDIN / "vmctl")]
        if words[:2] == ["doas", "-n"]:  # the user, through doas.conf
            assert words[2] == "/usr/sbin/vmctl", line
            argv = [sys.executable, str(STANDIN / "doas-standin" / "doas"), "-n",
                    str(STANDIN / "vmctl"), *words[3:]]  # fmt: skip
            run_env = {**env, "VMCTL_QEMU_USER": USER, "VMCTL_QEMU_DOAS_CONF": str(doas_conf)}
        elif words[0] == "doas":  # an administrator: root
            assert words[1] == "vmctl", line
            argv, run_env = [*vmctl, *words[2:]], env
        else:
            assert words[0] == "vmctl", f"not run and not listed in NOT_RUN: {line}"
            argv, run_env = [*vmctl, *words[1:]], {**env, "VMCTL_QEMU_USER": USER}
        proc = subprocess.run(argv, capture_output=True, text=True, env=run_env, timeout=60,
                              check=False)  # fmt: skip
        results.append((line, proc))
    assert results, "no vmctl command in the walk-through"
    return results


@pytest.fixture
def vmd_env(tmp_path):
    if os.getuid() != 0:
        pytest.skip("simulating the walk-through's user needs root")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VMCTL_QEMU_")}
    env.update(VMCTL_QEMU_STATE=str(tmp_path / "vmd"), VMCTL_QEMU_CONF=str(tmp_path / "vm.conf"))
    return env, tmp_path


def test_walkthrough_template_mode(vmd_env):
    env, tmp = vmd_env
    part, _ = walkthrough()
    (tmp / "vm.conf").write_text(as_user(next(b for b in fenced(part) if "vm.conf" in b)))
    results = run_lines("\n".join(fenced(part, "sh")), env)
    for line, proc in results:
        assert proc.returncode == 0, (line, proc.stderr)
    status = results[-1][1].stdout.splitlines()
    assert status[1].split()[-2:] == ["stopped", "openbsd-builder"], status


def test_walkthrough_doas_mode(vmd_env):
    env, tmp = vmd_env
    _, part = walkthrough()
    rules = next(b for b in fenced(part) if b.startswith("# /etc/doas.conf"))
    (tmp / "doas.conf").write_text(
        as_user(rules).replace("/usr/sbin/vmctl", str(STANDIN / "vmctl"))
    )
    results = run_lines("\n".join(fenced(part, "sh")), env, tmp / "doas.conf")
    for line, proc in results:
        assert "doas:" not in proc.stderr, (line, proc.stderr)
        assert proc.stdout.split()[:2] == ["ID", "PID"], (line, proc.stdout, proc.stderr)
