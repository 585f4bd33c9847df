#!/usr/bin/env python3
"""For `scripts/demo --provision` and `scripts/demo-vmm --provision`: add the demo's two
provisioners to the build block of a `packwrap new openbsd-76` project, and (on the test
fixture) the lines a source needs to boot the fixture's installed disk.

usage: demo_provisioning.py PROJECT [SOURCE_TYPE EXTRA_LINES]

The shell provisioner writes /var/db/packwrap-demo, the file provisioner uploads
files/motd (written here) to /etc/motd.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROVISIONERS = """
  provisioner "shell" {
    inline = [
      "echo \\"provisioned by packwrap on $(hostname) at $(date -u)\\" > /var/db/packwrap-demo",
      "cat /var/db/packwrap-demo",
    ]
  }

  provisioner "file" {
    source      = "files/motd"
    destination = "/etc/motd"
  }
"""
MARKER = '  #   provisioner "shell" { inline = ["syspatch"] }\n'
MOTD = "Welcome to the packwrap demo image (provisioned by packwrap).\n"


def main(project: Path, source: str = "", extra: str = "") -> None:
    (project / "files").mkdir(exist_ok=True)
    (project / "files" / "motd").write_text(MOTD)
    path = project / "openbsd-76.pkr.hcl"
    text = path.read_text()
    if MARKER not in text:
        sys.exit(f"{path}: the blueprint's build block changed (no provisioner example)")
    text = text.replace(MARKER, MARKER + PROVISIONERS, 1)
    if extra:
        head, sep, tail = text.partition(f'source "{source}" "openbsd-76" {{\n')
        if not sep:
            sys.exit(f"{path}: no source {source}.openbsd-76")
        text = head + sep + extra.rstrip("\n") + "\n" + tail
    path.write_text(text)


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:4])
