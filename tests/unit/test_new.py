"""`packwrap new` through the CLI: what it writes, checked with python-hcl2 and real Packer."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import bcrypt
import hcl2
import pytest

from packwrap.blueprint import installer
from packwrap.cli import main

PACKER = shutil.which("packer")
needs_packer = pytest.mark.skipif(PACKER is None, reason="packer is not installed")
PASSWORD = "correct horse battery"


def _stub_install_conf(values, release):
    return (
        f"System hostname = {values['hostname']}\n"
        f"Password for root account = {values['root_password_hash']}\n"
        f"Public ssh key for root account = {values.get('root_ssh_key') or 'none'}\n"
        "URL to autopartitioning template for disklabel = "
        "http://{{ .HTTPIP }}:{{ .HTTPPort }}/disklabel\n"
    )


@pytest.fixture(autouse=True)
def autoinstall(monkeypatch, tmp_path):
    """Use packwrap.autoinstall's renderer when it is there, else a small stand-in; keep
    the user's own blueprint directories out of the tests."""
    try:
        from packwrap.autoinstall.render import render_install_conf  # noqa: F401
    except ImportError:
        monkeypatch.setattr(installer, "render_install_conf", _stub_install_conf)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("PACKWRAP_BLUEPRINT_PATH", raising=False)
    monkeypatch.delenv("PACKWRAP_ROOT_PASSWORD", raising=False)


def run_new(*args: str) -> int:
    return main(["new", *args])


def packer(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PACKER, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def snapshot(root: Path) -> dict[str, tuple[int, bytes, int]]:
    return {
        str(p.relative_to(root)): (
            p.stat().st_mode,
            p.read_bytes() if p.is_file() else b"",
            p.stat().st_mtime_ns,
        )
        for p in sorted(root.rglob("*"))
    }


def unquote_tree(value):
    """python-hcl2 keeps quotes on strings: strip them for comparisons."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote_tree(v) for v in value]
    if isinstance(value, dict):
        return {unquote_tree(k): unquote_tree(v) for k, v in value.items()}
    return value


CASES = [
    (release, fmt, builder)
    for release in ("76", "78")
    for fmt in ("hcl", "json")
    for builder in ("all", "qemu", "openbsd-vmm")
]


@pytest.mark.parametrize(("release", "fmt", "builder"), CASES)
def test_new_writes_a_parseable_packer_project(tmp_path, release, fmt, builder):
    name = f"openbsd-{release}"
    target = tmp_path / "proj"
    rc = run_new(
        name, str(target), "--format", fmt, "--builder", builder, "--root-password", PASSWORD
    )
    assert rc == 0
    template = target / f"{name}.pkr.{fmt}"
    pkrvars = target / f"{name}.auto.pkrvars.{fmt}"
    assert template.is_file() and pkrvars.is_file()
    if fmt == "hcl":
        doc = unquote_tree(hcl2.loads(template.read_text()))
        sources = {k: v for block in doc["source"] for k, v in block.items()}
        variables = {k for block in doc["variable"] for k in block}
        build = doc["build"][0]
        post = [next(iter(p)) for p in build["post-processor"]]
        values = unquote_tree(hcl2.loads(pkrvars.read_text()))
    else:
        doc = json.loads(template.read_text())
        sources = doc["source"]
        variables = set(doc["variable"])
        build = doc["build"]
        post = [next(iter(p)) for p in build["post-processor"]]
        values = json.loads(pkrvars.read_text())
    want = ["openbsd-vmm", "qemu"] if builder == "all" else [builder]
    assert sorted(sources) == want
    assert build["sources"] == [f"source.{b}.{name}" for b in want]
    assert post == ["manifest", "checksum"]
    for required in (
        "hostname",
        "disk_size",
        "memory",
        "disk_format",
        "mirror",
        "ssh_public_key_file",
        "timezone",
        "sets",
        "release",
        "arch",
        "iso_file",
        "iso_url",
        "iso_checksum",
        "vm_name",
        "output_directory",
    ):
        assert required in variables
        assert required in values
    assert ("hermetic_network" in variables) == ("qemu" in want)
    assert values["release"] == f"{release[0]}.{release[1:]}"
    assert values["iso_file"] == f"install{release}.iso"
    assert (target / "http" / "install.conf.pkr.in").is_file()
    assert (target / "http" / "disklabel").is_file()
    meta = json.loads((target / ".packwrap" / "project.json").read_text())
    assert meta["blueprint"] == "openbsd" and meta["instance"] == name
    assert "http/install.conf.pkr.in" in meta["files"]
    readme = (target / "README.md").read_text()
    assert "packwrap fetch-iso" in readme
    assert "ssh_host_key_pin = true" in readme  # how to pin the guest host key

    if PACKER:
        if fmt == "hcl":
            r = packer(target, "fmt", "-check", ".")
            assert r.returncode == 0, r.stdout + r.stderr
        r = packer(target, "validate", "-syntax-only", ".")
        assert r.returncode == 0, r.stdout + r.stderr


@needs_packer
@pytest.mark.parametrize("fmt", ["hcl", "json"])
def test_pure_packer_qemu_project_passes_full_packer_validate(tmp_path, fmt):
    target = tmp_path / "pure"
    assert (
        run_new(
            "openbsd-76",
            str(target),
            "--builder",
            "qemu",
            "--pure-packer",
            "--format",
            fmt,
            "--root-password",
            PASSWORD,
        )
        == 0
    )
    r = packer(target, "validate", ".")
    assert r.returncode == 0, r.stdout + r.stderr
    text = (target / f"openbsd-76.pkr.{fmt}").read_text()
    assert "boot_expect" not in text and "hermetic_network" not in text


@needs_packer
def test_packwrap_template_is_rejected_by_full_packer_validate(tmp_path):
    """The reason --pure-packer exists: boot_expect is packwrap-only."""
    target = tmp_path / "pw"
    assert run_new("openbsd-76", str(target), "--builder", "qemu", "--root-password", PASSWORD) == 0
    r = packer(target, "validate", ".")
    assert r.returncode != 0
    assert "boot_expect" in r.stdout + r.stderr or "hermetic_network" in r.stdout + r.stderr


@needs_packer
def test_hcl_and_json_projects_mean_the_same_to_packer(tmp_path):
    outputs = []
    for fmt in ("hcl", "json"):
        target = tmp_path / fmt
        assert (
            run_new(
                "openbsd-77",
                str(target),
                "--builder",
                "qemu",
                "--pure-packer",
                "--format",
                fmt,
                "--no-root-password",
            )
            == 0
        )
        r = packer(target, "inspect", ".")
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout)
    assert outputs[0] == outputs[1]


def test_password_is_stored_only_as_bcrypt_hash_in_private_files(tmp_path):
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), "--root-password", PASSWORD) == 0
    for path in target.rglob("*"):
        if path.is_file():
            assert PASSWORD not in path.read_text(), path
    pkrvars = target / "openbsd-76.auto.pkrvars.hcl"
    assert stat.S_IMODE(pkrvars.stat().st_mode) == 0o600
    hashed = unquote_tree(hcl2.loads(pkrvars.read_text()))["root_password_hash"]
    assert hashed.startswith("$2b$")
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    conf = target / "http" / "install.conf.pkr.in"
    assert hashed in conf.read_text()
    assert stat.S_IMODE(conf.stat().st_mode) == 0o600
    meta = (target / ".packwrap" / "project.json").read_text()
    assert hashed not in meta  # only a digest of it


def test_no_root_password_locks_the_account(tmp_path):
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), "--no-root-password") == 0
    values = unquote_tree(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    assert values["root_password_hash"] == "*" * 13


def test_without_a_password_and_without_a_terminal_new_fails(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target)) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error: no root password") and err.count("\n") == 1
    assert not target.exists()


def test_var_root_password_hash_is_taken_as_is_and_plaintext_refused(tmp_path, capsys):
    good = bcrypt.hashpw(b"x", bcrypt.gensalt(10)).decode()
    assert run_new("openbsd-76", str(tmp_path / "a"), "--var", f"root_password_hash={good}") == 0
    assert good in (tmp_path / "a" / "openbsd-76.auto.pkrvars.hcl").read_text()
    assert run_new("openbsd-76", str(tmp_path / "b"), "--var", "root_password_hash=hunter2") == 2
    assert "bcrypt" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_var_values_reach_pkrvars_with_their_types(tmp_path):
    target = tmp_path / "p"
    assert (
        run_new(
            "openbsd-78",
            str(target),
            "--no-root-password",
            "--builder",
            "qemu",  # vmd's network has no room for 192.0.2.10 (test_guest_network.py)
            "--var",
            "hostname=web1",
            "--var",
            "memory=2048",
            "--var",
            "hermetic_network=false",
            "--var",
            "disk_format=raw",
            "--var",
            "ipv4=192.0.2.10/24",
            "--var",
            "ipv4_route=192.0.2.1",
            "--var",
            "dns_nameservers=192.0.2.1,192.0.2.2",
        )
        == 0
    )
    values = unquote_tree(hcl2.loads((target / "openbsd-78.auto.pkrvars.hcl").read_text()))
    assert values["hostname"] == "web1"
    assert values["memory"] == 2048
    assert values["hermetic_network"] is False
    assert values["disk_format"] == "raw"
    assert values["dns_nameservers"] == ["192.0.2.1", "192.0.2.2"]
    assert "web1" in (target / "http" / "install.conf.pkr.in").read_text()


def test_ssh_public_key_file_goes_into_install_conf(tmp_path, monkeypatch):
    """A relative key file name is taken from where `new` runs and stored absolute, so a
    later regeneration from the project directory still finds it."""
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id.pub").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample me@h\n")
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "p"
    rc = run_new(
        "openbsd-76", "p", "--no-root-password", "--var", "ssh_public_key_file=keys/id.pub"
    )
    assert rc == 0
    conf = target / "http" / "install.conf.pkr.in"
    assert "AAAAC3NzaC1lZDI1NTE5AAAAIExample" in conf.read_text()
    values = unquote_tree(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    assert values["ssh_public_key_file"] == str(tmp_path / "keys" / "id.pub")


def test_unreadable_or_bad_key_file_is_an_error_before_any_prompt(tmp_path, capsys):
    bad = tmp_path / "bad.pub"
    bad.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    for arg, needle in ((tmp_path / "missing.pub", "No such file"), (bad, "one OpenSSH public")):
        target = tmp_path / "p"
        assert run_new("openbsd-76", str(target), "--var", f"ssh_public_key_file={arg}") == 1
        err = capsys.readouterr().err
        assert needle in err and err.count("\n") == 1
        assert not target.exists()


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (["openbsd-81"], "known releases: 7.5, 7.6, 7.7, 7.8, 7.9, 8.0, snapshots", 2),
        (["nosuchthing"], "unknown blueprint 'nosuchthing'", 2),
        (["openbsd-76", "--var", "hostnmae=x"], "did you mean 'hostname'", 2),
        (["openbsd-76", "--var", "memory=lots"], "variable memory: 'lots' is not a number", 2),
        (["openbsd-76", "--var", "hermetic_network=maybe"], "hermetic_network", 2),
        (["openbsd-76", "--var", "disk_format=vmdk"], "disk_format: 'vmdk' is not one of", 2),
        # the rendered project goes through the builders' schemas before anything is written
        (["openbsd-76", "--var", "disk_size=lots"], "--var disk_size: disk_size 'lots': exp", 2),
        (["openbsd-76", "--builder", "qemu", "--var", "disk_size=0"], "greater than zero", 2),
        (["openbsd-76", "--var", "release=7.7"], "openbsd-77", 2),
        (["openbsd-76", "--var", "hostname"], "expected NAME=VALUE", 2),
        (["openbsd-76", "--arch", "sparc64"], "--arch 'sparc64'", 2),
        (["openbsd-76", "--builder", "vmware"], "--builder 'vmware'", 2),
        (["openbsd-76", "--arch", "arm64", "--builder", "openbsd-vmm"], "not available", 2),
    ],
)
def test_bad_requests_fail_with_one_line_and_write_nothing(tmp_path, capsys, args, needle, code):
    target = tmp_path / "p"
    rc = run_new(args[0], str(target), *args[1:], "--no-root-password")
    err = capsys.readouterr().err
    assert rc == code
    assert needle in err
    assert err.startswith("Error: ") and err.count("\n") == 1
    assert not target.exists()
    assert not list(tmp_path.rglob(".*packwrap-new*"))


def test_unknown_release_lists_known_ones_from_the_release_data():
    from packwrap.blueprint import registry
    from packwrap.errors import UsageError

    with pytest.raises(UsageError) as exc:
        registry.resolve("openbsd-70")
    for r in installer.known_releases():
        assert r in str(exc.value)


def test_non_empty_directory_is_left_untouched_without_force(tmp_path, capsys):
    target = tmp_path / "p"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    (target / "openbsd-76.pkr.hcl").write_text("# my own template\n")
    before = snapshot(tmp_path)
    assert run_new("openbsd-76", str(target), "--root-password", PASSWORD) == 2
    assert "not empty" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_force_replaces_only_the_blueprint_files(tmp_path):
    target = tmp_path / "p"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    (target / "http").mkdir()
    (target / "http" / "extra.txt").write_text("served too\n")
    (target / "openbsd-76.pkr.hcl").write_text("# stale\n")
    assert run_new("openbsd-76", str(target), "--force", "--no-root-password") == 0
    assert (target / "notes.txt").read_text() == "mine\n"
    assert (target / "http" / "extra.txt").read_text() == "served too\n"
    assert 'source "qemu"' in (target / "openbsd-76.pkr.hcl").read_text()
    assert not list(tmp_path.rglob(".*packwrap-new*"))


def test_empty_existing_directory_is_fine_and_dir_defaults_to_the_name(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert run_new("openbsd-76", str(tmp_path / "empty"), "--no-root-password") == 0
    assert (tmp_path / "empty" / "openbsd-76.pkr.hcl").is_file()
    monkeypatch.chdir(tmp_path)
    assert run_new("openbsd-77", "--no-root-password") == 0
    assert (tmp_path / "openbsd-77" / "openbsd-77.pkr.hcl").is_file()
    assert stat.S_IMODE((tmp_path / "openbsd-77").stat().st_mode) == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_failing_render_leaves_no_directory(tmp_path, monkeypatch, capsys):
    def boom(values, release, arch=None, efi=False):
        from packwrap.errors import PackwrapError

        raise PackwrapError("renderer broke")

    monkeypatch.setattr(installer, "render_install_conf", boom)
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), "--no-root-password") == 1
    assert "renderer broke" in capsys.readouterr().err
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_blueprints_command_lists_openbsd_and_its_releases(capsys):
    assert main(["blueprints"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("openbsd ")
    assert "openbsd-76" in out and "openbsd-78" in out


@pytest.mark.parametrize("fmt", ["hcl", "json"])
def test_packwrap_template_model_loads_the_project(tmp_path, fmt):
    template_mod = pytest.importorskip("packwrap.template")
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), "--format", fmt, "--no-root-password") == 0
    t = template_mod.load_template(target)
    assert sorted(b.name for b in t.builds) == ["openbsd-vmm.openbsd-76", "qemu.openbsd-76"]
    qemu = next(b for b in t.builds if b.name == "qemu.openbsd-76").source.body
    values = qemu.values
    assert values["boot_expect"][0] == "boot> "
    assert values["boot_command"][-1] == "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"
    assert values["vm_name"] == "openbsd-76.qcow2"
    assert values["hermetic_network"] is True


_PTY_MAIN = """
import sys
from packwrap.blueprint import installer
try:
    from packwrap.autoinstall.render import render_install_conf  # noqa: F401
except ImportError:
    installer.render_install_conf = lambda values, release: (
        "Password for root account = " + values["root_password_hash"] + "\\n")
from packwrap.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_password_is_prompted_without_echo_on_a_terminal(tmp_path):
    """A real pty: the prompt asks twice, the typed password never shows, only its hash lands."""
    import pty
    import select
    import sys
    import time

    master, slave = pty.openpty()
    target = tmp_path / "p"
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    env.pop("PACKWRAP_BLUEPRINT_PATH", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", _PTY_MAIN, "new", "openbsd-76", str(target)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""

    def read_until(text: bytes, timeout: float = 30) -> None:
        nonlocal seen
        deadline = time.monotonic() + timeout
        while text not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; got {seen!r}"
            if select.select([master], [], [], left)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                assert chunk, f"process ended before {text!r}; got {seen!r}"
                seen += chunk

    try:
        read_until(b"Password for root: ")
        os.write(master, PASSWORD.encode() + b"\r")
        read_until(b"Repeat for confirmation: ")
        os.write(master, PASSWORD.encode() + b"\r")
        read_until(b"Wrote openbsd-76")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    assert PASSWORD.encode() not in seen
    values = unquote_tree(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    assert bcrypt.checkpw(PASSWORD.encode(), values["root_password_hash"].encode())


def test_force_with_another_format_reports_the_old_files_and_keeps_them(tmp_path, capsys):
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), "--no-root-password") == 0
    capsys.readouterr()
    assert (
        run_new("openbsd-76", str(target), "--format", "json", "--force", "--no-root-password") == 0
    )
    err = capsys.readouterr().err
    assert "openbsd-76.pkr.hcl is from an earlier `packwrap new`" in err
    assert (target / "openbsd-76.pkr.hcl").exists() and (target / "openbsd-76.pkr.json").exists()


@pytest.mark.parametrize(
    ("arch", "builders"), [("arm64", ["qemu"]), ("i386", ["openbsd-vmm", "qemu"])]
)
def test_other_arches(tmp_path, arch, builders):
    target = tmp_path / arch
    assert run_new("openbsd-76", str(target), "--arch", arch, "--no-root-password") == 0
    doc = unquote_tree(hcl2.loads((target / "openbsd-76.pkr.hcl").read_text()))
    assert sorted(k for block in doc["source"] for k in block) == builders
    values = unquote_tree(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    assert values["arch"] == arch
    assert values["iso_url"] == "iso/install76.iso"
    assert (
        values["qemu_binary"] == {"arm64": "qemu-system-aarch64", "i386": "qemu-system-i386"}[arch]
    )
    if PACKER:
        r = packer(target, "validate", "-syntax-only", ".")
        assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "extra", [[], ["--format", "json"], ["--pure-packer"], ["--arch", "i386", "--builder", "qemu"]]
)
def test_packwrap_validate_accepts_a_fresh_project(tmp_path, extra, capsys):
    """Issue 2's first promise: `packwrap new openbsd-76 X && cd X && packwrap validate`."""
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target), *extra, "--no-root-password") == 0
    capsys.readouterr()
    assert main(["validate", str(target)]) == 0, capsys.readouterr()


def test_root_password_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PACKWRAP_ROOT_PASSWORD", PASSWORD)
    target = tmp_path / "p"
    assert run_new("openbsd-76", str(target)) == 0
    values = unquote_tree(hcl2.loads((target / "openbsd-76.auto.pkrvars.hcl").read_text()))
    assert bcrypt.checkpw(PASSWORD.encode(), values["root_password_hash"].encode())


@pytest.mark.parametrize(("arch", "machine"), [("amd64", "q35"), ("i386", "pc"), ("arm64", "virt")])
def test_qemu_machine_type_per_arch(tmp_path, arch, machine):
    """amd64 on q35: its AHCI CD boots the ISO ~1.2 s sooner under TCG than pc's IDE."""
    target = tmp_path / arch
    assert run_new("openbsd-76", str(target), "--arch", arch, "--builder", "qemu",
                   "--no-root-password") == 0  # fmt: skip
    doc = unquote_tree(hcl2.loads((target / "openbsd-76.pkr.hcl").read_text()))
    [qemu] = [block["qemu"] for block in doc["source"] if "qemu" in block]
    [source] = qemu.values()
    assert source["machine_type"] == machine


@pytest.mark.parametrize("arch", ["amd64", "arm64", "i386"])
@pytest.mark.parametrize(("blueprint", "version"), [("openbsd-79", "79"), ("openbsd-80", "80")])
def test_new_releases_scaffold_for_every_arch(tmp_path, blueprint, version, arch):
    target = tmp_path / "p"
    assert run_new(blueprint, str(target), "--arch", arch, "--no-root-password") == 0
    values = unquote_tree(hcl2.loads((target / f"{blueprint}.auto.pkrvars.hcl").read_text()))
    assert values["iso_file"] == f"install{version}.iso"
    conf = (target / "http" / "install.conf.pkr.in").read_text()
    # release-proof: 8.0's IPv6 default is autoconf, so "none" is written, not implied
    assert "IPv6 address for = none\n" in conf
    assert (target / ".packwrap" / "project.json").is_file()
