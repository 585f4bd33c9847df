"""Upload over the scp protocol (Packer's default ssh_file_transfer_method).

OpenBSD's sshd and dropbear both run `scp -t` as the sink; the protocol is small:
for each file send `C<mode> <size> <name>\\n`, the bytes, a NUL, and read one status
byte (0 ok, 1 warning, 2 fatal + message); `D<mode> 0 <name>` / `E` bracket a directory.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from packwrap.errors import PackwrapError


def scp_upload(transport: Any, local: Path, remote: str) -> None:
    """Send `local` (a file, or a directory recursively); the caller checked it exists."""
    recursive = local.is_dir()
    channel = transport.open_session()
    flags = "-tr" if recursive else "-t"
    channel.exec_command(f"scp {flags} {shlex.quote(remote)}")
    try:
        _expect_ok(channel, remote)
        if recursive:
            _send_dir(channel, local, remote)
        else:
            _send_file(channel, local, remote)
        channel.shutdown_write()
        # Wait for scp's exit before closing: dropbear may refuse the next channel of a
        # client that closes one whose command still runs.
        status = channel.recv_exit_status()
        if status != 0:
            raise PackwrapError(f"upload to {remote} failed: scp exited with status {status}")
    finally:
        channel.close()


def _expect_ok(channel: Any, remote: str) -> None:
    status = channel.recv(1)
    if status == b"\x00":
        return
    message = b""
    while not message.endswith(b"\n"):
        chunk = channel.recv(1)
        if not chunk:
            break
        message += chunk
    text = message.decode(errors="replace").strip() or "no answer from scp"
    raise PackwrapError(f"upload to {remote} failed: {text}")


def _send_file(channel: Any, path: Path, remote: str) -> None:
    size = path.stat().st_size
    mode = path.stat().st_mode & 0o7777
    channel.sendall(f"C{mode:04o} {size} {path.name}\n".encode())
    _expect_ok(channel, remote)
    with path.open("rb") as fh:
        while chunk := fh.read(65536):
            channel.sendall(chunk)
    channel.sendall(b"\x00")
    _expect_ok(channel, remote)


def _send_dir(channel: Any, path: Path, remote: str) -> None:
    mode = path.stat().st_mode & 0o7777
    channel.sendall(f"D{mode:04o} 0 {path.name}\n".encode())
    _expect_ok(channel, remote)
    for child in sorted(path.iterdir()):
        if child.is_symlink():
            continue  # scp -r would follow it; never leave the source tree
        if child.is_dir():
            _send_dir(channel, child, remote)
        elif child.is_file():
            _send_file(channel, child, remote)
    channel.sendall(b"E\n")
    _expect_ok(channel, remote)
