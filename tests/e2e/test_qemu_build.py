"""`packwrap build` end to end on real QEMU and the bsd.rd stand-in (the fixture).

Projects come from `packwrap new openbsd-76 --builder qemu`. The ISO path is the
blueprint's own source; the kernel path (bsd.rd booted with -kernel/-initrd, the ISO as
cd0 for the sets) and the failure cases use an extra source file next to it, so each
test boots the fast way and stays well under 30 s under TCG.
"""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Packwrap, new_project, pid_alive
from tests.mirror_support import SIGNIFY, Keys, make_keys

pytestmark = pytest.mark.e2e

KERNEL_SOURCE = """
source "qemu" "{name}" {{
  iso_url          = var.iso_url
  iso_checksum     = var.iso_checksum
  kernel           = "{media}/bsd.rd"
  initrd           = "{media}/bsd.rd.initrd"
  kernel_args      = "console=ttyS0,115200 quiet loglevel=1 panic=-1 pwfixture.cd=1{extra_args}"
  output_directory = "${{var.output_directory}}/{name}"
  vm_name          = "{name}.raw"
  format           = "raw"
  disk_size        = var.disk_size
  memory           = var.memory
  accelerator      = "tcg"
  hermetic_network = var.hermetic_network
  guest_ipv4       = var.ipv4
  guest_ipv4_netmask = var.ipv4_netmask
  guest_ipv4_route = var.ipv4_route
  http_directory   = "http"
  communicator     = "none"
  shutdown_timeout = "{timeout}"
  boot_command     = {boot_command}
  boot_expect      = {boot_expect}
  boot_expect_timeout = "120s"
}}

build {{
  sources = ["source.qemu.{name}"]
  post-processor "manifest" {{
    output = "{name}-manifest.json"
  }}
}}
"""
ANSWER_A = ('["A<enter>", "http://{{ .HTTPIP }}:{{ .HTTPPort }}/install.conf<enter>"]',
            '["(A)utoinstall or (S)hell? ", "Response file location?"]')  # fmt: skip
NEVER_ANSWER = ('["A<enter>"]', '["(A)utoinstall or (S)hell? "]')


def add_kernel_source(project: Path, media: Path, name: str = "kernel", timeout: str = "60s",
                      boot: tuple[str, str] = ANSWER_A, extra_args: str = "") -> None:  # fmt: skip
    text = KERNEL_SOURCE.format(name=name, media=media, timeout=timeout,
                                boot_command=boot[0], boot_expect=boot[1],
                                extra_args=f" {extra_args}" if extra_args else "")  # fmt: skip
    (project / f"{name}.pkr.hcl").write_text(text)


def install_conf(project: Path) -> Path:
    return project / "http" / "install.conf.pkr.in"


def answers(project: Path) -> dict[str, str]:
    out = {}
    for line in install_conf(project).read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def build(pw: Packwrap, project: Path, only: str, *flags: str, timeout: float = 150):
    return pw.run("build", f"-only={only}", *flags, ".", cwd=project, timeout=timeout)


def installed(disk: Path, fmt: str) -> dict[str, bytes | None]:
    from tests.fixture_support import read_installed_tar

    return read_installed_tar(disk, fmt)


def check_manifest_and_checksum(project: Path, disk: Path, manifest: Path) -> None:
    entry = json.loads(manifest.read_text())["builds"][-1]
    assert entry["builder_type"] == "qemu"
    assert entry["artifact_id"] == "VM"
    assert [f["name"] for f in entry["files"]] == [str(disk.relative_to(project))]
    assert entry["files"][0]["size"] == disk.stat().st_size
    checksum = hashlib.sha256(disk.read_bytes()).hexdigest()
    sums = [p for p in project.rglob("*_sha256.checksum")]
    assert sums, "no checksum file"
    assert f"{checksum}\t{disk.name}\n" in sums[0].read_text()


def add_signify(project: Path, tmp_path: Path) -> Keys:
    """A signify post-processor in the project's build block, with a fresh `-n` key."""
    keys = make_keys(tmp_path / "signify", "images")
    template = next(
        p for p in project.glob("*.pkr.hcl") if 'post-processor "checksum"' in p.read_text()
    )
    block = f'post-processor "signify" {{\n    private_key_file = "{keys.sec}"\n  }}\n\n  '
    template.write_text(
        template.read_text().replace(
            'post-processor "checksum"', block + 'post-processor "checksum"'
        )
    )
    return keys


def test_iso_build_installs_the_answers(packwrap, tmp_path, fixture_media):
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e@packwrap",
                    "-f", str(key)], check=True)  # fmt: skip
    project = new_project(packwrap, tmp_path, fixture_media, "hostname=e2ehost",
                          f"ssh_public_key_file={key}.pub", root_password="s3cret")  # fmt: skip
    signing = add_signify(project, tmp_path)
    result = build(packwrap, project, "qemu.*")
    assert result.rc == 0, result.out
    assert "Guest powered off" in result.out

    disk = project / "output" / "qemu" / "openbsd-76.qcow2"
    # logs live elsewhere; the signify post-processor's SHA256 and SHA256.sig sit beside
    assert sorted(p.name for p in disk.parent.iterdir()) == sorted(
        [disk.name, "SHA256", "SHA256.sig"]
    )
    done = subprocess.run([SIGNIFY, "-C", "-p", str(signing.pub), "-x", "SHA256.sig"],
                          cwd=disk.parent, capture_output=True, text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["Signature Verified", f"{disk.name}: OK"], done.stderr
    # The BIOS text console is on the serial line too (what OpenBSD's cdboot prints on).
    console = next(project.rglob("*.console.log")).read_text(errors="replace")
    assert "SeaBIOS" in console
    tree = installed(disk, "qcow2")
    conf = answers(project)
    assert tree["etc/myname"].decode().split(".")[0] == conf["system hostname"] == "e2ehost"
    root = next(ln for ln in tree["etc/master.passwd"].decode().splitlines()
                if ln.startswith("root:"))  # fmt: skip
    assert root.split(":")[1] == conf["password for root account"]
    assert root.split(":")[1].startswith("$2b$")
    pub = key.with_suffix(".pub").read_text().strip()
    assert pub in tree["root/.ssh/authorized_keys"].decode()
    manifest = next(project.rglob("packer-manifest.json"))
    check_manifest_and_checksum(project, disk, manifest)
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]


CHAIN = """
  post-processors {
    post-processor "shell-local" {
      inline = ["echo \\"$PACKER_BUILD_NAME $PACKER_BUILDER_TYPE\\" > shell-local.txt"]
    }
    post-processor "artifice" {
      files = ["shell-local.txt"]
    }
    post-processor "checksum" {
      checksum_types = ["sha1"]
      output         = "{{.BuildName}}.{{.ChecksumType}}"
    }
  }
}
"""


BOX_POST_PROCESSORS = """  post-processors {
    post-processor "compress" {
      output = "gce/{{.BuildName}}.tar.gz"
    }
    post-processor "signify" {
      private_key_file = "SIGNING_KEY"
    }
  }
  post-processor "vagrant" {
    output = "boxes/{{.BuildName}}_{{.Provider}}.box"
  }
  post-processor "vmdk" {}
  post-processor "manifest" {"""


def check_cloud_outputs(project: Path, disk: Path, signing: Keys) -> None:
    """compress (then signify), vagrant and vmdk on the built raw disk
    (tests/unit/test_postprocess_*.py check each format in depth; here: each output of a
    real build checks out)."""
    import tarfile

    gce = project / "gce" / "kernel.tar.gz"
    subprocess.run(["gzip", "-t", str(gce)], check=True)
    # the chain's signify signed compress's artifact: OpenBSD's own tool verifies it
    assert sorted(p.name for p in gce.parent.iterdir()) == ["SHA256", "SHA256.sig", gce.name]
    done = subprocess.run([SIGNIFY, "-C", "-p", str(signing.pub), "-x", "SHA256.sig"],
                          cwd=gce.parent, capture_output=True, text=True)  # fmt: skip
    assert done.stdout.splitlines() == ["Signature Verified", f"{gce.name}: OK"], done.stderr
    with tarfile.open(gce, "r:gz") as tar:
        (member,) = tar.getmembers()
        assert (member.name, member.size) == (disk.name, disk.stat().st_size)
        assert member.issparse()
    with tarfile.open(project / "boxes" / "kernel_libvirt.box", "r:gz") as tar:
        assert sorted(tar.getnames()) == ["Vagrantfile", "box.img", "metadata.json"]
        metadata = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert (metadata["provider"], metadata["format"]) == ("libvirt", "qcow2")
    info = subprocess.run(["qemu-img", "info", "--output=json", "packer_kernel_qemu.vmdk"],
                          cwd=project, check=True, capture_output=True)  # fmt: skip
    assert json.loads(info.stdout)["format-specific"]["data"]["create-type"] == "streamOptimized"


def test_kernel_boot_builds_a_raw_disk(packwrap, tmp_path, fixture_media):
    """The demo project (the openbsd blueprint) with a kernel-booted raw source and the
    outputs people ship, in one build: compress -> signify, vagrant, vmdk, manifest,
    shell-local -> artifice -> checksum; each output is checked with its own tool."""
    project = new_project(packwrap, tmp_path, fixture_media)
    add_kernel_source(project, fixture_media)
    source = project / "kernel.pkr.hcl"
    signing = make_keys(tmp_path / "signify", "images")
    boxes = BOX_POST_PROCESSORS.replace("SIGNING_KEY", str(signing.sec))
    source.write_text(source.read_text().replace('  post-processor "manifest" {', boxes))
    # and a shell-local -> artifice -> checksum chain after them
    source.write_text(source.read_text().rstrip().removesuffix("}") + CHAIN)
    http = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (project / "http").iterdir()}
    # a changed variable reaches the served install.conf; the project's http/ is not written
    result = build(packwrap, project, "qemu.kernel", "-var", "hostname=kern")
    assert result.rc == 0, result.out
    assert "http/install.conf.pkr.in is out of date (variables changed: hostname)" in result.out
    assert "-kernel" in result.out and "bsd.rd" in result.out
    disk = project / "output" / "kernel" / "kernel.raw"
    assert installed(disk, "raw")["etc/myname"].startswith(b"kern")
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (project / "http").iterdir()} == http
    entry = json.loads((project / "kernel-manifest.json").read_text())["builds"][-1]
    assert entry["files"] == [{"name": "output/kernel/kernel.raw", "size": disk.stat().st_size}]
    check_cloud_outputs(project, disk, signing)
    assert (project / "shell-local.txt").read_text() == "kernel qemu\n"
    # shell-local ran after the build, artifice made its file the artifact, checksum
    # hashed that (a small file: the 2G disk is hashed in the ISO build's chain)
    sha1 = hashlib.sha1(b"kernel qemu\n").hexdigest()
    assert (project / "kernel.sha1").read_text() == f"{sha1}\tshell-local.txt\n"
    assert disk.exists()  # artifice keeps its input by default


def test_encrypted_build_answers_both_disk_questions(packwrap, tmp_path, fixture_media):
    """Passphrase encryption (install.sub 1.1266 encrypt_root): the disk question is asked
    for the crypto chunk sd0, then for the softraid volume sd1, whose disklabel template is
    fetched; the project's GPT answer reaches both."""
    variables = ("hostname=crypt", "encrypt_passphrase=correct horse",
                 "disk_partitioning=whole-gpt")  # fmt: skip
    project = new_project(packwrap, tmp_path, fixture_media, *variables)
    add_kernel_source(project, fixture_media)
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 0, result.out
    assert "correct horse" not in result.out
    console = (project / ".packwrap" / "logs" / "kernel.raw.console.log").read_text()
    disk_q = "Use (W)hole disk MBR, whole disk (G)PT or (E)dit? [whole] gpt"
    proceed = "An EFI/GPT disk may not boot. Proceed? [no] yes"
    order = ["Encrypt the root disk with a (p)assphrase or (k)eydisk? [no] p",
             "New passphrase? <provided>", "Configuring the crypto chunk sd0...", disk_q,
             proceed, "Configuring the root disk sd1...", disk_q, proceed,
             "URL to autopartitioning template for disklabel? [none] http://10.0.2.100:80/disklabel",
             "/dev/rsd1a: ", "CONGRATULATIONS!"]  # fmt: skip
    pos = 0
    for text in order:
        found = console.find(text, pos)
        assert found >= 0, f"{text!r} missing after offset {pos}"
        pos = found + len(text)
    assert "correct horse" not in console
    files = installed(project / "output" / "kernel" / "kernel.raw", "raw")
    marker = files["etc/packwrap-fixture"].decode()
    assert "crypto = passphrase" in marker
    assert "partition_tables = sd0:GPT sd1:GPT" in marker
    assert "template_url = http://10.0.2.100:80/disklabel" in marker
    assert files["etc/fstab"] == b"/dev/sd1a / ffs rw,wxallowed 1 1\n"


@pytest.mark.parametrize("blueprint", ["openbsd-80", "openbsd-snapshots"])
def test_answers_hold_on_an_installer_with_80_defaults(packwrap, tmp_path, fixture_media,
                                                       blueprint):  # fmt: skip
    """The fixture asks with 8.0's drifted defaults (IPv6 autoconf, sets over http): the
    project's explicit answers keep the image as 7.6 would make it, and the drift guard
    finds every question in the release data (no warning)."""
    project = new_project(packwrap, tmp_path, fixture_media, "hostname=rel", blueprint=blueprint)
    assert answers(project)["ipv6 address for"] == "none"
    add_kernel_source(project, fixture_media, extra_args="pwfixture.defaults=8.0")
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 0, result.out
    assert "Warning:" not in result.out
    console = (project / ".packwrap" / "logs" / "kernel.raw.console.log").read_text()
    assert "IPv6 address for vio0? (or 'autoconf' or 'none') [autoconf] none" in console
    assert "Location of sets? (cd0 disk http nfs or 'done') [http] cd0" in console
    files = installed(project / "output" / "kernel" / "kernel.raw", "raw")
    assert files["etc/myname"].startswith(b"rel")
    assert b"inet6" not in (files.get("etc/hostname.vio0") or b"")


def test_aborted_install_fails_with_the_console_tail(packwrap, tmp_path, fixture_media):
    project = new_project(packwrap, tmp_path, fixture_media)
    conf = install_conf(project)
    conf.write_text("".join(ln for ln in conf.read_text().splitlines(keepends=True)
                            if not ln.lower().startswith("password for root")))  # fmt: skip
    add_kernel_source(project, fixture_media, timeout="10m")
    start = time.monotonic()
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc != 0
    error = result.error_line
    assert "Question has no answer in response file" in error
    assert "password for root account" in error.lower()
    assert "failed; check /tmp/ai/ai.log" in error
    assert not (project / "output" / "kernel").exists()
    assert not (project / "kernel-manifest.json").exists()
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]
    assert time.monotonic() - start < 120  # failed fast, not after the 10m shutdown_timeout


@pytest.mark.parametrize("on_error", ["cleanup", "abort"])
def test_sigint_mid_install(packwrap, tmp_path, fixture_media, on_error):
    project = new_project(packwrap, tmp_path, fixture_media)
    add_kernel_source(project, fixture_media, boot=NEVER_ANSWER)
    proc = packwrap.start("build", "-only=qemu.kernel", f"-on-error={on_error}", ".",
                          cwd=project)  # fmt: skip
    packwrap.wait_for(proc, "Waiting for the guest to power off", timeout=120)
    (qemu_pid,) = packwrap.qemu_pids
    assert pid_alive(qemu_pid)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(30)
    out = packwrap.output(proc)
    assert rc == 130, out
    disk = project / "output" / "kernel" / "kernel.raw"
    if on_error == "cleanup":
        assert not pid_alive(qemu_pid)
        assert not disk.exists()
    else:
        assert disk.exists()
        hints = out.split("To clean up by hand:", 1)[1]
        assert f"kill {qemu_pid}" in hints and f"rm {disk}" in hints
        assert pid_alive(qemu_pid)  # left for inspection; the teardown kills it


def test_guest_that_never_powers_off_hits_shutdown_timeout(packwrap, tmp_path, fixture_media):
    project = new_project(packwrap, tmp_path, fixture_media)
    add_kernel_source(project, fixture_media, timeout="8s", boot=NEVER_ANSWER)
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc == 1
    assert "Timeout while waiting for machine to shut down" in result.out
    assert "Response file location?" in result.out  # where the guest was stuck
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]
    assert not (project / "output" / "kernel").exists()


class Listener:
    """A loopback TCP port that counts the connections it receives."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.mark.parametrize("hermetic", [True, False])
def test_guest_reaches_only_the_builders_server(packwrap, tmp_path, fixture_media, hermetic):
    """The installer is told to fetch sets from the host's loopback port through QEMU's
    host address (what a non-hermetic guest can reach): hermetic, nothing arrives; the
    non-hermetic control run proves the test would see it."""
    listener = Listener()
    try:
        project = new_project(packwrap, tmp_path, fixture_media,
                              f"hermetic_network={str(hermetic).lower()}")  # fmt: skip
        conf = install_conf(project)
        redirect = (f"Location of sets = http\nHTTP Server = 10.0.2.2:{listener.port}\n"
                    "Server directory = pub\n")  # fmt: skip
        conf.write_text(redirect + conf.read_text())
        add_kernel_source(project, fixture_media)
        result = build(packwrap, project, "qemu.kernel")
        console = "\n".join(p.read_text(errors="replace")
                            for p in project.rglob("*.console.log"))  # fmt: skip
        assert f"10.0.2.2:{listener.port}" in console, result.out
        if hermetic:
            assert listener.connections == 0
            assert "Unable to get a verified list of distribution sets" in console
        else:
            assert listener.connections > 0
        assert (
            "HTTP GET '/install.conf' -> 200"
            in (project / ".packwrap").joinpath("logs", "packwrap-qemu.kernel.log").read_text()
        )
    finally:
        listener.close()


def test_an_unknown_installer_question_fails_the_build_at_once(packwrap, tmp_path, fixture_media):
    """Issue 14 item 5: the installer asks a question no release data knows and the
    response file has no answer: the drift guard fails the build naming the question,
    the release and the data file, long before any timeout."""
    project = new_project(packwrap, tmp_path, fixture_media)
    add_kernel_source(project, fixture_media, timeout="10m", extra_args="pwfixture.ask=unknown")
    start = time.monotonic()
    result = build(packwrap, project, "qemu.kernel")
    assert result.rc != 0, result.out
    error = result.error_line
    assert "Enable the frobnicator on this machine?" in error, result.out
    assert "7.6" in error and "7.6.toml" in error, error
    assert not [pid for pid in packwrap.qemu_pids if pid_alive(pid)]
    assert time.monotonic() - start < 120  # at once, not after the 10m timeout
