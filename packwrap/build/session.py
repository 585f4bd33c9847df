"""One `packwrap build` run: load, prepare, run builds in parallel, post-process, report.

Embedded builds (a plugin claims the source type) run in threads, at most
-parallel-builds at once (0 = no limit; -debug = 1), each with its own colour,
BuildUi and log file `<log dir>/packwrap-<build>.log` (log dir: $PACKWRAP_LOG_DIR,
else `<template dir>/.packwrap/logs`). Builds whose source type no plugin claims
are handed, all together, to a real `packer build` with the same flags and
`-only=` those builds. SIGINT/SIGTERM set one cancel event shared by every build
(cleanup always runs; a second Ctrl-C only says so); SIGQUIT (Ctrl-\\) prints the
last console lines of every running build.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packwrap.build.runner import default_ask, run_steps
from packwrap.build.state import BuildOptions, State
from packwrap.build.ui import (
    COLOURS,
    ERROR_COLOUR,
    BuildUi,
    Terminal,
    default_log_dir,
    no_color,
    safe_name,
)
from packwrap.childproc import run_child
from packwrap.config.schema import ConfigError, Problem
from packwrap.durations import format_duration
from packwrap.errors import Cancelled, PackwrapError

if TYPE_CHECKING:
    from packwrap.blueprint.regenerate import Generated
    from packwrap.build.artifact import Artifact
    from packwrap.template import BuildSpec, Template
    from packwrap.template.cliargs import PackerFlags

EXIT_CANCELLED = 130


@dataclass
class BuildResult:
    name: str
    artifacts: list[Artifact] = field(default_factory=list)
    error: str | None = None
    details: list[str] = field(default_factory=list)
    cancelled: bool = False
    log_path: Path | None = None


@dataclass
class Prepared:
    build: BuildSpec
    builder: Any
    config: Any
    chains: list
    colour: str


class GlobalUi:
    """Lines that belong to no build (`==> Builds finished...`)."""

    def __init__(self, terminal: Terminal):
        self.terminal = terminal

    def say(self, message: str) -> None:
        self.terminal.emit("say", message)

    message = say

    def error(self, message: str) -> None:
        self.terminal.emit("error", message, colour=ERROR_COLOUR)


def log_dir_for(template: Template, env: Mapping[str, str]) -> Path:
    configured = env.get("PACKWRAP_LOG_DIR")
    return Path(configured) if configured else default_log_dir(template.dir)


class BuildSession:
    def __init__(
        self,
        flags: PackerFlags,
        *,
        out: Any = None,
        err: Any = None,
        env: Mapping[str, str] | None = None,
        ask: Callable[[str], str] | None = None,
        install_signals: bool = True,
    ):
        self.flags = flags
        self.env = os.environ if env is None else env
        color = None if flags.color else False
        self.terminal = Terminal(
            out or sys.stdout,
            err or sys.stderr,
            color=color,
            timestamp=flags.timestamp_ui,
            machine=flags.machine_readable,
            env=self.env,
        )
        self.ui = GlobalUi(self.terminal)
        self.cancel_event = threading.Event()
        self.install_signals = install_signals
        self.ask = ask
        self._ask_lock = threading.Lock()
        self.running: dict[str, State] = {}
        self.packer_proc: subprocess.Popen[str] | None = None
        self.run_uuid = str(uuid.uuid4())
        self._interrupts = 0
        self.generated: Generated | None = None

    # -- entry point ------------------------------------------------------------------

    def run(self) -> int:
        from packwrap.template import load_template, select_builds

        path = Path(self.flags.path or ".")
        template = load_template(path, settings=self.flags.settings, env=self.env)
        if self.flags.warn_undeclared:
            for w in template.warnings:
                self.ui.error(f"Warning: {w}")
        builds = select_builds(template, self.flags.only, self.flags.except_)
        self.generated = self._generated_files(template, builds)
        embedded, handoff = self._prepare(template, builds)
        self._unlock_keys(embedded)
        packer = None
        if handoff:
            packer = shutil.which("packer", path=self.env.get("PATH"))
            if packer is None:
                names = ", ".join(b.name for b in handoff)
                types = ", ".join(sorted({repr(b.source.type) for b in handoff}))
                raise PackwrapError(
                    f"no packwrap builder for source type {types} (build {names}) and no "
                    "`packer` on PATH to hand it to: install Packer, or skip it with -except"
                )
        if handoff and self.generated is not None and self.generated.served():
            stale = ", ".join(self.generated.served())
            self.ui.error(
                f"Warning: packer serves http/ as it is on disk, and {stale} is out of date "
                "with the variables: run `packwrap regenerate` first"
            )
        os.environ["PACKER_RUN_UUID"] = self.run_uuid
        log_dir = log_dir_for(template, self.env)
        old = self._install_handlers()
        try:
            results = self._run_all(template, embedded, handoff, packer, log_dir)
        finally:
            self._restore_handlers(old)
        return self._summary(results, embedded=bool(embedded))

    def _prepare(
        self, template: Template, builds: list[BuildSpec]
    ) -> tuple[list[Prepared], list[BuildSpec]]:
        """Every embedded build's config and post-processors prepared before anything runs
        (ConfigError with every problem, secrets masked); the rest goes to packer."""
        from packwrap.plugins import builder_for
        from packwrap.postprocess import prepare_chains

        embedded: list[Prepared] = []
        handoff: list[BuildSpec] = []
        problems: list[Problem] = []
        for i, build in enumerate(builds):
            try:
                builder_cls = builder_for(build.source.type)
            except ImportError as exc:
                body = build.source.body
                raise PackwrapError(
                    f"the {build.source.type!r} builder plugin failed to load: {exc}",
                    file=body.file,
                    line=body.line,
                ) from None
            if builder_cls is None:
                handoff.append(build)
                continue
            handover = self._hand_over_for_post_processor(build, problems)
            if handover is not None:
                if handover:
                    handoff.append(build)
                continue
            builder = builder_cls()
            config, found, warnings = builder.schema.prepare(build.source.body)
            problems.extend(found)
            for w in warnings:
                self.ui.error(template.mask(f"Warning: {build.name}: {w}"))
            try:
                chains = prepare_chains(build.post_processors)
            except ConfigError as exc:
                problems.extend(exc.problems)
                chains = []
            embedded.append(Prepared(build, builder, config, chains, COLOURS[i % len(COLOURS)]))
        if problems:
            raise ConfigError([replace(p, message=template.mask(p.message)) for p in problems])
        return embedded, handoff

    def _hand_over_for_post_processor(
        self, build: BuildSpec, problems: list[Problem]
    ) -> bool | None:
        """A build with a post-processor packwrap does not embed goes to packer whole (True),
        or its problem is recorded when it cannot (False); None: all are embedded."""
        from packwrap.postprocess import UnsupportedPostProcessor
        from packwrap.postprocess.handover import handover_blocker, unembedded

        missing = unembedded(build.post_processors)
        if not missing:
            return None
        reason = handover_blocker(build, self.flags, self.env)
        if reason is None:
            types = ", ".join(sorted({repr(b.type) for b in missing}))
            self.ui.say(f"{build.name}: post-processor {types} is not embedded in packwrap: "
                        "the whole build goes to packer")  # fmt: skip
            return True
        for block in missing:
            exc = UnsupportedPostProcessor(block, reason)
            problems.append(Problem(exc.message, block.body.file, block.body.line))
        return False

    def _unlock_keys(self, embedded: list[Prepared]) -> None:
        """Signing keys unlocked (a passphrase asked for) before any build starts."""
        from packwrap.postprocess import unlock_chains

        unlock_chains([chain for p in embedded for chain in p.chains], self.env)

    def _generated_files(self, template: Template, builds: list[BuildSpec]) -> Generated | None:
        """A blueprint project's generated docroot files rendered for the variables and the
        selected builds' firmware, read only: each build serves the out-of-date ones from
        its HTTP overlay."""
        from packwrap.blueprint.regenerate import BlueprintUnavailable, plan
        from packwrap.plugins import boots_efi

        try:
            generated = plan(template.dir, template.variables, efi=boots_efi(builds))
        except BlueprintUnavailable as exc:
            self.ui.error(f"Warning: {exc}")
            return None
        if generated is not None:
            for note in generated.notes():
                self.ui.say(note)
            for warning in generated.warnings():
                self.ui.error(f"Warning: {warning}")
        return generated

    # -- running ------------------------------------------------------------------------

    def _run_all(
        self,
        template: Template,
        embedded: list[Prepared],
        handoff: list[BuildSpec],
        packer: str | None,
        log_dir: Path,
    ) -> list[BuildResult]:
        limit = 1 if self.flags.debug else self.flags.parallel_builds
        slots = threading.Semaphore(limit if limit > 0 else max(1, len(embedded)))
        results: list[BuildResult] = []
        lock = threading.Lock()

        def worker(p: Prepared) -> None:
            with slots:
                result = self._run_build(template, p, log_dir)
            with lock:
                results.append(result)

        threads = [
            threading.Thread(target=worker, args=(p,), name=f"build-{p.build.name}", daemon=True)
            for p in embedded
        ]
        if self.terminal.color and len(embedded) > 1:
            for p in embedded:
                self.terminal.line(
                    f"{p.build.name}: output will be in this color.", colour=p.colour
                )
            self.terminal.line("")
        for t in threads:
            t.start()
        handoff_result: list[BuildResult] = []
        if handoff and packer:
            handoff_result = self._hand_off(handoff, packer)
        for t in threads:
            # join with a timeout so the main thread keeps receiving signals
            while t.is_alive():
                t.join(0.2)
        order = {p.build.name: i for i, p in enumerate(embedded)}
        results.sort(key=lambda r: order.get(r.name, 0))
        return results + handoff_result

    def _run_build(self, template: Template, p: Prepared, log_dir: Path) -> BuildResult:
        from packwrap.build.common_options import sensitive_config_values
        from packwrap.postprocess import PPContext, run_chains

        build = p.build
        wanted_log = log_dir / f"packwrap-{safe_name(build.name)}.log"
        log_path: Path | None = wanted_log
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            wanted_log.write_text("", encoding="utf-8")  # one log per build: the last run
        except OSError as exc:
            self.ui.error(f"Warning: cannot write the build log {wanted_log}: {exc.strerror}")
            log_path = None
        ui = BuildUi(
            build.name,
            self.terminal,
            colour=p.colour,
            log_path=log_path,
            secrets=set(template.sensitive) | sensitive_config_values(p.config),
        )
        result = BuildResult(build.name, log_path=log_path)
        state = State(
            build_name=build.name,
            source_type=build.source.type,
            source_name=build.source.name,
            config=p.config,
            ui=ui,
            options=BuildOptions(
                force=self.flags.force,
                force_install=self.flags.force_install,
                on_error=self.flags.on_error,
                debug=self.flags.debug,
                timestamp_ui=self.flags.timestamp_ui,
                machine_readable=self.flags.machine_readable,
            ),
            cancel_event=self.cancel_event,
            template_dir=Path(template.dir),
            provisioners=list(build.provisioners),
        )
        state.data["log_dir"] = str(log_dir)
        if self.generated is not None:
            # StepHTTPServer serves these in place of the files on disk; StepSiteSet reads
            # the values the build really has (the record may lag behind the variables).
            state.data["generated_files"] = {
                str((self.generated.project_dir / path).resolve()): f.content
                for path, f in self.generated.served().items()
            }
            state.data["project_values"] = dict(self.generated.values)
        state.data["run_uuid"] = self.run_uuid
        ui.log(f"packwrap build {build.name}: run {self.run_uuid}")
        start = time.monotonic()
        self.running[build.name] = state
        try:
            steps = p.builder.steps(p.config)
            run_steps(steps, state, ask=self._ask)
            artifact = p.builder.artifact(p.config, state)
            state.artifact = artifact
            if artifact is not None and state.data.get("build_record"):
                # the image's /etc/packwrap-build, for the manifest's custom_data
                artifact.state.setdefault("build_record", dict(state.data["build_record"]))
            if artifact is not None:
                ctx = PPContext(
                    build_name=build.source.name,
                    builder_type=build.source.type,
                    full_name=build.name,
                    run_uuid=self.run_uuid,
                    ui=ui,
                    force=self.flags.force,
                    cancel_event=self.cancel_event,
                )
                result.artifacts = run_chains(p.chains, artifact, ctx)
            elapsed = format_duration(time.monotonic() - start)
            ui.emit("say", f"Build '{build.name}' finished after {elapsed}.")
        except Exception as exc:  # noqa: BLE001 - a bug in a step still fails the build
            result.cancelled = isinstance(exc, Cancelled) or self.cancel_event.is_set()
            message = str(exc)
            if not isinstance(exc, PackwrapError):
                # Not a user error: say so, keep the traceback in the build log (an
                # escaping exception ended the build thread and the run exited 0).
                import traceback

                ui.log(traceback.format_exc().rstrip())
                message = f"internal error: {type(exc).__name__}: {exc} (traceback in the log)"
            result.error = ui.mask(message)
            result.details = [ui.mask(d) for d in getattr(exc, "details", [])]
            console = getattr(state.data, "last_console", None)
            # the guest's last words explain a failed step, not a failed post-processor
            in_steps = state.artifact is None
            if not result.details and console is not None and in_steps and not result.cancelled:
                result.details = [f"console: {line}" for line in console.tail(10)]
            if not in_steps and result.cancelled and state.artifact is not None:
                # the steps finished: the image is complete, only post-processing stopped
                result.details.append(f"kept (complete): {state.artifact.description}")
            elapsed = format_duration(time.monotonic() - start)
            what = "was cancelled" if result.cancelled else "errored"
            ui.emit(
                "error",
                f"Build '{build.name}' {what} after {elapsed}: {result.error}",
                colour=ERROR_COLOUR,
            )
            for line in result.details:
                ui.emit("error", f"    {line}", colour=ERROR_COLOUR)
            if log_path:
                ui.emit("error", f"    build log: {log_path}", colour=ERROR_COLOUR)
        finally:
            self.running.pop(build.name, None)
            ui.close()
        return result

    def _ask(self, prompt: str) -> str:
        with self._ask_lock:  # one prompt at a time when builds run in parallel
            return (self.ask or default_ask)(prompt)

    # -- hand-off to packer -------------------------------------------------------------

    def packer_argv(self, packer: str, handoff: list[BuildSpec]) -> list[str]:
        f = self.flags
        argv = [packer, "build"]
        for kind, value in f.settings:
            argv += ["-var", value] if kind == "var" else [f"-var-file={value}"]
        if f.force:
            argv.append("-force")
        if f.debug:
            argv.append("-debug")
        if f.on_error != "cleanup":
            argv.append(f"-on-error={f.on_error}")
        if f.parallel_builds:
            argv.append(f"-parallel-builds={f.parallel_builds}")
        if f.timestamp_ui:
            argv.append("-timestamp-ui")
        if f.machine_readable:
            argv.append("-machine-readable")
        if not f.color or no_color(self.env):
            argv.append("-color=false")
        names: list[str] = []
        for b in handoff:
            for n in (b.name, b.short_name if b.build_name else None):
                if n and n not in names:
                    names.append(n)
        argv.append("-only=" + ",".join(names))
        argv.append(str(f.path or "."))
        return argv

    def _hand_off(self, handoff: list[BuildSpec], packer: str) -> list[BuildResult]:
        argv = self.packer_argv(packer, handoff)
        self.ui.say(f"==> Handing {', '.join(b.name for b in handoff)} to {packer}")
        # No cancel event here: a signal reaches packer through _on_cancel, and packer
        # cleans up and exits by itself (30 s of grace when we must end it).
        done = run_child(
            argv, self._write_packer_line, what=None, grace=30.0, on_start=self._set_packer
        )
        rc = done.status
        name = "packer: " + ", ".join(b.name for b in handoff)
        if rc == 0:
            return [BuildResult(name)]
        cancelled = self.cancel_event.is_set()
        return [
            BuildResult(name, error=f"packer build exited with status {rc}", cancelled=cancelled)
        ]

    def _set_packer(self, proc: subprocess.Popen[str] | None) -> None:
        self.packer_proc = proc

    def _write_packer_line(self, line: str) -> None:
        with self.terminal.lock:
            self.terminal.out.write(line)
            self.terminal.out.flush()

    # -- signals ------------------------------------------------------------------------

    def _install_handlers(self) -> dict[int, Any]:
        old: dict[int, Any] = {}
        if not self.install_signals or threading.current_thread() is not threading.main_thread():
            return old
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, self._on_cancel)
        # Ctrl-\ (and Ctrl-T on BSD/macOS, SIGINFO) shows the last console lines
        for name in ("SIGQUIT", "SIGINFO"):
            info_sig = getattr(signal, name, None)
            if info_sig is not None:
                old[info_sig] = signal.signal(info_sig, self._on_quit)
        return old

    def _restore_handlers(self, old: dict[int, Any]) -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    def _on_cancel(self, signum: int, _frame: Any) -> None:
        self._interrupts += 1
        name = signal.Signals(signum).name
        if self._interrupts == 1:
            self.cancel_event.set()
            self.ui.error(f"==> {name} received: cancelling builds and cleaning up...")
        else:
            self.ui.error("==> Cleanup in progress; it cannot be skipped, please wait.")
        proc = self.packer_proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signum)

    def _on_quit(self, _signum: int, _frame: Any) -> None:
        self.print_console_tails()

    def print_console_tails(self, n: int = 10) -> None:
        for name, state in list(self.running.items()):
            console = getattr(state.data, "last_console", None) or state.data.get("console")
            if console is None:
                self.ui.say(f"    {name}: no serial console yet")
                continue
            self.ui.say(f"==> {name}: last console lines:")
            for line in console.tail(n):
                self.ui.say(f"    {name} console: {line}")

    # -- summary ------------------------------------------------------------------------

    def _summary(self, results: list[BuildResult], *, embedded: bool = True) -> int:
        failed = [r for r in results if r.error]
        if not embedded:
            # only packer ran: it printed its own summary
            if self.cancel_event.is_set():
                return EXIT_CANCELLED
            return 1 if failed else 0
        ok = [r for r in results if not r.error and r.artifacts]
        if failed:
            self.ui.say("")
            self.ui.say("==> Some builds didn't complete successfully and had errors:")
            for r in failed:
                self.ui.say(f"--> {r.name}: {r.error}")
        self.ui.say("")
        if ok:
            self.ui.say("==> Builds finished. The artifacts of successful builds are:")
            for r in ok:
                self._report_artifacts(r)
        else:
            self.ui.say("==> Builds finished but no artifacts were created.")
        if self.cancel_event.is_set() or any(r.cancelled for r in failed):
            return EXIT_CANCELLED
        return 1 if failed else 0

    def _report_artifacts(self, r: BuildResult) -> None:
        term = self.terminal
        if term.machine:
            term.machine_line(r.name, "artifact-count", str(len(r.artifacts)))
        shown: set[int] = set()
        for i, a in enumerate(r.artifacts):
            if term.machine:
                n = str(i)
                term.machine_line(r.name, "artifact", n, "builder-id", a.builder_id)
                term.machine_line(r.name, "artifact", n, "id", a.id)
                term.machine_line(r.name, "artifact", n, "string", a.description)
                term.machine_line(r.name, "artifact", n, "files-count", str(len(a.files)))
                for j, f in enumerate(a.files):
                    term.machine_line(r.name, "artifact", n, "file", str(j), f)
                term.machine_line(r.name, "artifact", n, "end")
            # A post-processor that passes its input on (manifest) makes Packer list the
            # builder's artifact twice; the machine-readable lines keep Packer's count,
            # the summary names each artifact once.
            if id(a) not in shown:
                shown.add(id(a))
                self.ui.say(f"--> {r.name}: {a.description}")


def run_build(flags: PackerFlags, **kwargs: Any) -> int:
    return BuildSession(flags, **kwargs).run()
