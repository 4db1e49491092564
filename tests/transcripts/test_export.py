"""Transcripts as subtitles and timed text (contentgen/transcripts.py), from responses shaped as
AssemblyAI documents them, in every variant the documentation leaves open (word order, words
without times, utterances without words, a text-only response), checked by reading the SRT and
WebVTT back with a parser of their own: every word once and in order, cues in time order and
within the audio, at most two lines of 42 characters, at most 7 seconds when the speech allows."""

from __future__ import annotations

import copy
import itertools
import random
import re
from typing import Any

import pytest

from contentgen.transcripts import (
    CUE_SECONDS,
    FORMATS,
    LINE_CHARS,
    as_json,
    cues,
    export,
    read,
    segments,
)
from tests.providers.fake_assemblyai import COMPLETED_TRANSCRIPT

SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")
VTT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)$")


def seconds(parts: tuple[str, ...]) -> float:
    h, m, s, ms = (int(p) for p in parts)
    return h * 3600 + m * 60 + s + ms / 1000


def parse_srt(text: str) -> list[tuple[float, float, list[str]]]:
    out = []
    for n, block in enumerate(text.strip().split("\n\n"), start=1):
        lines = block.split("\n")
        assert lines[0] == str(n), block
        match = SRT_TIME.match(lines[1])
        assert match, lines[1]
        out.append((seconds(match.groups()[:4]), seconds(match.groups()[4:]), lines[2:]))
    return out


def parse_vtt(text: str) -> list[tuple[float, float, list[str]]]:
    blocks = text.strip().split("\n\n")
    assert blocks[0] == "WEBVTT"
    out = []
    for block in blocks[1:]:
        lines = block.split("\n")
        if lines[0].startswith("NOTE"):
            continue
        match = VTT_TIME.match(lines[0])
        assert match, lines[0]
        out.append((seconds(match.groups()[:4]), seconds(match.groups()[4:]), lines[1:]))
    return out


def spoken(lines: list[str]) -> list[str]:
    """The words of a cue's lines, without speaker labels and VTT voice tags."""
    text = " ".join(lines)
    text = re.sub(r"^<v [^>]*>", "", text)
    text = re.sub(r"^Speaker \w+: ", "", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split()


def check(parsed: list[tuple[float, float, list[str]]], words: list[str], duration: float) -> None:
    assert [w for _, _, lines in parsed for w in spoken(lines)] == words  # every word once, in order
    previous_end = 0.0
    for start, end, lines in parsed:
        assert start >= previous_end - 1e-3 and end > start and end <= duration + 1e-3
        previous_end = end
        assert 1 <= len(lines) <= 2
        for line in lines:
            shown = re.sub(r"^<v [^>]*>", "", line).replace("&lt;", "<").replace("&gt;", ">")
            shown = shown.replace("&amp;", "&")
            assert len(shown) <= LINE_CHARS or len(shown.split()) == 1


def long_response(rng: random.Random, speakers: bool) -> dict[str, Any]:
    text = (
        "The fire started near the ridge on Tuesday. By evening the wind had turned, and crews "
        "moved the line twice; nobody slept. Extraordinarily-long-hyphenated-words-happen-sometimes-too. "
        "We spoke to residents & firefighters <on the record> about what comes next?"
    ) * 4
    words, at = [], 0
    for n, token in enumerate(text.split()):
        length = rng.randint(120, 600)
        word = {"text": token, "start": at, "end": at + length, "confidence": 0.9}
        if speakers:
            word["speaker"] = "AB"[(n // 17) % 2]
        words.append(word)
        at += length + rng.choice([10, 40, 80, 900, 2500 if rng.random() < 0.05 else 30])
    response: dict[str, Any] = {"text": text, "words": words, "audio_duration": at / 1000 + 2}
    if speakers:
        turns: list[dict[str, Any]] = []
        for word in words:
            if not turns or turns[-1]["speaker"] != word["speaker"]:
                turns.append({"speaker": word["speaker"], "words": [], "start": word["start"]})
            turns[-1]["words"].append(word)
            turns[-1]["end"] = word["end"]
        for turn in turns:
            turn["text"] = " ".join(w["text"] for w in turn["words"])
        response["utterances"] = turns
    return response


@pytest.mark.parametrize("speakers", [False, True])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_subtitles_of_long_speech_read_back_whole_and_in_order(speakers: bool, seed: int) -> None:
    rng = random.Random(seed)
    response = long_response(rng, speakers)
    words = [w["text"] for w in response["words"]]
    shuffled = copy.deepcopy(response)  # the documentation promises no order
    rng.shuffle(shuffled["words"])
    for variant in (response, shuffled):
        duration = variant["audio_duration"]
        check(parse_srt(export(variant, "srt")), words, duration)
        check(parse_vtt(export(variant, "vtt")), words, duration)
    timed = read(response)
    made = cues(timed)
    # Seven seconds at most where a cut was possible (a cue of one word may not be cut).
    assert all(c.end - c.start <= CUE_SECONDS + 1.0 or len(c.words) == 1 for c in made)
    assert any(len(c.words) > 3 for c in made)  # not one word a cue
    if speakers:
        assert all(len({w.speaker for w in c.words}) == 1 for c in made)  # a new cue at a new speaker
        srt = export(response, "srt")
        turns = segments(timed)
        changes = 1 + sum(a.speaker != b.speaker for a, b in itertools.pairwise(turns))
        assert srt.count("Speaker A: ") + srt.count("Speaker B: ") == changes  # at each new speaker
        assert "<v Speaker A>" in export(response, "vtt")


def test_the_documented_example() -> None:
    srt = export(COMPLETED_TRANSCRIPT, "srt")
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,000\nSpeaker A: Hello there.\n\n"
        "2\n00:00:01,200 --> 00:00:02,200\nSpeaker B: Hi, how are you?\n"
    )
    vtt = export(COMPLETED_TRANSCRIPT, "vtt")
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n<v Speaker A>Hello there.\n")
    data = as_json(read(COMPLETED_TRANSCRIPT))
    assert data["speakers"] == ["A", "B"] and data["timed"] is True and data["durationSeconds"] == 3
    assert [(s["start"], s["end"], s["speaker"], s["text"]) for s in data["segments"]] == [
        (0.0, 0.8, "A", "Hello there."),
        (1.2, 2.2, "B", "Hi, how are you?"),
    ]
    assert export(COMPLETED_TRANSCRIPT, "txt") == (
        "[00:00:00] Speaker A: Hello there.\n[00:00:01] Speaker B: Hi, how are you?\n"
    )


def test_variants_the_documentation_leaves_open() -> None:
    # Without speaker labels: no utterances, words without speakers.
    plain = {
        "text": "Hello there. Hi, how are you?",
        "words": [{k: v for k, v in w.items() if k != "speaker"} for w in COMPLETED_TRANSCRIPT["words"]],
        "utterances": None,
        "audio_duration": 3,
    }
    assert "Speaker" not in export(plain, "srt") and "<v " not in export(plain, "vtt")
    # Utterances without their words: each turn's text spread over its time.
    bare = copy.deepcopy(COMPLETED_TRANSCRIPT)
    for turn in bare["utterances"]:
        del turn["words"]
    bare["words"] = None
    parsed = parse_srt(export(bare, "srt"))
    assert [spoken(lines) for _, _, lines in parsed] == [["Hello", "there."], ["Hi,", "how", "are", "you?"]]
    assert parsed[1][0] == pytest.approx(1.2)
    # A word without times is left out of the timed words, not placed at 0.
    holes = copy.deepcopy(plain)
    holes["words"][2]["start"] = None
    assert "Hi," not in export(holes, "srt") and "how are you?" in export(holes, "srt")
    # Times as floats, an end before its start, milliseconds beyond an hour.
    odd = {"words": [{"text": "late", "start": 3_723_004.4, "end": 3_723_000}], "audio_duration": None}
    assert "01:02:03,004 --> 01:02:04,004" in export(odd, "srt")


def test_a_text_only_response_and_the_offline_placeholder() -> None:
    placeholder = {
        "text": "[OFFLINE PLACEHOLDER] This is not a transcript: the offline provider does not listen "
        "to the audio. The source (1234 bytes, sha256 0123456789ab) is 25.0 seconds long.",
        "words": [],
        "utterances": None,
        "audio_duration": 25,
        "contentgen_placeholder": True,
    }
    vtt = export(placeholder, "vtt")
    assert "NOTE made by the offline provider" in vtt
    check(parse_vtt(vtt), placeholder["text"].split(), 25)
    parsed = parse_vtt(vtt)
    assert parsed[0][0] == 0 and parsed[-1][1] == 25  # spread over the audio
    data = as_json(read(placeholder))
    assert data["timed"] is False and data["placeholder"] is True
    assert data["segments"] == [{"start": 0.0, "end": 25.0, "speaker": None, "text": placeholder["text"]}]
    assert export({"text": "", "words": None}, "srt") == ""
    assert export({"text": "", "words": None}, "vtt") == "WEBVTT\n"


def test_text_that_would_break_the_formats_is_escaped() -> None:
    response = {
        "words": [
            {"text": "a-->b", "start": 0, "end": 500},
            {"text": "<b>&</b>", "start": 500, "end": 900},
        ],
        "audio_duration": 1,
    }
    assert "a->b" in export(response, "srt") and "-->" not in export(response, "srt").split("\n", 2)[2]
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in export(response, "vtt")


def test_unknown_format() -> None:
    assert set(FORMATS) == {"srt", "vtt", "txt", "json"}
    with pytest.raises(ValueError, match="unknown format 'doc'"):
        export(COMPLETED_TRANSCRIPT, "doc")
