"""`python -m localcluster.probe DIR`: one line either way, the exit status says which. (That the
real node runs a pod is test_real_node.py's; `make test` prints the probe's line at its end.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from localcluster import NodeUnavailable, probe


def test_a_machine_that_cannot_run_the_node_is_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def refuse(root: Path) -> str:
        raise NodeUnavailable("the real node needs containerd: sudo apt-get install containerd\n(details)")

    monkeypatch.setattr(probe, "probe", refuse)
    assert probe.main([str(tmp_path)]) == 1
    assert capsys.readouterr().out == (
        "the real node does not run here: NodeUnavailable: the real node needs containerd: "
        "sudo apt-get install containerd\n"
    )


def test_it_takes_one_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert probe.main([]) == 2
    assert "usage: python -m localcluster.probe DIR" in capsys.readouterr().err
