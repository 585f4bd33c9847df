"""Packer-style flags for validate and build."""

from __future__ import annotations

import pytest

from packwrap.errors import UsageError
from packwrap.template.cliargs import parse_packer_flags


def test_order_of_var_and_var_file_is_kept():
    f = parse_packer_flags(
        ["-var", "a=1", "--var-file=x.pkrvars.hcl", "-var=b=2", "dir", "-var-file", "y.hcl"]
    )
    assert f.path == "dir"
    assert f.settings == [
        ("var", "a=1"),
        ("file", "x.pkrvars.hcl"),
        ("var", "b=2"),
        ("file", "y.hcl"),
    ]
    assert f.var_args == ["a=1", "b=2"] and f.var_files == ["x.pkrvars.hcl", "y.hcl"]


def test_only_except_and_bools():
    f = parse_packer_flags(["-only=a.*,b.c", "--only", "d", "-except", "e", "-syntax-only"])
    assert (f.only, f.except_, f.syntax_only) == (["a.*", "b.c", "d"], ["e"], True)
    assert parse_packer_flags(["-syntax-only=false"]).syntax_only is False


def test_build_flags():
    f = parse_packer_flags(
        [
            "-force",
            "-debug",
            "-on-error=abort",
            "-parallel-builds",
            "1",
            "-color=false",
            "t.pkr.hcl",
        ],
        command="build",
    )
    assert (f.force, f.debug, f.on_error, f.parallel_builds, f.color, f.path) == (
        True,
        True,
        "abort",
        1,
        False,
        "t.pkr.hcl",
    )


@pytest.mark.parametrize(
    ("argv", "command", "message"),
    [
        (["-force"], "validate", "unknown flag '-force' for validate"),
        (["-onyl=x"], "validate", "did you mean -only?"),
        (["-var"], "validate", "-var needs a value"),
        (["-var", "novalue"], "validate", "expected NAME=VALUE"),
        (["a", "b"], "validate", "expected one template path"),
        (["-on-error=explode"], "build", "expected one of cleanup, abort, ask"),
        (["-parallel-builds=x"], "build", "expected a number"),
        (["-syntax-only=maybe"], "validate", "expected true or false"),
        (["-only=x"], "regenerate", "unknown flag '-only' for regenerate"),
    ],
)
def test_bad_flags(argv, command, message):
    with pytest.raises(UsageError) as info:
        parse_packer_flags(argv, command=command)
    assert message in str(info.value)
    assert info.value.exit_code == 2
