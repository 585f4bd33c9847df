"""The plugin SDK: plugins import only packwrap.sdk; it loads lazily; the shared parts work."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from packwrap import sdk
from packwrap.build.runner import run_steps
from packwrap.build.state import State
from packwrap.build.step import If, Step
from packwrap.build.steps.output_dir import OutputPlan, StepOutputDir
from packwrap.errors import PackwrapError
from tests import state_support

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugin"


def core_imports_besides_the_sdk(source: str) -> list[str]:
    """Every `packwrap` module (not packwrap.sdk) that `source` imports, also inside
    functions and TYPE_CHECKING blocks."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "packwrap":  # `from packwrap import build` names modules
                modules = [f"packwrap.{alias.name}" for alias in node.names]
        else:
            continue
        for name in modules:
            if (name == "packwrap" or name.startswith("packwrap.")) and name != "packwrap.sdk":
                found.append(f"{node.lineno}: {name}")
    return found


def test_the_checker_sees_every_way_to_import_the_core() -> None:
    source = (
        "import packwrap.build.step\n"
        "from packwrap.errors import PackwrapError\n"
        "from packwrap import build\n"
        "from packwrap import sdk\n"
        "from packwrap.sdk import Step\n"
        "from packwrap_qemu import driver\n"
        "if TYPE_CHECKING:\n    from packwrap.build.state import State\n"
        "def f():\n    from packwrap.media.checksums import parse_iso_checksum\n"
    )
    assert core_imports_besides_the_sdk(source) == [
        "1: packwrap.build.step",
        "2: packwrap.errors",
        "3: packwrap.build",
        "8: packwrap.build.state",
        "10: packwrap.media.checksums",
    ]


def test_plugins_import_only_the_sdk_from_the_core() -> None:
    files = sorted(PLUGINS.rglob("*.py"))
    assert len(files) > 20, files  # both plugins were found
    offenders = {
        str(f.relative_to(ROOT)): bad
        for f in files
        if (bad := core_imports_besides_the_sdk(f.read_text(encoding="utf-8")))
    }
    assert offenders == {}, "import these through packwrap.sdk (add them there if missing)"


def test_every_sdk_name_resolves_and_type_checkers_see_the_same_names() -> None:
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name
    assert "Step" in dir(sdk)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        sdk.Nope  # noqa: B018
    tree = ast.parse((ROOT / "packwrap" / "sdk.py").read_text(encoding="utf-8"))
    guarded = [
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    ]
    typed = {
        a.asname or a.name
        for n in ast.walk(guarded[0])
        if isinstance(n, ast.ImportFrom)
        for a in n.names
    }
    assert typed == set(sdk.__all__) == set(sdk._EXPORTS)


def test_importing_the_sdk_loads_nothing_of_the_build_engine() -> None:
    code = (
        "import sys, packwrap.sdk\n"
        "print(sorted(m for m in sys.modules if m.startswith('packwrap.')))\n"
        "packwrap.sdk.Step\n"
        "print('packwrap.build.step' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded, after = out.stdout.splitlines()
    assert loaded == "['packwrap.sdk']"
    assert after == "True"


# -- If(cond, step) --------------------------------------------------------------------------


class Rec(Step):
    def __init__(self, name: str, events: list[str]):
        self.name = name
        self.events = events

    def run(self, state: State) -> None:
        self.events.append(f"run {self.name}")

    def cleanup(self, state: State) -> None:
        self.events.append(f"cleanup {self.name}")


def make_state(tmp_path: Path, **options: object) -> State:
    return state_support.make_state(build="t.t", template_dir=tmp_path, **options)


def test_if_runs_and_cleans_up_its_step_only_when_the_condition_holds(tmp_path) -> None:
    events: list[str] = []
    asked: list[str] = []
    state = make_state(tmp_path, debug=True)
    state.data["wanted"] = False
    steps = [
        Rec("a", events),
        If(lambda s: s.data["wanted"], Rec("skipped", events)),
        Rec(
            "b",
            events,
        ),
        If(lambda s: s.data["wanted"], Rec("c", events)),
    ]
    steps[2].run = lambda s: (events.append("run b"), s.data.update(wanted=True))  # type: ignore[method-assign]
    run_steps(steps, state, ask=lambda p: asked.append(p) or "")
    assert events == ["run a", "run b", "run c", "cleanup c", "cleanup b", "cleanup a"]
    assert steps[1].name == "skipped"
    assert not any("skipped" in p for p in asked)  # -debug does not pause on a skipped step


def test_an_if_around_an_if_runs_its_step_only_when_both_conditions_hold(tmp_path) -> None:
    events: list[str] = []
    state = make_state(tmp_path)
    inner = If(lambda s: False, Rec("inner", events))
    steps = [Rec("a", events), If(lambda s: True, inner)]
    run_steps(steps, state, ask=lambda p: "")
    assert events == ["run a", "cleanup a"]
    assert not steps[1].applies(state)


# -- the shared output-directory step --------------------------------------------------------


def test_output_dir_in_a_shared_directory_never_removes_what_it_did_not_make(tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "other.img").write_text("someone else's")
    plan = OutputPlan("vm", out, image=out / "vm.raw")
    state = make_state(tmp_path)
    step = StepOutputDir(lambda s: plan)
    step.run(state)
    assert (state.data["vm_name"], state.data["output_dir"]) == ("vm", out)
    state.halted = True
    step.cleanup(state)
    assert (out / "other.img").exists()


def test_output_dir_owned_by_the_build_is_removed_when_it_fails(tmp_path) -> None:
    out = tmp_path / "out"
    state = make_state(tmp_path)
    step = StepOutputDir(lambda s: OutputPlan("vm", out))
    step.run(state)
    (out / "half.qcow2").write_text("x")
    state.halted = True
    step.cleanup(state)
    assert not out.exists()
    with pytest.raises(PackwrapError, match="working or template directory"):
        StepOutputDir(lambda s: OutputPlan("vm", tmp_path)).run(make_state(tmp_path, force=True))


# -- installer markers and the failure with the console's tail -------------------------------


@pytest.mark.parametrize(
    "line",
    [
        'Question has no answer in response file: "Password for root account?"',
        "failed; check /tmp/ai/ai.log",
        "No response file found; non-interactive mode aborted.",
    ],
)
def test_each_installer_failure_is_recognised(line: str) -> None:
    assert sdk.failure_marker(f"boot>\r\n{line}\r\n(I)nstall?") is not None
    assert (
        sdk.failure_marker("CONGRATULATIONS! Your OpenBSD install has been successfully completed!")
        is None
    )
    assert (
        sdk.SUCCESS_MARKER
        in "CONGRATULATIONS! Your OpenBSD install has been successfully completed!"
    )


def test_build_failed_ends_its_line_with_the_console_tail() -> None:
    err = sdk.BuildFailed("the installer failed", ["a", "", "b", "c", "d", "e"])
    assert str(err) == "the installer failed; console: b | c | d | e"
    assert err.details == ["a", "", "b", "c", "d", "e"]
    assert str(sdk.BuildFailed("no console", sdk.console_tail(None))) == "no console"
