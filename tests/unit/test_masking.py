"""The one secret masker (packwrap/masking.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from packwrap.masking import SENSITIVE, mask, secret_prefix_at_end
from packwrap.template.model import Template


def test_masks_every_secret_longest_first():
    assert mask("pw=hunter2 again hunter2", ["hunter2"]) == "pw=<sensitive> again <sensitive>"
    # "hunter" inside "hunter2" must not leave a lone "2" behind
    assert mask("hunter2 hunter", {"hunter", "hunter2"}) == "<sensitive> <sensitive>"


@pytest.mark.parametrize("secrets", [[], [""], ["absent"]])
def test_leaves_text_alone_without_a_secret_in_it(secrets):
    assert mask("plain text", secrets) == "plain text"


def test_the_template_masks_with_it():
    template = Template(path=Path("t.pkr.hcl"), dir=Path("."), format="hcl")
    template.sensitive = {"s3cret", "s3"}
    assert template.mask("a s3cret b s3") == f"a {SENSITIVE} b {SENSITIVE}"


@pytest.mark.parametrize(
    ("data", "held"),
    [(b"echo hun", 3), (b"echo hunter2", 0), (b"echo", 0), (b"h", 1), (b"", 0)],
)
def test_a_stream_holds_back_what_may_be_the_start_of_a_secret(data, held):
    assert secret_prefix_at_end(data, ["hunter2"]) == held
