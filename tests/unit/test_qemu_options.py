"""packer-plugin-qemu's disk, media, network and TPM options (issue 15): Packer's rules in
the schema, the QEMU argv, and the steps with the real qemu-img, mtools, xorriso and swtpm
(no QEMU guest is started)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from packwrap_qemu import driver, host_tools
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.driver import qemu_argv
from packwrap_qemu.qemu import output_plan

from packwrap.build.steps.output_dir import StepOutputDir
from packwrap.config.schema import SourceBody
from packwrap.config.size import Size
from packwrap.errors import PackwrapError
from tests import state_support
from tests.qemu_spec_support import pairs, spec

BASE = {"iso_url": "base.qcow2", "iso_checksum": "none", "communicator": "none"}


def prepare(**values):
    body = SourceBody({**BASE, **values}, file="t.pkr.hcl", line=3)
    return QemuBuilder.schema.prepare(body)


def messages(**values) -> list[str]:
    return [p.message for p in prepare(**values)[1]]


def info(path: Path) -> dict:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], capture_output=True)
    return json.loads(out.stdout)


needs = {tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")
         for tool in ("qemu-img", "mformat", "xorriso", "swtpm")}  # fmt: skip


# --------------------------------------------------------------------------- Packer's rules


def test_use_backing_file_needs_qcow2_and_disk_image_or_the_install_cache():
    rule = (
        "use_backing_file can only be enabled for QCOW2 images and when disk_image is true "
        "(or, in packwrap, over a cached install: install_cache = true)"
    )
    assert messages(use_backing_file=True, install_cache=False) == [rule]
    assert messages(use_backing_file=True, disk_image=True, format="raw") == [rule]
    assert messages(use_backing_file=True, format="raw") == [rule]
    assert messages(use_backing_file=True, format="qcow2") == []  # over the install cache
    config, problems, _ = prepare(use_backing_file=True, disk_image=True)
    assert problems == [] and config.skip_compaction  # converting would flatten it


def test_skip_resize_disk_needs_disk_image():
    assert messages(skip_resize_disk=True) == [
        "skip_resize_disk can only be used when disk_image is true"
    ]
    assert messages(skip_resize_disk=True, disk_image=True) == []


def test_disk_additional_size_is_parsed_like_disk_size():
    config, problems, _ = prepare(disk_additional_size=["1G", "512"])
    assert problems == [] and config.disk_additional_size == [Size.of_mib(1024), Size.of_mib(512)]
    assert messages(disk_additional_size=["lots"]) == [
        "disk_additional_size 'lots': expected a size like 1500M or 2G (a bare number is MiB)"
    ]


def test_iso_skip_cache_uses_the_url_unchecked():
    config, problems, _ = prepare(iso_url="http://127.0.0.1:1/x.iso", iso_checksum="",
                                  iso_skip_cache=True)  # fmt: skip
    assert problems == [] and config.iso_checksum == "none"


def test_run_once_loads_and_does_nothing():
    _, problems, warnings = prepare(run_once=True)
    assert problems == [] and warnings == ["option 'run_once' is accepted but has no effect"]


def test_wrong_type_names_the_expected_type():
    assert messages(vtpm="yes") == ["option 'vtpm': expected bool, got 'yes'"]
    assert messages(cd_content=["x"]) == ["option 'cd_content': expected map, got ['x']"]


# --------------------------------------------------------------------------- host tools


def test_validate_names_the_package_to_install(monkeypatch):
    monkeypatch.setattr(host_tools.shutil, "which", lambda _name: None)
    monkeypatch.setattr(host_tools, "BRIDGE_HELPERS", ("/nonexistent/qemu-bridge-helper",))
    found = messages(vtpm=True, floppy_content={"a": "b"}, cd_content={"a": "b"},
                     net_bridge="br0")  # fmt: skip
    assert found == [
        "floppy_* needs mformat and mcopy; install mtools",
        "cd_files/cd_content need xorriso; install xorriso",
        "vtpm needs swtpm; install swtpm (apt-get install swtpm)",
        "net_bridge needs qemu-bridge-helper; install qemu-system-common",
    ]


def test_iso_skip_cache_needs_the_curl_block_driver(monkeypatch, tmp_path):
    modules = tmp_path / "lib" / "qemu"
    modules.mkdir(parents=True)
    (modules / "block-iscsi.so").write_bytes(b"")
    monkeypatch.setattr(host_tools, "MODULE_DIRS", (str(modules),))
    values = dict(iso_url="http://127.0.0.1:1/x.iso", iso_skip_cache=True)
    assert messages(**values) == [
        "iso_skip_cache: QEMU reads the URL with its curl block driver; install qemu-block-extra"
    ]
    (modules / "block-curl.so").write_bytes(b"")
    assert messages(**values) == []


def test_bridge_acl(tmp_path):
    acl = tmp_path / "bridge.conf"
    assert not host_tools.bridge_allowed("br0", str(acl))
    acl.write_text("allow virbr0\n")
    assert not host_tools.bridge_allowed("br0", str(acl))
    acl.write_text("allow virbr0\nallow br0\n")
    assert host_tools.bridge_allowed("br0", str(acl))


def test_net_bridge_rules(tmp_path):
    # Packer finds the bridged guest's address itself (step_wait_guest_address.py)
    assert not [m for m in messages(net_bridge="br0", communicator="ssh", ssh_username="root")
                if "ssh_host" in m]  # fmt: skip
    assert "net_bridge and hermetic_network are mutually exclusive" in messages(
        net_bridge="br0", hermetic_network=True
    )


def test_missing_floppy_sources_are_named(tmp_path):
    assert messages(floppy_files=[str(tmp_path / "nope")], floppy_dirs=[str(tmp_path / "d")]) == [
        f"floppy_files: {tmp_path / 'nope'} not found",
        f"floppy_dirs: {tmp_path / 'd'} is not a directory",
    ]


# --------------------------------------------------------------------------- QEMU argv


def test_additional_disks_share_the_disk_interface():
    extra = [Path("/o/disk-1"), Path("/o/disk-2")]
    argv = qemu_argv(spec(extra_disks=extra))
    assert pairs(argv, "-device")[:3] == [
        "virtio-blk-pci,drive=d0", "virtio-blk-pci,drive=d1", "virtio-blk-pci,drive=d2"
    ]  # fmt: skip
    assert pairs(argv, "-drive")[2].startswith("file=/o/disk-2,format=qcow2,")
    sata = pairs(qemu_argv(spec(extra_disks=extra, disk_interface="sata")), "-device")
    assert sata[:4] == ["ahci,id=ahci0", "ide-hd,bus=ahci0.0,drive=d0",
                        "ide-hd,bus=ahci0.1,drive=d1", "ide-hd,bus=ahci0.2,drive=d2"]  # fmt: skip
    ide = pairs(qemu_argv(spec(extra_disks=extra, disk_interface="ide")), "-drive")
    assert [d.rsplit(",", 1)[1] for d in ide[:3]] == ["index=0", "index=1", "index=4"]


def test_floppy_tpm_and_bridge_argv():
    argv = qemu_argv(spec(floppy_path=Path("/t/floppy.img"), tpm_socket=Path("/t/vtpm.sock"),
                          tpm_device="tpm-tis-device", net_bridge="br0"))  # fmt: skip
    assert pairs(argv, "-fda") == ["/t/floppy.img"]
    assert "socket,id=vtpm,path=/t/vtpm.sock" in pairs(argv, "-chardev")
    assert pairs(argv, "-tpmdev") == ["emulator,id=tpm0,chardev=vtpm"]
    assert "tpm-tis-device,tpmdev=tpm0" in pairs(argv, "-device")
    assert pairs(argv, "-netdev") == ["bridge,id=n0,br=br0"]


def test_tpm_device_default_per_arch():
    from packwrap_qemu.machine import profile

    assert profile("qemu-system-x86_64").tpm_device == "tpm-tis"  # Packer's default
    assert profile("qemu-system-aarch64").tpm_device == "tpm-tis-device"


# --------------------------------------------------------------------------- disk steps


def make_state(tmp_path, **values):
    values = {**BASE, "output_directory": str(tmp_path / "out"), **values}
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody(values, file="t", line=1))
    assert problems == [], problems
    state = state_support.make_state(config)
    StepOutputDir(output_plan).run(state)
    return state


@needs["qemu-img"]
def test_layered_image_on_an_earlier_artifact(tmp_path):
    from packwrap_qemu.step_create_disk import StepCreateDisk, StepResizeDisk
    from packwrap_qemu.step_media import StepResolveMedia

    base = tmp_path / "output-base" / "packer-base"  # packwrap's own artifact: no extension
    base.parent.mkdir()
    driver.create_disk(base, "qcow2", Size.of_mib(64))
    state = make_state(tmp_path, iso_url=str(base), disk_image=True, use_backing_file=True,
                       disk_size="128M", disk_additional_size=["16M"])  # fmt: skip
    for step in (StepResolveMedia(), StepCreateDisk(), StepResizeDisk()):
        step.run(state)
    disk = Path(state.data["disk_path"])
    layered = info(disk)
    assert layered["backing-filename"] == str(base.resolve())
    assert layered["backing-filename-format"] == "qcow2"
    assert layered["virtual-size"] == 128 * 2**20
    assert info(disk.with_name(disk.name + "-1"))["virtual-size"] == 16 * 2**20
    assert state.data["iso_kind"] == "image"
    from packwrap_qemu.step_run import build_spec

    built = build_spec(state, tmp_path / "q.sock", "tcg")
    assert built.iso_path is None and built.extra_disks == [disk.with_name("packer-t-1").resolve()]


@needs["qemu-img"]
def test_disk_image_copy_converts_then_resizes_unless_skipped(tmp_path):
    from packwrap_qemu.step_create_disk import StepCreateDisk, StepResizeDisk

    base = tmp_path / "base.raw"
    driver.create_disk(base, "raw", Size.of_mib(32))
    for skip, size in ((False, 64), (True, 32)):
        out = str(tmp_path / f"o{skip}")
        state = make_state(tmp_path, iso_url=str(base), disk_image=True, disk_size="64M",
                           skip_resize_disk=skip, output_directory=out)  # fmt: skip
        state.data["iso_path"] = base
        StepCreateDisk().run(state)
        StepResizeDisk().run(state)
        copied = info(Path(state.data["disk_path"]))
        assert copied["format"] == "qcow2" and "backing-filename" not in copied
        assert copied["virtual-size"] == size * 2**20


# --------------------------------------------------------------------------- media


@needs["mformat"]
def test_floppy_holds_files_dirs_and_content(tmp_path):
    from packwrap_qemu.step_floppy import StepCreateFloppy

    (tmp_path / "a.txt").write_text("A")
    (tmp_path / "c.txt").write_text("old")  # floppy_content's c.txt wins, as in Packer
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "b.txt").write_text("B")
    (tmp_path / "drivers" / "net").mkdir(parents=True)  # floppy_files: its files, flat
    (tmp_path / "drivers" / "net" / "d.sys").write_text("D")
    state = make_state(tmp_path, floppy_files=[str(tmp_path / "*.txt"), str(tmp_path / "drivers")],
                       floppy_dirs=[str(tmp_path / "s*")],
                       floppy_content={"c.txt": "C"}, floppy_label="OPENBSD")  # fmt: skip
    step = StepCreateFloppy()
    step.run(state)
    image = state.data["floppy_path"]
    try:
        listing = subprocess.run(["mdir", "-i", str(image), "-/", "-b", "::"],
                                 capture_output=True, text=True).stdout.split()  # fmt: skip
        assert sorted(listing) == ["::/a.txt", "::/c.txt", "::/d.sys", "::/site/", "::/site/b.txt"]
        typed = subprocess.run(["mtype", "-i", str(image), "::/c.txt"], capture_output=True)
        assert typed.stdout == b"C"
        typed = subprocess.run(["mtype", "-i", str(image), "::/site/b.txt"], capture_output=True)
        assert typed.stdout == b"B"
        label = subprocess.run(["mlabel", "-i", str(image), "-s", "::"], capture_output=True)
        assert b"OPENBSD" in label.stdout
    finally:
        step.cleanup(state)
    assert not image.exists()


@needs["xorriso"]
def test_cd_content_and_cd_files_on_one_cd(tmp_path):
    from packwrap_qemu.step_media import StepResolveMedia

    (tmp_path / "install.conf").write_text("answers")
    (tmp_path / "bsd.rd").write_bytes(b"kernel")
    state = make_state(tmp_path, kernel=str(tmp_path / "bsd.rd"), iso_url=None,
                       cd_files=[str(tmp_path / "install.conf")],
                       cd_content={"meta/user-data": "#cloud", "/site.txt": "site"})  # fmt: skip
    step = StepResolveMedia()
    step.run(state)
    iso = state.data["cd_path"]
    out = tmp_path / "x"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out)],
                   capture_output=True, check=True)  # fmt: skip
    assert (out / "install.conf").read_text() == "answers"
    assert (out / "meta" / "user-data").read_text() == "#cloud"
    assert (out / "site.txt").read_text() == "site"
    step.cleanup(state)
    assert not iso.exists()


def test_content_outside_the_medium_is_refused(tmp_path):
    with pytest.raises(PackwrapError, match=r"cd_content: '../x' is outside the medium"):
        driver.write_content(tmp_path / "m", {"../x": "no"}, what="cd_content")


@needs["swtpm"]
def test_vtpm_starts_swtpm_and_cleanup_ends_it(tmp_path):
    from packwrap_qemu.step_vtpm import StepStartVtpm

    state = make_state(tmp_path, vtpm=True, use_tpm1=False)
    step = StepStartVtpm()
    try:
        step.run(state)
        assert state.data["tpm_socket"].is_socket()
        assert step.proc is not None and step.proc.poll() is None
        assert "--tpm2" in step.proc.args
        # -on-error=abort skips this cleanup: the hints say how to do it by hand
        assert state.data["cleanup_hints"][-2:] == [
            f"swtpm (pid {step.proc.pid}) may still be running: kill {step.proc.pid}",
            f"its TPM state: rm -r {step.tmp}",
        ]
    finally:
        step.cleanup(state)
    assert step.proc.poll() is not None and "tpm_socket" not in state.data


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    ranges = True

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(200)
        if self.ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


@pytest.mark.parametrize("ranges", [True, False])
def test_iso_skip_cache_needs_byte_serving(ranges):
    from packwrap_qemu.step_media import byte_serving_url

    handler = type("H", (_RangeHandler,), {"ranges": ranges})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/install76.iso"
    try:
        if ranges:
            assert byte_serving_url([url]) == url
        else:
            with pytest.raises(PackwrapError, match="no byte serving support"):
                byte_serving_url([url])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_iso_skip_cache_hands_qemu_the_url(tmp_path, monkeypatch):
    from packwrap_qemu import step_media
    from packwrap_qemu.step_run import build_spec

    url = "http://127.0.0.1:9/install76.iso"
    monkeypatch.setattr(step_media, "byte_serving_url", lambda urls: urls[0])
    monkeypatch.setattr(host_tools, "lacks_curl_driver", lambda: False)
    state = make_state(tmp_path, iso_url=url, iso_checksum="", iso_skip_cache=True)
    step_media.StepResolveMedia().run(state)
    state.data["disk_path"] = tmp_path / "disk"
    argv = qemu_argv(build_spec(state, tmp_path / "q.sock", "tcg"))
    assert f"file={url},media=cdrom,if=ide,index=2,readonly=on" in pairs(argv, "-drive")
    assert pairs(argv, "-boot") == ["once=d"]
    layered = make_state(tmp_path, iso_url=url, iso_skip_cache=True, disk_image=True,
                         output_directory=str(tmp_path / "o2"))  # fmt: skip
    step_media.StepResolveMedia().run(layered)
    assert layered.data["iso_kind"] == "image"  # the base, never attached as a medium


def test_bridge_address_reads_the_interface():
    from packwrap_qemu.step_http_ip import bridge_address

    assert bridge_address("lo") == "127.0.0.1"
    with pytest.raises(PackwrapError, match="net_bridge 'nosuchbr0': no such network interface"):
        bridge_address("nosuchbr0")


def test_qmp_enable_puts_the_socket_where_packer_does(tmp_path):
    from packwrap_qemu.step_run import qmp_socket

    state = make_state(tmp_path, qmp_enable=True, vm_name="img.qcow2")
    assert qmp_socket(state.config, state) == (tmp_path / "out" / "img.qcow2.monitor").resolve()
    other = make_state(tmp_path, qmp_socket_path=str(tmp_path / "q.sock"),
                       output_directory=str(tmp_path / "o2"))  # fmt: skip
    assert qmp_socket(other.config, other) == tmp_path / "q.sock"
    plain = make_state(tmp_path, output_directory=str(tmp_path / "o3"))
    assert qmp_socket(plain.config, plain) is None  # a private socket


def test_a_qmp_path_too_long_for_a_unix_socket_links_to_a_short_one(tmp_path, monkeypatch):
    """QEMU cannot listen on a path of 108 bytes or more (a deep output_directory, as
    under pytest-xdist): it listens on a short private path, and the asked-for path is a
    symlink that a client connects through (by a path that fits, e.g. from its dir)."""
    import shutil
    import socket

    from packwrap_qemu.step_run import UNIX_PATH_MAX, listen_path

    short_enough = tmp_path / "q.sock"
    assert listen_path(short_enough) == (short_enough, None)
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    asked = deep / "img.qcow2.monitor"
    assert len(str(asked)) >= UNIX_PATH_MAX
    listen, private = listen_path(asked)
    try:
        assert private is not None and len(str(listen)) < UNIX_PATH_MAX
        assert asked.is_symlink() and asked.readlink() == listen
        with socket.socket(socket.AF_UNIX) as server, socket.socket(socket.AF_UNIX) as client:
            server.bind(str(listen))
            server.listen(1)
            monkeypatch.chdir(deep)
            client.connect(asked.name)  # through the link
    finally:
        shutil.rmtree(private or "", ignore_errors=True)


def test_validate_says_what_to_install_in_one_line(tmp_path):
    """`packwrap validate` on a host without swtpm: one line with file:line, exit 1."""
    from tests.packwrap_runner import cli_env, run_cli

    (tmp_path / "t.pkr.hcl").write_text(
        'source "qemu" "x" {\n  iso_url = "i.iso"\n  iso_checksum = "none"\n'
        '  communicator = "none"\n  vtpm = true\n}\nbuild { sources = ["source.qemu.x"] }\n'
    )
    empty = tmp_path / "bin"
    empty.mkdir()
    result = run_cli("validate", cwd=tmp_path, env=cli_env(PATH=str(empty)))
    assert result.returncode == 1
    assert "t.pkr.hcl:5: vtpm needs swtpm; install swtpm (apt-get install swtpm)" in result.stderr
