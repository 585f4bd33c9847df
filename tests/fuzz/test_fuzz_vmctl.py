"""`vmctl status` / `vmctl start` / `ifconfig tap` parsing: arbitrary and mutated real output."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st
from packwrap_vmm import driver

from packwrap.errors import PackwrapError
from tests.fuzz._support import assert_ours, count

# Real outputs: OpenBSD 7.x (STATE column), 6.x (none), and the QEMU stand-in's pts ttys.
REAL_STATUS = [
    "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE   NAME\n"
    "    1 72118     1    512M    181M   ttyp8         root  running   openbsd\n"
    "    2     -     1    1.0G       -       -         root  stopped   test\n",
    "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER NAME\n"
    "    1 12345     1    512M    100M   ttyp0          bob vm1\n",
    "   ID   PID VCPUS  MAXMEM  CURMEM     TTY        OWNER    STATE   NAME\n"
    "    3  4242     1    512M       -   pts/3       packwrap running   my vm with spaces\n",
    "",
]
REAL_IFCONFIG = (
    "tap0: flags=8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n"
    "\tlladdr fe:e1:ba:d0:00:01\n"
    "\tdescription: vm1-if0-openbsd\n"
    "\tinet 100.64.1.2 netmask 0xfffffffe\n"
)
REAL_STARTED = "vmctl: started vm 1 successfully, tty /dev/ttyp8\n"


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    """A real output with a few characters replaced, inserted or deleted, or lines shuffled."""
    text = base
    for _ in range(draw(st.integers(0, 6))):
        if not text:
            text = draw(st.text(max_size=5))
            continue
        i = draw(st.integers(0, len(text) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete", "lines"]))
        piece = draw(
            st.one_of(
                st.sampled_from([" ", "-", "\n", "\t", "ID", "NAME", "9" * 30, "١", "\x00", "\r"]),
                st.text(max_size=3),
            )
        )
        if op == "replace":
            text = text[:i] + piece + text[i + 1 :]
        elif op == "insert":
            text = text[:i] + piece + text[i:]
        elif op == "delete":
            text = text[:i] + text[i + 1 :]
        else:
            lines = text.splitlines(keepends=True)
            text = "".join(draw(st.permutations(lines)))
    return text


STATUS_TEXT = st.one_of(
    st.text(max_size=200),
    st.sampled_from(REAL_STATUS).flatmap(mutated),
)


@given(STATUS_TEXT)
@example("ID\n")  # a header without NAME
@example("ID NAME\n\x85\n")  # NEL is a line break for splitlines, \x85 alone is blank
@example("ID PID NAME\n1 " + "9" * 5000 + " x\n")  # int() digit limit
@example("ID VCPUS NAME\n1 ١ x\n")  # a unicode digit
def test_status_parsing(text: str) -> None:
    count("vmctl.parse_status")
    try:
        rows = driver.parse_status(text)
    except PackwrapError as exc:
        assert_ours(exc)
        return
    for row in rows:
        assert isinstance(row, driver.VmStatus)
        row.running  # noqa: B018 - the properties must not raise either
        row.tty_path  # noqa: B018


@given(st.one_of(st.text(max_size=120), mutated(REAL_STARTED)))
def test_started_line_parsing(text: str) -> None:
    count("vmctl.parse_started")
    got = driver.parse_started(text)
    assert got is None or (isinstance(got[0], int) and got[1])


@given(st.one_of(st.text(max_size=200), mutated(REAL_IFCONFIG)))
@example("tap0:\n description: vm1-if0-x\n inet\n")
@example("\n")  # an empty line: words[:1] on no words
def test_ifconfig_tap_parsing(text: str) -> None:
    count("vmctl.parse_ifconfig_tap")
    try:
        found = driver.parse_ifconfig_tap(text)
    except PackwrapError as exc:
        assert_ours(exc)
        return
    assert all(isinstance(k, tuple) for k in found)


@given(st.integers(-(2**70), 2**70), st.integers(-5, 300))
def test_local_addresses(vm_id: int, index: int) -> None:
    count("vmctl.local_addresses")
    try:
        host, guest = driver.local_addresses(vm_id, index)
    except PackwrapError as exc:
        assert_ours(exc)
        return
    assert host != guest
