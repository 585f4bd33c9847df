"""The final steps over SSH before the shutdown: syspatch, the build record, generalize.

One implementation for both builders (they splice `final_guest_steps()` in after the
provisioners). Each shell piece runs as its own command and is named in the build log.

OpenBSD facts (sources read: openbsd/src usr.sbin/syspatch/syspatch.sh 1.168,
libexec/reorder_kernel/reorder_kernel.sh 1.15, etc/rc 1.590, sbin/reboot/reboot.c 1.34;
recorded in docs/generalize.md):
- rc starts `/usr/libexec/reorder_kernel &` at the end of every boot; the relink takes no
  lock file, and syspatch itself tells it is running with
  `pgrep -xf '/bin/ksh .*reorder_kernel'` (and refuses to patch meanwhile). We wait the
  same way, before syspatch and before generalizing (a relink writes /bsd).
- syspatch exits 2 when there is nothing to apply, and also (through its err "... 2")
  after it "updated itself, run it again to install missing patches"; 0 when it applied
  patches; anything else is an error. So: run it until it exits 2 without that message.
- halt, reboot and shutdown run `/etc/rc shutdown` (unless -q), and its first act is
  store_random: fresh /etc/random.seed and /var/db/host.random, written after anything
  we remove over SSH. Then, in multi-user mode, it runs `sh /etc/rc.shutdown`. So the
  seeds are removed twice: now (for a power-off that skips rc) and by a one-shot
  rc.shutdown hook that runs after store_random and puts the old rc.shutdown back.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packwrap.build.state import State, config_of
from packwrap.build.step import Step
from packwrap.errors import PackwrapError

if TYPE_CHECKING:
    from packwrap.build.common_options import CommonConfig

#: The options that ask for these steps (packwrap/build/common_options.py COMM_OPTIONS).
FINAL_OPTIONS = ("syspatch", "build_record", "generalize")

RELINK_PATTERN = "/bin/ksh .*reorder_kernel"  # syspatch.sh's own test
RELINK_LIMIT_S = 1800  # a relink under TCG takes minutes, never half an hour
SYSPATCH = "/usr/sbin/syspatch"
SYSPATCH_MAX_RUNS = 8
SYSPATCH_AGAIN = "updated itself"
ZERO_FILE = ".packwrap-zero"
SEEDS = "/etc/random.seed /var/db/host.random"
RC_SHUTDOWN = "/etc/rc.shutdown"
RC_SHUTDOWN_SAVED = "/etc/rc.shutdown.packwrap-saved"


def wants_final_steps(config: CommonConfig) -> bool:
    """Whether any final step is asked for (so a builder boots the disk for them)."""
    return config.syspatch or config.build_record or config.generalize


def relink_wait_command() -> str:
    """pgrep exits 0 (runs), 1 (does not); anything else fails the wait, never passes it."""
    return (
        "n=0; while :; do "
        f"pgrep -xf '{RELINK_PATTERN}' >/dev/null; rc=$?; "
        "[ $rc -eq 1 ] && break; "
        '[ $rc -eq 0 ] || { echo "pgrep failed (status $rc)"; exit 1; }; '
        '[ $n -eq 0 ] && echo "reorder_kernel is relinking the kernel: waiting"; '
        f"n=$((n + 1)); [ $n -lt {RELINK_LIMIT_S} ] || "
        '{ echo "reorder_kernel still running after ${n}s"; exit 1; }; '
        "sleep 1; done; "
        '[ $n -eq 0 ] || echo "kernel relink finished after ${n}s"'
    )


def remove_authorized_key_command(key_body: str, path: str = "/root/.ssh/authorized_keys") -> str:
    """Drop the lines holding `key_body` from authorized_keys, keeping the file's mode
    (rewritten in place; grep -v exits 1 when no line is left, which is fine)."""
    return (
        f"f={path}; [ -f $f ] || exit 0; "
        f"grep -v -F '{key_body}' $f > $f.packwrap; "
        "cat $f.packwrap > $f; rm -f $f.packwrap"
    )


@dataclass(frozen=True)
class GuestCommand:
    label: str  # what the build log says
    command: str


def _drop_lines_command(files_glob: str, pattern: str) -> str:
    """Remove lines matching `pattern` (grep -E) from each file, keeping its mode."""
    return (
        f'for f in {files_glob}; do [ -f "$f" ] || continue; '
        f"grep -Eq '{pattern}' \"$f\" || continue; "
        f'grep -Ev \'{pattern}\' "$f" > "$f.packwrap"; '
        'cat "$f.packwrap" > "$f"; rm -f "$f.packwrap"; echo "  $f"; done'
    )


def _zero_fill_command() -> str:
    """dd zeros into a file on each local read-write ffs file system until ENOSPC, remove
    it, sync: freed blocks read as zeros, so qemu-img convert / compaction drops them.
    `mount` lines on OpenBSD: "/dev/sd0a on / type ffs (local, wxallowed)"; with none
    listed (not OpenBSD's mount), the root file system alone."""
    return (
        "mps=$(mount | awk '$5 == \"ffs\" && $0 !~ /read-only/ {print $3}'); "
        '[ -n "$mps" ] || mps=/; '
        f"trap 'for m in $mps; do rm -f \"${{m%/}}/{ZERO_FILE}\"; done' EXIT; "
        "for m in $mps; do "
        f'z="${{m%/}}/{ZERO_FILE}"; '
        'dd if=/dev/zero of="$z" bs=1048576 2>/dev/null; '
        'rm -f "$z"; sync; echo "  zero-filled the free space of $m"; done'
    )


def seed_hook_command() -> str:
    """Prepend to /etc/rc.shutdown (before any `exit` of the user's own lines) a one-shot
    hook that removes the seeds rc's store_random has just written and restores the file
    as it was (or removes it if there was none). sh keeps reading the open file, so the
    user's lines still run after the hook. Idempotent: a hook in place stays the one."""
    restore = f"mv -f {RC_SHUTDOWN_SAVED} {RC_SHUTDOWN}"
    hook = (
        "# packwrap generalize, runs once: rc has just written fresh random seeds;",
        "# a clone of this image must make its own at its first boot.",
        f"rm -f {SEEDS}",
    )
    lines = " ".join(f"'{line}'" for line in hook)
    return (
        f"f={RC_SHUTDOWN}; s={RC_SHUTDOWN_SAVED}; "
        f"if grep -qF '{hook[0]}' \"$f\" 2>/dev/null; then echo '  already in place'; exit 0; fi; "
        f'if [ -e "$f" ]; then cp -p "$f" "$s"; r="{restore}"; else r="rm -f $f"; fi; '
        f'{{ printf "%s\\n" {lines} "$r"; if [ -e "$s" ]; then cat "$s"; fi; }} > "$f.packwrap" && '
        f'mv -f "$f.packwrap" "$f"'
    )


def generalize_commands(temporary_key_body: str | None) -> list[GuestCommand]:
    """The generalize sequence, in order (each must exit 0)."""
    commands = [
        # rc runs `ssh-keygen -A` at boot: each clone makes its own.
        GuestCommand("removing the SSH host keys", "rm -f /etc/ssh/ssh_host_*"),
        GuestCommand("removing the random seeds", f"rm -f {SEEDS}"),
        # rc's shutdown writes new ones after this step (see the module docstring).
        GuestCommand("removing the seeds rc writes at shutdown too", seed_hook_command()),
        GuestCommand(
            "removing the DHCP leases",
            "rm -f /var/db/dhcpleased/* /var/db/dhclient.leases.*",
        ),
        GuestCommand(
            "removing shell histories",
            "rm -f /root/.*history /home/*/.*history",
        ),
        GuestCommand(
            "removing lladdr lines from /etc/hostname.*",
            _drop_lines_command("/etc/hostname.*", "^[[:space:]]*lladdr[[:space:]]"),
        ),
    ]
    if temporary_key_body:
        commands.append(
            GuestCommand(
                "removing the build's temporary SSH key",
                remove_authorized_key_command(temporary_key_body),
            )
        )
    commands.append(GuestCommand("zero-filling free space", _zero_fill_command()))
    return commands


def _run(state: State, what: str, command: str) -> tuple[int, list[str]]:
    comm = state.data["communicator"]
    tail: collections.deque[str] = collections.deque(maxlen=15)

    def out(line: str) -> None:
        tail.append(line)
        state.ui.message(line)

    status = comm.run(command, on_output=out, cancel=state.cancel_event)
    if status == -1:
        raise PackwrapError(f"{what}: the SSH connection was lost")
    return status, list(tail)


def _check(what: str, status: int, tail: list[str]) -> None:
    if status != 0:
        shown = " | ".join(tail) if tail else "(no output)"
        raise PackwrapError(f"{what} exited with status {status}; last output: {shown}")


def wait_for_relink(state: State) -> None:
    """Wait while rc's background reorder_kernel runs (syspatch refuses to patch then,
    and generalizing must not race its writes to /bsd)."""
    if state.data.get("relink_waited"):
        return
    state.ui.say("Waiting for the kernel relink (reorder_kernel) to finish, if it runs")
    _check("waiting for reorder_kernel", *_run(state, "reorder_kernel wait", relink_wait_command()))
    state.data["relink_waited"] = True


def _need_connection(state: State, option: str) -> None:
    if state.data.get("communicator") is None:
        raise PackwrapError(f"{option} needs the SSH communicator, but none is connected")


class StepSyspatch(Step):
    """syspatch = true: run syspatch(8) until it has nothing left to apply."""

    name = "syspatch"

    def applies(self, state: State) -> bool:
        return config_of(state).syspatch

    def run(self, state: State) -> None:
        _need_connection(state, "syspatch")
        wait_for_relink(state)
        for run in range(1, SYSPATCH_MAX_RUNS + 1):
            state.check_cancelled()
            state.ui.say(f"syspatch: run {run}")
            status, tail = _run(state, "syspatch", SYSPATCH)
            if status == 0:
                continue  # applied patches: run again until it reports none
            if status == 2 and not any(SYSPATCH_AGAIN in line for line in tail):
                state.ui.say(f"syspatch: nothing more to apply (after {run} runs)")
                return
            if status != 2:
                _check("syspatch", status, tail)
        raise PackwrapError(f"syspatch still had patches to apply after {SYSPATCH_MAX_RUNS} runs")


class StepGeneralize(Step):
    """generalize = true: leave nothing a clone must not share, then zero free space."""

    name = "generalize"

    def applies(self, state: State) -> bool:
        return config_of(state).generalize

    def run(self, state: State) -> None:
        _need_connection(state, "generalize")
        wait_for_relink(state)
        public = state.data.get("ssh_public_key")
        key_body = public.split()[1] if public else None
        for cmd in generalize_commands(key_body):
            state.check_cancelled()
            state.ui.say(f"Generalize: {cmd.label}")
            _check(f"generalize ({cmd.label})", *_run(state, cmd.label, cmd.command))


def final_guest_steps() -> list[Step]:
    """After the provisioners, before the temporary key's removal and the shutdown."""
    from packwrap.provision.buildrecord import StepBuildRecord

    # Each applies() only when asked for: the runner skips it otherwise, so the build
    # log and its step timings name only the steps that ran.
    return [StepSyspatch(), StepBuildRecord(), StepGeneralize()]
