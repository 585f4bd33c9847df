"""Upload over SFTP (`ssh_file_transfer_method = "sftp"`), with scp's target rules.

The guest's sshd runs its sftp-server subsystem (OpenBSD's sshd has it built in). Where
things land is what `scp -t` / `scp -tr` would do, so a template behaves the same with
either method: a file or directory sent to an existing directory goes inside it under
its own name; otherwise it takes the target's name. Modes are copied; symlinks inside a
directory are skipped, as the scp path does (never leave the source tree).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from packwrap.errors import PackwrapError


def sftp_upload(transport: Any, local: Path, remote: str) -> None:
    """Send `local` (a file, or a directory recursively); the caller checked it exists."""
    import paramiko

    try:
        sftp = paramiko.SFTPClient.from_transport(transport)
    except (paramiko.SSHException, EOFError, OSError) as exc:
        raise PackwrapError(
            f"upload to {remote} failed: the guest offers no SFTP subsystem ({exc}); "
            'use ssh_file_transfer_method = "scp"'
        ) from None
    if sftp is None:
        raise PackwrapError(f"upload to {remote} failed: cannot open an SFTP session")
    try:
        target = f"{remote.rstrip('/')}/{local.name}" if _is_dir(sftp, remote) else remote
        if local.is_dir():
            _put_dir(sftp, local, target)
        else:
            _put_file(sftp, local, target)
    except OSError as exc:  # paramiko maps SFTP status codes to IOError/OSError
        where = getattr(exc, "filename", None) or remote
        raise PackwrapError(f"upload to {where} failed: {exc.strerror or exc}") from None
    finally:
        sftp.close()


def _is_dir(sftp: Any, path: str) -> bool:
    try:
        return stat.S_ISDIR(sftp.stat(path).st_mode or 0)
    except OSError:
        return False


def _put_file(sftp: Any, path: Path, remote: str) -> None:
    sftp.put(str(path), remote, confirm=True)
    sftp.chmod(remote, path.stat().st_mode & 0o7777)


def _put_dir(sftp: Any, path: Path, remote: str) -> None:
    mode = path.stat().st_mode & 0o7777
    if not _is_dir(sftp, remote):
        sftp.mkdir(remote, mode)
    for child in sorted(path.iterdir()):
        if child.is_symlink():
            continue
        if child.is_dir():
            _put_dir(sftp, child, f"{remote}/{child.name}")
        elif child.is_file():
            _put_file(sftp, child, f"{remote}/{child.name}")
    sftp.chmod(remote, mode)
