"""The admission policy's CEL for a kind's inputs (charts/contentgen/templates/input-policy.yaml,
written by `make generate`): store/access.py's rule and words, for the API server.

Each input a kind declares (api/inputs.py; a list's items one by one, up to its model's bound) is
a variable holding its refusal ("" where it may be named), made of the same parts as
store/access.py `located` and `crossings`: the key an address names in the store's bucket (given
by the chart's values: `bucket`, `prefix`, `hosts`), whose it is by the layout (store/keys.py
`holder`), and the grants the operator mirrors by uid into the shares ConfigMap (`_{uid}`,
controller/shares.py). The first refusal, in the kind's order, is the answer, in Python's words.

Coarser than Python in one case, which the operator and the worker hold: a %-escaped path on a
host the chart does not name (CEL cannot decode it).
"""

from __future__ import annotations

from dataclasses import dataclass

from contentgen.api.inputs import EACH, InputPath, declared
from contentgen.api.kinds import Kind
from contentgen.store.keys import BASELINES, UPLOADS, WEIGHTS_FOLDER, WEIGHTS_SUFFIX, output_folders

SEGMENT = "^[A-Za-z0-9][A-Za-z0-9._-]*$"  # store/keys.py _SEGMENT
AWS_HOST = "^s3([.-][a-z0-9-]+)*[.]amazonaws[.]com([.]cn)?(:[0-9]+)?$"  # store/access.py AWS_HOST


@dataclass(frozen=True)
class Entry:
    """One input as CEL sees it: its field's words, how to reach it, whether it is there."""

    field: str
    value: str  # object.spec.source.url, object.spec.loras[2].url
    present: str  # has(...) chain
    access: str


def entries(path: InputPath) -> list[Entry]:
    """Every place `path` may hold an address, lists unrolled to their bounds."""
    found = [Entry("spec", "object.spec", "", path.access)]
    bounds = iter(path.bounds)
    for step in path.steps:
        if step == EACH:
            most = next(bounds)
            found = [item for entry in found for item in _items(entry, most)]
        else:
            found = [_field(entry, step) for entry in found]
    return found


def _field(entry: Entry, step: str) -> Entry:
    has = f"has({entry.value}.{step})"
    present = f"{entry.present} && {has}" if entry.present else has
    return Entry(f"{entry.field}.{step}", f"{entry.value}.{step}", present, entry.access)


def _items(entry: Entry, most: int) -> list[Entry]:
    return [
        Entry(
            f"{entry.field}[{n}]",
            f"{entry.value}[{n}]",
            f"{entry.present} && size({entry.value}) > {n}",
            entry.access,
        )
        for n in range(most)
    ]


def _q(text: str) -> str:
    """A CEL string literal (double quotes: the words have apostrophes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _key(u: str) -> str:
    """The key an address names in the store ('~': not the store's; '%': not plainly)."""
    s3 = f"{u}.substring(5)"
    slash = f"{s3}.indexOf('/')"
    s3_bucket = f"({slash} < 0 ? {s3} : {s3}.substring(0, {slash}))"
    s3_key = f"({slash} < 0 ? '' : {s3}.substring({slash} + 1))"
    host = f"url({u}).getHost().lowerAscii()"
    path = f"url({u}).getEscapedPath()"
    endpoint = f"{host}.substring(size(variables.bucket) + 1)"
    virtual = (
        f"{host}.startsWith(variables.bucket + '.') && ({endpoint} in variables.hosts || "
        f"{endpoint}.matches('{AWS_HOST}'))"
    )
    rest = f"{path}.substring(1)"
    first = f"({rest}.indexOf('/') < 0 ? {rest} : {rest}.substring(0, {rest}.indexOf('/')))"
    after = f"({rest}.indexOf('/') < 0 ? '' : {rest}.substring({rest}.indexOf('/') + 1))"
    plain = f"!{path}.contains('%') && !{path}.contains('\\\\')"
    return (
        f"{u}.startsWith('s3://') ? ({s3_bucket}.lowerAscii() == variables.bucket ? "
        f"({s3_key}.contains('?') || {s3_key}.contains('#') ? '%' : {_inside(s3_key)}) : '~') : "
        f"(({u}.startsWith('https://') || {u}.startsWith('http://')) && isURL({u})) ? "
        f"({virtual} ? ({plain} ? {_inside(rest)} : '%') : "
        f"{first}.lowerAscii() == variables.bucket ? ({plain} ? {_inside(after)} : '%') : '~') : '~'"
    )


def _inside(key: str) -> str:
    return f"({key}.startsWith(variables.prefix) ? {key}.substring(size(variables.prefix)) : '')"


def refusal(entry: Entry, n: int) -> str:
    """The CEL of input `n`'s refusal ("" where it may be named): store/access.py `refusal`."""
    k, p = f"variables.k{n}", f"variables.p{n}"
    owner, field = "variables.owner", _q(f"{entry.field}: ")
    needs = (
        f"(({p}[0] == '{WEIGHTS_FOLDER}' && {k}.endsWith('{WEIGHTS_SUFFIX}')) ? 'use' : 'read')"
        if entry.access == "use"
        else "'read'"
    )
    grants = f"variables.grants[{_q('_')} + {p}[2]]"
    granted = (
        f"({_q('_')} + {p}[2]) in variables.grants && (',' + {grants} + ',')"
        f".contains(',owner:' + {owner} + '=' + {needs} + ',')"
    )
    output = (
        f"{field} + {p}[0] + '/' + {p}[1] + '/' + {p}[2] + {_q('/… belongs to owner ' + chr(39))} + {p}[1] + "
        f"{_q(chr(39) + ', who has not shared it with owner ' + chr(39))} + {owner} + "
        f"{_q(chr(39) + ' (spec.owner) for ')} + {needs} + {_q('; name an output of owner ' + chr(39))} + "
        f"{owner} + {_q(chr(39) + ', or have ' + chr(39))} + {p}[1] + {_q(chr(39) + ' share it for ')} + "
        f"{needs} + {_q(' (docs/sharing.md)')}"
    )
    upload = (
        f"{field} + {_q(UPLOADS + '/')} + {p}[1] + {_q('/… is an upload of owner ' + chr(39))} + {p}[1] + "
        f"{_q(chr(39) + ', and uploads are not shared; upload the file as owner ' + chr(39))} + {owner} + "
        f"{_q(chr(39) + ' (spec.owner)')}"
    )
    own = "names a key of the store's own (not an output or an upload of owner '"
    none = "'), which no resource may name; name an output or an upload of owner '"
    state = f"{field} + {_q(own)} + {owner} + {_q(none)} + {owner} + {_q(chr(39))}"
    malformed = (
        f"{field} + {_q('an address in the store' + chr(39) + 's bucket ' + chr(39))} + variables.bucket + "
        f"{_q(chr(39) + ' must name its key plainly (no %-escapes): name the object as s3://')} + "
        f"variables.bucket + {_q('/KEY')}"
    )
    folders = "[" + ", ".join(f"'{f}'" for f in output_folders()) + "]"
    plain = f"{k} != '' && {p}.all(s, s.matches('{SEGMENT}') && !s.contains('..'))"
    return (
        f"{k} == '~' ? '' : {k} == '%' ? {malformed} : !({plain}) ? {state} : "
        f"(size({p}) >= 4 && {p}[0] in {folders}) ? ({p}[1] == {owner} || {granted} ? '' : {output}) : "
        f"(size({p}) == 4 && {p}[0] == '{UPLOADS}') ? ({p}[1] == {owner} ? '' : {upload}) : "
        f"({k}.startsWith('{BASELINES}') && size({p}) > 3) ? '' : {state}"
    )


def variables(kind: Kind) -> list[tuple[str, str]]:
    """The policy's variables for `kind` after the chart's own (owner, bucket, prefix, hosts,
    grants), and the last, `refusals`, the refusals in order."""
    made: list[tuple[str, str]] = []
    every = [e for path in declared(kind.spec) for e in entries(path)]
    for n, entry in enumerate(every):
        made += [
            (f"u{n}", f"({entry.present}) ? {entry.value} : ''"),
            (f"k{n}", _key(f"variables.u{n}")),
            (f"p{n}", f"variables.k{n}.split('/')"),
            (f"v{n}", refusal(entry, n)),
        ]
    made.append(("refusals", "[" + ", ".join(f"variables.v{n}" for n in range(len(every))) + "]"))
    return made
