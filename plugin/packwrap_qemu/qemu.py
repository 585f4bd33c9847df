"""Per-build helpers shared by the qemu steps: the driver and where the build writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from packwrap.sdk import OutputPlan, input_file_hash
from packwrap_qemu.config import config_of, names
from packwrap_qemu.driver import Driver

if TYPE_CHECKING:
    from packwrap.sdk import State


def driver(state: State) -> Driver:
    """The build's Driver (one per build)."""
    drv = state.data.get("qemu_driver")
    if drv is None:
        drv = Driver()
        state.data["qemu_driver"] = drv
    return drv


def output_plan(state: State) -> OutputPlan:
    """Packer's rule: the build owns its output directory (output-<build name>)."""
    vm_name, out = names(config_of(state), state.source_name)
    return OutputPlan(vm_name=vm_name, directory=out)


def install_inputs(state: State) -> dict[str, Any]:
    """The qemu builder's part of the install cache key: medium, disk, machine, firmware
    (the core adds the boot command, the served files and the answers)."""
    c = config_of(state)
    data = state.data
    return {
        "disk_format": c.format,
        "disk": {
            "size": c.disk_size.bytes,
            "interface": c.disk_interface,
            "create_args": list((c.qemu_img_args or {}).get("create", [])),
        },
        "machine": {
            "binary": c.qemu_binary,
            "machine_type": c.machine_type,
            "cpu_model": c.cpu_model,
            "cpus": [c.cpus, c.sockets, c.cores, c.threads],
            "memory": c.memory.bytes,  # the installer sizes swap by it
            "net_device": c.net_device,
            "hermetic_network": c.hermetic_network,
            "qemuargs": c.qemuargs,
        },
        "firmware": {
            "firmware": input_file_hash(c.firmware),
            "use_pflash": c.use_pflash,
            "efi_boot": c.efi_boot,
            "efi_code": input_file_hash(c.efi_firmware_code),
            "efi_vars": input_file_hash(c.efi_firmware_vars),
        },
        "medium": {
            "iso": data.get("iso_sha256") or input_file_hash(data.get("iso_path")),
            "kind": data.get("iso_kind"),
            "cdrom_interface": c.cdrom_interface,
            "kernel": input_file_hash(data.get("kernel_path")),
            "initrd": input_file_hash(data.get("initrd_path")),
            "kernel_args": c.kernel_args,
            "cd_files": [input_file_hash(p) for p in c.cd_files],
            "cd_label": c.cd_label,
        },
        "boot_steps": c.boot_steps,
    }
