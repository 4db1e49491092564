"""Every shell block the docs mark runnable runs, page by page, as a reader would run it (see
blocks.py): against `contentgen local-cluster` with the real kubectl where the page starts one,
otherwise on this machine. Blocks a page shares word for word with another page's opening run once,
in that page's session (blocks.handed_over). The chart's NOTES are run the same way in
tests/e2e/test_helm_real_node.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.docs.blocks import (
    Block,
    MarkerError,
    Session,
    cluster_pages,
    handed_over,
    parse_options,
    runnable_blocks,
    runnable_pages,
)
from tests.harness import real_node

PAGES = runnable_pages()
HANDED_OVER = handed_over(PAGES)
CLUSTER_PAGES = cluster_pages(PAGES)
# What a terminal's state is: the session's blocks carry their exports and directory over.
STATE = Block(ROOT / "README.md", 0, "export -p; pwd\n")


def test_the_pages_that_must_have_runnable_blocks_have_them() -> None:
    """README's quick start and the local cluster's walkthrough are the commands newcomers copy."""
    pages = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "docs/getting-started.md", "docs/local-cluster.md"} <= pages, pages


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(
            p, id=str(p.relative_to(ROOT)), marks=[pytest.mark.real_node] if p in CLUSTER_PAGES else []
        )
        for p in sorted(PAGES)
    ],
)
@pytest.mark.timeout(1800)
def test_runnable_blocks(path: Path, tmp_path: Path) -> None:
    blocks = PAGES[path]
    start, other = HANDED_OVER.get(path, (len(blocks), path))
    cluster = path in CLUSTER_PAGES
    if cluster:
        # the node runs the project's images: built here (cached) before the page's first block
        if real_node.SKIP_REASON:
            pytest.skip(real_node.SKIP_REASON)
        real_node.image_archives(tmp_path / "images")
    session = Session(tmp_path / "session", own_network=not cluster)
    try:
        fresh = session.run(STATE)
        for block in blocks[:start]:
            if block.background:
                session.start(block)
            else:
                session.run(block)
        if other != path:  # the rest runs in `other`'s session, which starts as this one did
            assert session.run(STATE) == fresh, (
                f"{blocks[start - 1].where} leaves the terminal changed, but the blocks after it run in "
                f"{other.relative_to(ROOT)}'s fresh session: have them differ from its blocks"
            )
    finally:
        problems = session.close()
    assert not problems, "\n".join(problems)


def test_readmes_local_cluster_blocks_run_in_the_local_cluster_pages_session() -> None:
    """The one hand-over there is today (a cluster started once for both pages), and the rule."""
    readme, local = ROOT / "README.md", ROOT / "docs" / "local-cluster.md"
    assert {readme: (1, local)} == HANDED_OVER, HANDED_OVER
    one, two, three = (Block(ROOT / "x.md", n, f"echo {n}\n") for n in (1, 2, 3))
    pages = {ROOT / "a.md": [one, two], ROOT / "b.md": [two, three], ROOT / "c.md": [one, two]}
    assert handed_over(pages) == {ROOT / "a.md": (1, ROOT / "b.md"), ROOT / "c.md": (1, ROOT / "b.md")}
    # a page that is the whole of another's tail, or its opening's only copy, hands over nothing
    assert handed_over({ROOT / "a.md": [one, two], ROOT / "b.md": [two]}) == {}
    assert handed_over({ROOT / "a.md": [one], ROOT / "b.md": [one, two]}) == {}


# --- the marker itself ---------------------------------------------------------------------------


def test_a_malformed_marker_is_an_error(tmp_path: Path) -> None:
    page = ROOT / "build" / "marker-test.md"  # under ROOT, as documents are
    page.parent.mkdir(exist_ok=True)
    cases = {
        "<!-- runnable: backgroun -->\n```sh\ntrue\n```\n": "unknown runnable option",
        "<!-- runnable: background -->\n```sh\ntrue\n```\n": "needs `ready: TEXT`",
        "<!-- runnable -->\n```yaml\na: 1\n```\n": "right before a ```sh",
        "<!-- runnable -->\n\n```sh\ntrue\n```\n": "right before a ```sh",
        "<!-- runnable -->\n```sh\ntrue\n": "never closed",
        "<!-- runnable --> more\n": "a line of its own",
    }
    try:
        page.write_text(
            "````markdown\n<!-- runnable -->\n```sh\ntrue\n```\n````\n`<!-- runnable -->` in text\n"
        )
        assert runnable_blocks(page) == []  # a marker shown in code, or quoted, is not one
        for text, error in cases.items():
            page.write_text(text)
            with pytest.raises(MarkerError, match=error):
                runnable_blocks(page)
    finally:
        page.unlink(missing_ok=True)
    assert parse_options("background, ready: export KUBECONFIG", "x") == (True, "export KUBECONFIG")


def test_a_failing_block_fails_and_state_carries_over(tmp_path: Path) -> None:
    session = Session(tmp_path)
    try:
        check_session(session)
    finally:
        session.close()


def check_session(session: Session) -> None:
    where = ROOT / "README.md"
    session.run(Block(where, 1, "export GREETING=hello\nmkdir sub && cd sub\n"))
    assert session.run(Block(where, 2, 'echo "$GREETING from $(basename "$PWD")"\n')) == "hello from sub\n"
    assert session.run(Block(where, 3, "ls ../examples/loratraining.yaml >/dev/null; echo ~\n")) == (
        f"{session.home}\n"
    )
    with pytest.raises(AssertionError, match="exited 1"):
        session.run(Block(where, 4, "false\necho never\n"))
    session.start(
        Block(where, 5, "python -c 'print(\"up\", flush=True); import time; time.sleep(600)'\n", True, "up")
    )
    assert session.close() == []  # Ctrl-C ended it
    session.start(Block(where, 6, "echo up; exit 3\n", True, "up"))
    session.background[-1].process.wait(60)  # it ended by itself before the stop
    assert "ended by itself (3)" in session.stop()[0]
