"""No secret in any file or stream a build produces.

A real `packwrap build` (CLI, session, build UI and log, post-processors) runs a stand-in
builder made of the real steps: a serial console on a real pty pair whose "guest" echoes
every byte back (the worst case: a prompt that does not turn echo off), the real docroot
HTTP server rendering an install.conf.pkr.in, and the real boot command step typing a
secret element slowly (250 ms per key, so the console log is flushed mid-secret). Then
every byte written under the work tree, and stdout/stderr, is searched for the secrets.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from packwrap import plugins
from packwrap.build.artifact import Artifact
from packwrap.build.common_options import ALL_CHECKS, ALL_OPTIONS
from packwrap.build.console import SerialConsole
from packwrap.build.state import State
from packwrap.build.step import Step
from packwrap.build.steps.boot_command import StepTypeBootCommand
from packwrap.build.steps.http_server import StepHTTPServer
from packwrap.cli import main
from packwrap.config.schema import BOOL, STRING, Option, Schema
from packwrap.errors import PackwrapError

PASSWORD = "Pw-7f3kq9zz"
PASSPHRASE = "Phrase-x81mmq"
TEMPLATE = """
variable "pw" {
  type      = string
  default   = "%(pw)s"
  sensitive = true
}
variable "phrase" {
  type      = string
  default   = "%(phrase)s"
  sensitive = true
}
source "sectest" "a" {
  boot_command         = ["A<enter>", "${var.pw}<enter>", "done<enter>"]
  boot_expect          = ["login: ", "Password: ", ""]
  boot_expect_timeout  = "10s"
  boot_secret_elements = %(secret_elements)s
  boot_key_interval    = "250ms"
  http_directory       = "http"
  ssh_username         = "root"
  ssh_password         = var.pw
  msg                  = "phrase is ${var.phrase}"
  fail                 = %(fail)s
}
build {
  sources = ["source.sectest.a"]
  post-processor "manifest" {
    output      = "manifest.json"
    custom_data = { note = "built with ${var.pw}", phrase = var.phrase }
  }
  post-processor "checksum" {
    output = "out/{{.BuildName}}.{{.ChecksumType}}"
  }
}
"""


class StepPtyGuest(Step):
    """A pty pair: the console side for packwrap, a guest thread that echoes and prompts."""

    name = "pty guest"

    def run(self, state: State) -> None:
        master, slave = os.openpty()
        log = Path(state.data["log_dir"]) / "sectest.console.log"
        console = SerialConsole(master, log, ui=state.ui)
        state.data["console"] = console
        state.data["pty"] = (master, slave)
        state.data["vm_name"] = "sectest"

        def guest() -> None:
            os.write(slave, b"OpenBSD boot\r\nlogin: ")
            typed = b""
            while True:
                try:
                    data = os.read(slave, 1024)
                except OSError:
                    return
                if not data:
                    return
                os.write(slave, data.replace(b"\r", b"\r\n"))  # echo everything back
                typed += data
                if typed.endswith(b"A\r"):
                    os.write(slave, b"Password: ")
                if PASSWORD.encode() + b"\r" in typed:
                    os.write(slave, f"Bad password {PASSWORD}, try again\r\n".encode())
                    typed = b""

        threading.Thread(target=guest, daemon=True).start()

    def cleanup(self, state: State) -> None:
        console = state.data.get("console")
        if console:
            console.close()
        for fd in state.data.get("pty", ()):
            with contextlib.suppress(OSError):
                os.close(fd)


class StepFinish(Step):
    name = "finish"

    def run(self, state: State) -> None:
        cfg = state.config
        state.ui.say(f"Config says: {cfg.msg}")
        state.ui.message(f"ssh_password = {cfg.ssh_password}")
        state.ui.say("Console tail: " + " | ".join(state.data["console"].tail(5)))
        out = Path("out")
        out.mkdir(exist_ok=True)
        (out / "disk.raw").write_bytes(b"disk")
        if cfg.fail:
            raise PackwrapError(f"the guest rejected the password {PASSWORD} ({cfg.msg})")


class SecBuilder:
    type_name: ClassVar[str] = "sectest"
    schema: ClassVar[Schema] = Schema(
        [*ALL_OPTIONS, Option("msg", STRING, ""), Option("fail", BOOL, False)], ALL_CHECKS
    )

    def steps(self, config):
        return [StepPtyGuest(), StepHTTPServer(), StepTypeBootCommand(), StepFinish()]

    def artifact(self, config, state):
        return Artifact("packwrap.sectest", "SEC", ["out/disk.raw"], "a test disk")


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    real = plugins.builder_for
    monkeypatch.setattr(plugins, "builder_for", lambda t: SecBuilder if t == "sectest" else real(t))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PACKWRAP_LOG_DIR", str(tmp_path / "logs"))
    (tmp_path / "http").mkdir()
    (tmp_path / "http" / "install.conf.pkr.in").write_text(
        "System hostname = {{ .Name }}\nPassword for root account = "
        "$2b$10$4gHRyvmn4Mt6LcGOY/2PHeJ9JiVbGl7C7iF04jbEh9L7cOJQUb1eG\n"
    )
    return tmp_path


def _leaks(root: Path, texts: list[str], skip: set[Path]) -> list[str]:
    found = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and p not in skip and not p.is_symlink():
            data = p.read_bytes()
            found += [f"{p.relative_to(root)}: {t}" for t in texts if t.encode() in data]
    return found


@pytest.mark.parametrize(
    "fail,secret_elements",
    [(False, "[1]"), (True, "[1]"), (False, "[]")],
    ids=["ok", "failing", "sensitive-variable-only"],
)
def test_build_writes_no_secret_anywhere(
    project: Path, capsys, fail: bool, secret_elements: str
) -> None:
    # "sensitive-variable-only": the element is not listed in boot_secret_elements, so it
    # is echo-checked; the template's sensitive variable must still be masked everywhere
    template = project / "t.pkr.hcl"
    values = {"pw": PASSWORD, "phrase": PASSPHRASE, "fail": str(fail).lower()}
    template.write_text(TEMPLATE % {**values, "secret_elements": secret_elements})
    rc = main(["build", "-timestamp-ui", "t.pkr.hcl"])
    out, err = capsys.readouterr()
    assert rc == (1 if fail else 0), out + err
    logs = list((project / "logs").iterdir())
    console_log = project / "logs" / "sectest.console.log"
    # the build really happened: the guest saw the secret, the logs hold the session
    assert console_log.exists() and "login:" in console_log.read_text()
    assert "<sensitive>" in console_log.read_text()  # the echo and the guest's complaint
    assert any(p.name.startswith("packwrap-") for p in logs)
    if not fail:
        assert (project / "manifest.json").exists()
    secrets = [PASSWORD, PASSPHRASE]
    leaks = _leaks(project, secrets, skip={template})
    leaks += [f"stdout: {s}" for s in secrets if s in out]
    leaks += [f"stderr: {s}" for s in secrets if s in err]
    assert not leaks, leaks
