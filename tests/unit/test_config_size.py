"""One size grammar (packwrap/config/size.py) for disk_size and memory in both builders.

The table feeds the same values through both builders' schemas: they agree, or the
row says why not (vmctl takes whole MiB; qemu-img takes bytes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from packwrap_qemu.builder import QemuBuilder
from packwrap_qemu.driver import qemu_img_size
from packwrap_vmm.config import SCHEMA as VMM_SCHEMA
from packwrap_vmm.driver import vmctl_size

from packwrap.config.schema import SourceBody
from packwrap.config.size import MIB, Size, parse_size

QEMU_BASE = {"iso_url": "i.iso", "iso_checksum": "none", "communicator": "none"}
VMM_BASE = {"vm_name": "v", "output_directory": "o", "boot": "/bsd.rd"}

OK = "ok"
VMM_WHOLE_MIB = "must be a whole number of MiB"  # vmctl rounds down, qemu-img does not

# value -> (bytes or None, what qemu says about disk_size, what vmm says about disk_size)
TABLE = [
    ("20480", 20 * 1024 * MIB, OK, OK),  # bare = MiB for both (vmctl would read bytes)
    (20480, 20 * 1024 * MIB, OK, OK),  # an HCL number
    ("40960M", 40960 * MIB, OK, OK),
    ("2G", 2048 * MIB, OK, OK),
    ("2g", 2048 * MIB, OK, OK),
    ("2GB", 2048 * MIB, OK, OK),
    ("2GiB", 2048 * MIB, OK, OK),
    ("1T", 1024 * 1024 * MIB, OK, OK),
    ("1.5G", 1536 * MIB, OK, OK),  # scan_scaled(3) and qemu both take fractions
    ("512K", 512 * 1024, OK, VMM_WHOLE_MIB),
    ("65536B", 65536, OK, VMM_WHOLE_MIB),
    ("1.5M", 1536 * 1024, OK, VMM_WHOLE_MIB),
    ("1.5", None, "a bare number is MiB and must be whole", "a bare number is MiB"),
    ("1.1B", None, "not a whole number of bytes", "not a whole number of bytes"),
    ("0", None, "greater than zero", "greater than zero"),
    ("0G", None, "greater than zero", "greater than zero"),
    ("lots", None, "expected a size", "expected a size"),
    ("-1G", None, "expected a size", "expected a size"),
    ("2P", None, "expected a size", "expected a size"),
    ("1 0M", None, "expected a size", "expected a size"),
    (True, None, "expected a size", "expected a size"),
    (["1G"], None, "expected a size", "expected a size"),
]


def _disk_size_problem(schema, base, value) -> str:
    config, problems, _ = schema.prepare(SourceBody({**base, "disk_size": value}, "t.pkr.hcl", 1))
    messages = [p.message for p in problems if p.option == "disk_size"]
    assert len(messages) <= 1, messages  # one message, one grammar
    return messages[0] if messages else OK


@pytest.mark.parametrize(("value", "nbytes", "qemu", "vmm"), TABLE)
def test_both_builders_read_a_size_the_same_way(value, nbytes, qemu, vmm):
    if nbytes is not None:
        assert parse_size(value).bytes == nbytes
    else:
        with pytest.raises(ValueError):
            parse_size(value)
    for schema, base, expected in (
        (QemuBuilder.schema, QEMU_BASE, qemu),
        (VMM_SCHEMA, VMM_BASE, vmm),
    ):
        got = _disk_size_problem(schema, base, value)
        assert got == OK if expected == OK else expected in got, (schema, got)
        if got != OK:
            assert got.startswith(f"disk_size {value!r}: ") or got.startswith("disk_size '")


@pytest.mark.parametrize("value", ["1024", 1024, "1G", "1024M"])
def test_memory_is_the_same_size_in_both_builders(value):
    qemu, qp, _ = QemuBuilder.schema.prepare(SourceBody({**QEMU_BASE, "memory": value}))
    vmm, vp, _ = VMM_SCHEMA.prepare(SourceBody({**VMM_BASE, "disk_size": "1G", "memory": value}))
    assert qp == [] and vp == []
    assert qemu.memory == vmm.memory == Size.of_mib(1024)


def test_memory_must_be_whole_mib_in_both_builders():
    for schema, base in (
        (QemuBuilder.schema, QEMU_BASE),
        (VMM_SCHEMA, {**VMM_BASE, "disk_size": 1}),
    ):
        _, problems, _ = schema.prepare(SourceBody({**base, "memory": "1048577K"}))
        assert [p.message for p in problems] == ["memory '1048577K': must be a whole number of MiB"]


def test_each_driver_formats_the_bytes_for_its_tool():
    assert vmctl_size(parse_size("1.5G")) == "1536M"  # vmctl -s/-m: scan_scaled, whole MiB
    assert qemu_img_size(parse_size("1.5G")) == "1536M"
    assert qemu_img_size(parse_size("65536B")) == "65536"  # qemu-img: bare = bytes


def test_the_text_is_kept_for_messages_and_metadata_but_not_compared():
    assert str(parse_size("40960M")) == "40960M"
    assert str(parse_size(20480)) == "20480M"  # Packer's qemu plugin writes it so
    assert parse_size("2G") == parse_size("2048M")


@pytest.mark.parametrize("value", [0, "0", -3, 9, "5M"])
def test_qemu_keeps_packers_rule_that_tiny_memory_means_the_default(value):
    config, problems, _ = QemuBuilder.schema.prepare(SourceBody({**QEMU_BASE, "memory": value}))
    assert problems == [] and config.memory == Size.of_mib(512)


@given(
    st.integers(min_value=1, max_value=10**6),
    st.sampled_from(["K", "M", "G", "T", "k", "m", "g", "t"]),
    st.sampled_from(["", "B", "iB", "b", "ib"]),
)
def test_any_whole_number_with_a_unit_is_that_many_binary_units(n, unit, suffix):
    size = parse_size(f"{n}{unit}{suffix}")
    assert size.bytes == n * 1024 ** ("KMGT".index(unit.upper()) + 1)
    if size.whole_mib:  # vmctl reads back exactly what the schema meant
        assert parse_size(vmctl_size(size)) == size


@given(st.integers(min_value=1, max_value=10**7))
def test_a_bare_number_is_mib_for_strings_and_numbers_alike(n):
    assert parse_size(n) == parse_size(str(n)) == Size.of_mib(n)
