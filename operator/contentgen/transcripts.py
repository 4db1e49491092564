"""A stored transcript (the provider's response, transcript.json) as timed text: speaker turns for
reading (the web UI, `?format=json`) and subtitle cues for video (SRT, WebVTT).

Pure functions over the response as AssemblyAI documents it: `words` (text, `start` and `end` in
milliseconds, `speaker` with speaker labels), `utterances` (one per speaker turn, with their own
words), `text` and `audio_duration` (seconds). Nothing the documentation leaves open is assumed:
words are ordered by time here, a word without times is kept in the text of its neighbours, a
response without any timed word (text only; the offline provider's placeholder) becomes one
segment over the audio's length, its cues sharing that time by their length.

Cues follow common subtitle practice: at most two lines of 42 characters, at most 7 seconds, a new
cue at a new speaker, after a pause of more than 1.5 seconds, and preferably at the end of a
sentence or clause.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

LINE_CHARS = 42
CUE_LINES = 2
CUE_SECONDS = 7.0
MIN_CUE_SECONDS = 1.0
PAUSE_SECONDS = 1.5
# A reading segment (a speaker's turn) is cut at a sentence end once it is this long.
SEGMENT_SECONDS = 20.0
SEGMENT_CHARS = 320
_SENTENCE_END = re.compile(r"[.!?…]['\")\]]*$")
_CLAUSE_END = re.compile(r"[,;:]['\")\]]*$")

Format = Literal["srt", "vtt", "txt", "json"]
FORMATS: tuple[str, ...] = ("srt", "vtt", "txt", "json")
MEDIA_TYPES = {
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
    "json": "application/json",
}


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds
    end: float
    speaker: str | None = None


@dataclass
class Segment:
    """A stretch of speech: a cue, or a reading segment (a speaker's turn or part of one)."""

    start: float
    end: float
    speaker: str | None
    text: str
    words: list[Word] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "speaker": self.speaker,
            "text": self.text,
        }


@dataclass(frozen=True)
class Timed:
    """What a transcript response holds, normalised."""

    words: list[Word]
    text: str
    duration: float
    placeholder: bool

    @property
    def speakers(self) -> list[str]:
        return sorted({w.speaker for w in self.words if w.speaker is not None})


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return max(0.0, float(value) / 1000.0)


def _speaker(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _words(items: Any, speaker: str | None = None) -> list[Word]:
    out: list[Word] = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        text = str(item.get("text") or "").strip()
        start, end = _seconds(item.get("start")), _seconds(item.get("end"))
        if not text or start is None:
            continue
        out.append(
            Word(
                text,
                start,
                max(start, end if end is not None else start),
                _speaker(item.get("speaker")) or speaker,
            )
        )
    return out


def read(response: dict[str, Any], duration_seconds: float = 0.0) -> Timed:
    """The words of a response (utterances' words when speaker labels made them, else `words`),
    in time order."""
    words = _turns(response.get("utterances")) or _words(response.get("words"))
    words.sort(key=lambda w: (w.start, w.end))
    reported = response.get("audio_duration")
    duration = (
        float(reported) if isinstance(reported, int | float) and not isinstance(reported, bool) else 0.0
    )
    duration = max(duration, duration_seconds, words[-1].end if words else 0.0)
    return Timed(
        words, str(response.get("text") or "").strip(), duration, bool(response.get("contentgen_placeholder"))
    )


def _turns(utterances: Any) -> list[Word]:
    """The words of the speakers' turns, where speaker labels made them."""
    turns = utterances if isinstance(utterances, list) else []
    return [word for turn in turns if isinstance(turn, dict) for word in _turn(turn)]


def _turn(turn: dict[str, Any]) -> list[Word]:
    """A turn's words; a turn that lists none has its text spread over its time."""
    speaker = _speaker(turn.get("speaker"))
    words = _words(turn.get("words"), speaker)
    start = _seconds(turn.get("start"))
    if words or not str(turn.get("text") or "").strip() or start is None:
        return words
    return _spread(str(turn["text"]), start, max(start, _seconds(turn.get("end")) or start), speaker)


def _spread(text: str, start: float, end: float, speaker: str | None) -> list[Word]:
    """Untimed text over [start, end]: each word gets time in proportion to its length."""
    tokens = text.split()
    total = sum(len(t) + 1 for t in tokens) or 1
    span = max(end - start, 0.0)
    out, at = [], start
    for token in tokens:
        length = span * (len(token) + 1) / total
        out.append(Word(token, at, at + length, speaker))
        at += length
    return out


def _join(words: list[Word]) -> str:
    return " ".join(w.text for w in words)


def segments(timed: Timed) -> list[Segment]:
    """Reading segments: one per speaker turn, cut at a sentence end when a turn runs long, and
    at a long pause when there are no speakers; the whole text over the audio when nothing is timed."""
    words = timed.words or (_spread(timed.text, 0.0, timed.duration, None) if timed.text else [])
    out: list[Segment] = []
    current: list[Word] = []

    def close() -> None:
        if current:
            out.append(
                Segment(current[0].start, current[-1].end, current[0].speaker, _join(current), list(current))
            )
            current.clear()

    for word in words:
        if current:
            turn = word.speaker != current[-1].speaker
            pause = word.start - current[-1].end > 2 * PAUSE_SECONDS and word.speaker is None
            long = (
                word.start - current[0].start >= SEGMENT_SECONDS or len(_join(current)) >= SEGMENT_CHARS
            ) and _SENTENCE_END.search(current[-1].text) is not None
            if turn or pause or long:
                close()
        current.append(word)
    close()
    if not timed.words and out:  # untimed: one segment over the audio, as the provider gave it
        out = [Segment(0.0, timed.duration, None, timed.text, out[0].words)]
    return out


def _fits(words: list[Word], label: str = "") -> bool:
    lines = _lines(label + _join(words))
    return len(lines) <= CUE_LINES and all(len(line) <= LINE_CHARS for line in lines)


def _lines(text: str) -> list[str]:
    """The text on as few lines of LINE_CHARS as it takes, split where the lines are most even."""
    if len(text) <= LINE_CHARS:
        return [text]
    words = text.split(" ")
    best: list[str] | None = None
    for cut in range(1, len(words)):
        first, second = " ".join(words[:cut]), " ".join(words[cut:])
        fits = len(first) <= LINE_CHARS and len(second) <= LINE_CHARS
        if fits and (best is None or abs(len(first) - len(second)) < abs(len(best[0]) - len(best[1]))):
            best = [first, second]
    if best is not None:
        return best
    lines, line = [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > LINE_CHARS:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines


def cues(timed: Timed) -> list[Segment]:
    """Subtitle cues (see the module docstring): each fits two lines of 42 characters (a single
    longer word gets a cue of its own) and lasts 1 to 7 seconds where the speech allows."""
    out = [cue for segment in segments(timed) for cue in _turn_cues(segment)]
    _hold_short_cues(out, timed.duration)
    return out


def _turn_cues(segment: Segment) -> list[Segment]:
    """A reading segment's words as cues, in order."""
    words, at = segment.words, 0
    out: list[Segment] = []
    while at < len(words):
        # The first cue of a turn makes room for the speaker's name (SRT writes it there).
        label = f"{_speaker_label(segment.speaker)}: " if at == 0 and segment.speaker is not None else ""
        cut = _cue_end(words, at, label)
        chosen = words[at:cut]
        out.append(Segment(chosen[0].start, chosen[-1].end, segment.speaker, _join(chosen), chosen))
        at = cut
    return out


def _cue_end(words: list[Word], at: int, label: str) -> int:
    """Where the cue that starts at `words[at]` ends: as many words as fit its time, its pauses and
    its lines, cut back to a sentence's or a clause's end unless that leaves a stub."""
    longest, sentence, clause = at + 1, 0, 0  # a single word always makes a cue
    for end in range(at + 1, len(words) + 1):
        stretch = words[at:end]
        if len(stretch) > 1 and (
            stretch[-1].end - stretch[0].start > CUE_SECONDS
            or stretch[-1].start - stretch[-2].end > PAUSE_SECONDS
            or not _fits(stretch, label)
        ):
            break
        longest = end
        if _SENTENCE_END.search(stretch[-1].text):
            sentence = end
        elif _CLAUSE_END.search(stretch[-1].text):
            clause = end
    if longest < len(words):  # cut where the text pauses, unless that leaves a stub
        if sentence and sentence - at >= (longest - at) / 3:
            return sentence
        if clause and clause - at >= (longest - at) / 2:
            return clause
    return longest


def _hold_short_cues(out: list[Segment], duration: float) -> None:
    """Each cue shows at least MIN_CUE_SECONDS, without running into the next one."""
    for n, cue in enumerate(out):
        following = out[n + 1].start if n + 1 < len(out) else max(duration, cue.end + MIN_CUE_SECONDS)
        if cue.end - cue.start < MIN_CUE_SECONDS:
            cue.end = max(cue.end, min(cue.start + MIN_CUE_SECONDS, following))


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{millis:03d}"


def _speaker_label(speaker: str | None) -> str:
    return f"Speaker {speaker}" if speaker is not None else ""


def srt(timed: Timed) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, a blank line between; a speaker's
    name starts the first cue of each turn."""
    blocks, previous = [], None
    for n, cue in enumerate(cues(timed), start=1):
        text = cue.text.replace("-->", "->")
        if cue.speaker is not None and cue.speaker != previous:
            text = f"{_speaker_label(cue.speaker)}: {text}"
        previous = cue.speaker
        lines = "\n".join(_lines(text))
        blocks.append(f"{n}\n{_clock(cue.start, ',')} --> {_clock(cue.end, ',')}\n{lines}\n")
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def vtt(timed: Timed) -> str:
    """WebVTT: the header, then cues with `.` before the milliseconds; speakers as voice spans
    (`<v Speaker A>`), which players show and style."""
    parts = ["WEBVTT", ""]
    if timed.placeholder:
        parts += ["NOTE made by the offline provider: a labelled placeholder, not a transcript", ""]
    for cue in cues(timed):
        lines = "\n".join(_vtt_text(line) for line in _lines(cue.text))
        if cue.speaker is not None:
            lines = f"<v {_vtt_text(_speaker_label(cue.speaker))}>{lines}"
        parts += [f"{_clock(cue.start, '.')} --> {_clock(cue.end, '.')}", lines, ""]
    return "\n".join(parts)


def text_with_times(timed: Timed) -> str:
    """Readable text: each segment on its own line, with its start time and speaker."""
    lines = []
    for segment in segments(timed):
        who = f" {_speaker_label(segment.speaker)}:" if segment.speaker is not None else ""
        lines.append(f"[{_clock(segment.start, '.')[:8]}]{who} {segment.text}")
    return "\n".join(lines) + ("\n" if lines else "")


def as_json(timed: Timed) -> dict[str, Any]:
    return {
        "durationSeconds": round(timed.duration, 3),
        "speakers": timed.speakers,
        "placeholder": timed.placeholder,
        "timed": bool(timed.words),
        "segments": [s.wire() for s in segments(timed)],
    }


def export(response: dict[str, Any], form: str, duration_seconds: float = 0.0) -> str:
    """The transcript in `form` (srt, vtt, txt or json) as text."""
    timed = read(response, duration_seconds)
    if form == "srt":
        return srt(timed)
    if form == "vtt":
        return vtt(timed)
    if form == "txt":
        return text_with_times(timed)
    if form == "json":
        return json.dumps(as_json(timed), indent=1) + "\n"
    raise ValueError(f"unknown format {form!r}: use one of {', '.join(FORMATS)}")


# Search (catalog/search.py): the transcript's words as one line of text, and where in it each
# stretch of MARK_WORDS words starts in the recording, so a hit found in the text has a time.
MARK_WORDS = 5


def searchable(
    response: dict[str, Any], duration_seconds: float, limit: int
) -> tuple[str, list[list[float]]]:
    """The words of the response (read), in time order, joined by single spaces and cut to `limit`
    characters, with marks [offset, seconds]: where in that text every MARK_WORDS-th word starts,
    and when it is said (untimed text: spread over the audio, as segments() does)."""
    timed = read(response, duration_seconds)
    words = [w for segment in segments(timed) for w in segment.words]
    parts: list[str] = []
    marks: list[list[float]] = []
    at = 0
    for n, word in enumerate(words):
        if at >= limit:
            break
        if n % MARK_WORDS == 0:
            marks.append([at, round(word.start, 2)])
        parts.append(word.text)
        at += len(word.text) + 1
    return " ".join(parts)[:limit], marks
