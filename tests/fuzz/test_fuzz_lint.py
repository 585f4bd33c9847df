"""The response-file linter: arbitrary lines answer with findings (or our error), never crash."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from packwrap.autoinstall.lint import lint
from packwrap.autoinstall.release import known_releases, load_release
from packwrap.errors import PackwrapError
from tests.fuzz._support import assert_ours, count

RELEASES = known_releases()
_KEYS = sorted(
    {t.split("?")[0] for r in RELEASES for p in load_release(r).prompts for t in p.texts}
)
_VALUES = [
    "yes", "no", "a", "done", "http", "disk", "cd0", "sd0", "vio0", "dhcp", "none",
    "autoconf", "-*", "+site*", "*", "$2b$10$abcdefghijklmnopqrstuv", "US/Pacific",
    "{{ .HTTPIP }}:{{ .HTTPPort }}", "{{ .Nope }}", "{{", "/", "", "   ", "=", "\r",
    "99999999999999999999", "-1", "²", "٣", "9" * 5000, "sets/", "bsd.rd", "W", "E", "?", "http://x/",
]  # fmt: skip
KEY = st.one_of(st.sampled_from(_KEYS), st.text(max_size=20))
VALUE = st.one_of(st.sampled_from(_VALUES), st.text(max_size=20))
LINE = st.one_of(
    st.builds(
        lambda k, sep, v: f"{k}{sep}{v}", KEY, st.sampled_from(["=", " = ", "\t=\t", "=="]), VALUE
    ),
    st.sampled_from(["", "#c", "= x", "\t", "\x00", "\ufeff", "\x85", "\u2028"]),
    st.text(max_size=30),
)
RESPONSE = st.lists(LINE, max_size=25).map("\n".join)


@given(RESPONSE, st.sampled_from(RELEASES))
@example("Location of sets = disk\nLocation of sets = http\n" * 3, "7.6")
@example("\u2028Set name(s) = -*\n", "7.6")
@example("IPv6 prefix length for vio0 = ²\n", "7.6")  # "²".isdigit(): int() ValueError
@example("IPv6 prefix length = " + "9" * 5000 + "\n", "7.6")
def test_lint_arbitrary_lines(text: str, release: str) -> None:
    count("lint.response_file")
    try:
        findings = lint(text, release, path="install.conf")
    except PackwrapError as exc:
        assert_ours(exc)
        return
    n_lines = text.count("\n") + 1
    for f in findings:
        assert f.message and "\n" not in f.message
        assert f.line is None or 0 <= f.line <= n_lines + 1


_CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "interfaces": st.lists(st.sampled_from(["vio0", "em0", "", "x y"]), max_size=3),
        "disks": st.lists(st.sampled_from(["sd0", "wd0", "sd1", ""]), max_size=3),
        "dhcp": st.booleans(),
        "dhcp_router": st.booleans(),
        "serial_console": st.booleans(),
        "ncpu": st.integers(-1, 64),
        "efi": st.booleans(),
        "netbooted": st.booleans(),
        "mirror_list": st.booleans(),
        "docroot_sets": st.none() | st.lists(st.text(max_size=10), max_size=3),
        "bogus": st.integers(),
    },
)


@given(RESPONSE, _CONTEXT)
def test_lint_with_arbitrary_machine_context(text: str, context: dict) -> None:
    count("lint.response_file+context")
    try:
        lint(text, "7.6", answers_context=context)
    except PackwrapError as exc:
        assert_ours(exc)


@given(st.text(max_size=12))
def test_lint_unknown_release(release: str) -> None:
    count("lint.release_name")
    try:
        lint("System hostname = x\n", release)
    except PackwrapError as exc:
        assert_ours(exc)
