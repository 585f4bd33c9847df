"""siteXX sets: the project's site/ directory as a gzip'd tar rooted at / (install.site(5)).

Deterministic (sorted entries, fixed mtime, uid/gid 0, gzip header without name or time)
so a rebuild from the same files gives the same bytes. Only files and symlinks are stored:
directories already on the target keep their modes (a checkout's 0755 must not turn
/root world-readable); missing parents are created by tar. `install.site` at the top is
made executable so the installer runs it (`chroot /mnt /install.site`).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import time
from pathlib import Path

from packwrap.atomicfile import atomic_write
from packwrap.errors import PackwrapError

#: Sub-directory of the served HTTP overlay holding the site sets and their index.txt.
SITE_SUBDIR = "site"
#: The installer writes the *last* set location to /etc/installurl unless a set brings one;
#: after a site round that is the build's own HTTP server, so the site set brings this.
DEFAULT_INSTALLURL = "https://cdn.openbsd.org/pub/OpenBSD"
_SKIP_NAMES = {".git", ".gitignore", ".gitkeep", ".DS_Store"}
_SET_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9._-]+$")  # what install_http reads from index.txt


def site_set_name(version: str, hostname: str | None = None) -> str:
    if hostname:
        short = hostname.split(".")[0]
        name = f"site{version}-{short}.tgz"
        if not _SET_NAME.match(name):
            raise PackwrapError(f"hostname {hostname!r} cannot name a site set ({name})")
        return name
    return f"site{version}.tgz"


def _members(site_dir: Path) -> list[Path]:
    out = []
    for root, dirs, files in os.walk(site_dir, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_NAMES)
        for name in sorted(files):
            if name not in _SKIP_NAMES:
                out.append(Path(root) / name)
        for name in dirs:  # symlinks to directories are stored as links
            if (Path(root) / name).is_symlink():
                out.append(Path(root) / name)
    return sorted(out, key=lambda p: p.relative_to(site_dir).as_posix())


def _tar_bytes(
    site_dir: Path,
    mtime: int,
    installurl: str | None,
    files: dict[str, tuple[bytes, int]] | None = None,
) -> bytes:
    buf = io.BytesIO()
    members = _members(site_dir)
    extra = {"./" + name: data for name, data in (files or {}).items()}
    if installurl and not (site_dir / "etc" / "installurl").exists():
        extra["./etc/installurl"] = ((installurl.rstrip("/") + "\n").encode(), 0o644)
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(extra):
            data, mode = extra[name]
            info = tarfile.TarInfo(name)
            info.mtime, info.uid, info.gid, info.mode = mtime, 0, 0, mode
            info.uname, info.gname = "root", "wheel"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for path in members:
            rel = path.relative_to(site_dir).as_posix()
            if "./" + rel in extra:  # a generated file replaces the project's own
                continue
            st = path.lstat()
            info = tarfile.TarInfo("./" + rel)
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname, info.gname = "root", "wheel"
            mode = stat.S_IMODE(st.st_mode)
            if rel == "install.site":
                mode |= 0o755
            info.mode = mode
            if stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(path)
                tar.addfile(info)
            elif stat.S_ISREG(st.st_mode):
                info.size = st.st_size
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            else:
                raise PackwrapError(f"site set: {path} is not a file or symlink")
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return out.getvalue()


def index_line(name: str, size: int, mtime: int = 0) -> str:
    """An `ls -l`-like line; the installer reads only its last field."""
    date = time.strftime("%b %d  %Y", time.gmtime(mtime))
    return f"-rw-r--r--  1 root  wheel  {size:>10} {date} {name}"


def build_site_sets(
    site_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    release: str,
    hostname: str | None = None,
    per_host: bool = False,
    mtime: int = 0,
    installurl: str | None = DEFAULT_INSTALLURL,
    files: dict[str, tuple[bytes, int]] | None = None,
) -> list[str]:
    """Write site<NN>.tgz (or site<NN>-<hostname>.tgz with per_host) and index.txt.

    Unless site/etc/installurl exists, the set carries /etc/installurl = `installurl`
    (None: leave it to the installer, which records the build's server).
    `files` adds generated members (path relative to / -> (content, mode)), e.g. a host key.
    Returns the set file names written (index.txt not included).
    """
    from packwrap.autoinstall.release import load_release

    src = Path(site_dir)
    if not src.is_dir():
        raise PackwrapError(f"site set: {src} is not a directory")
    if per_host and not hostname:
        raise PackwrapError("site set: a per-host site set needs the hostname")
    rel = load_release(release)
    name = site_set_name(rel.version, hostname if per_host else None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = _gzip(_tar_bytes(src, mtime, installurl, files))
    atomic_write(out / name, data, mode=0o644)
    index = index_line(name, len(data), mtime) + "\n"
    atomic_write(out / "index.txt", index.encode(), mode=0o644)
    return [name]
