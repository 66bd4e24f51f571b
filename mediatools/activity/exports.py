"""Turns and figures in other tools' formats. Each writer is a pure function from the report to
text; :func:`write_exports` puts them in a folder atomically.

* RTTM as pyannote writes it: ``SPEAKER <file> 1 <start> <duration> <NA> <NA> <uid> <NA> <NA>``,
  seconds to the millisecond, whitespace in names replaced by ``_``;
* WebVTT: one cue per turn, its text a ``<v uid>`` voice span;
* Audacity: one label track per user (``start<TAB>end<TAB>label``, seconds);
* CSV: the figures, one row per user and one for the call;
* JSON: the whole report (``mediatools.activity/1``).

Times are on the session clock (0 = the session origin), as in the mix.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from ..atomic import atomic_write
from .options import ActivityReport

CSV_FIELDS = ("scope", "uid", "present_ms", "talk_ms", "share", "turns", "longest_turn_ms", "overlap_ms",
              "interruptions", "interrupted", "silences", "silence_ms", "span_ms")
NAMES = {"rttm": "activity.rttm", "vtt": "activity.vtt", "csv": "activity.csv", "json": "activity.json"}
LABELS_DIR = "labels"


def rttm_name(text: str) -> str:
    return re.sub(r"\s", "_", text) or "_"


def vtt_voice(text: str) -> str:
    """``text`` as a WebVTT parser reads a voice name back: whitespace runs collapsed, ends stripped."""
    return re.sub(r"\s+", " ", one_line(text)).strip()


def unique_names(uids: list[str], fit: Any) -> dict[str, str]:
    """uid → a name ``fit`` accepts unchanged, distinct per user. A uid that fits keeps its name;
    the others get ``fit(uid)``, with ``-2``, ``-3`` … where that is taken: "a b" and "a_b"
    were one RTTM speaker, " lead" and "lead" one WebVTT voice."""
    out: dict[str, str] = {u: u for u in uids if fit(u) == u and u}
    taken = set(out.values())
    for uid in uids:
        if uid in out:
            continue
        base = fit(uid) or "_"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}-{i}", i + 1
        out[uid] = name
        taken.add(name)
    return out


def export_names(rep: ActivityReport) -> dict[str, dict[str, str]]:
    """What each user is called in the RTTM, the WebVTT and the label file names."""
    uids = [u["uid"] for u in rep.users]
    return {"rttm": unique_names(uids, rttm_name), "vtt": unique_names(uids, vtt_voice),
            "labels": label_files(rep)}


def _s(ms: float) -> str:
    return f"{ms / 1000.0:.3f}"


def rttm(rep: ActivityReport) -> str:
    uri = rttm_name(f"{rep.sid}_{rep.cname}")
    names = unique_names([u["uid"] for u in rep.users], rttm_name)
    return "".join(f"SPEAKER {uri} 1 {_s(t.start_ms)} {_s(t.duration_ms)} <NA> <NA> {names[t.uid]} <NA> <NA>\n"
                   for t in rep.turns())


def vtt_time(ms: float) -> str:
    ms = int(round(ms))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, milli = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{milli:03d}"


def _vtt_escape(text: str) -> str:
    return one_line(text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def one_line(text: str) -> str:
    """``text`` with every line break (CR too: a WebVTT and CSV line terminator) and tab as a space."""
    return re.sub(r"[\r\n\t\v\f\x1c-\x1e\x85\u2028\u2029]", " ", text)


def webvtt(rep: ActivityReport) -> str:
    """One cue per turn. A voice name cannot keep whitespace at its ends or doubled (parsers
    strip and collapse it): such a user's voice is a distinct name (``activity.json``'s
    ``names.vtt``), and the cue text is the uid itself."""
    names = unique_names([u["uid"] for u in rep.users], vtt_voice)
    lines = ["WEBVTT", "", f"NOTE recording {_vtt_note(rep.sid)} {_vtt_note(rep.cname)}, "
             f"0 = {rep.origin_utc}", ""]
    for i, t in enumerate(rep.turns(), 1):
        lines += [f"turn-{i}", f"{vtt_time(t.start_ms)} --> {vtt_time(t.end_ms)}",
                  f"<v {_vtt_escape(names[t.uid])}>{_vtt_escape(t.uid)}</v>", ""]
    return "\n".join(lines)


def _vtt_note(text: str) -> str:
    """A NOTE may not hold "-->" (it would end the comment as a cue timing line)."""
    return _vtt_escape(text).replace("-->", "--&gt;")


def audacity(rep: ActivityReport, uid: str) -> str:
    user = next(u for u in rep.users if u["uid"] == uid)
    label = one_line(uid)
    return "".join(f"{a / 1000.0:.6f}\t{b / 1000.0:.6f}\t{label}\n" for a, b in user["turns"])


def figures_csv(rep: ActivityReport) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    # csv quotes a field holding "\n" but not one holding a lone "\r", which readers split on
    quoted = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n", quoting=csv.QUOTE_ALL)
    w.writeheader()
    for u in rep.figures["users"]:
        (quoted if "\r" in u["uid"] else w).writerow({"scope": "user", **{k: u[k] for k in CSV_FIELDS if k in u}})
    c = rep.figures["call"]
    w.writerow({"scope": "call", "uid": "", "talk_ms": c["talk_ms"], "overlap_ms": c["overlap_ms"],
                "turns": c["turns"], "interruptions": c["interruptions"], "silences": len(c["silences"]),
                "silence_ms": c["silence_ms"], "span_ms": c["span_ms"]})
    return buf.getvalue()


def label_files(rep: ActivityReport) -> dict[str, str]:
    """uid → the label file's name (safe and unique, as merge names its stems)."""
    from ..merge.core import safe_name
    taken: set[str] = set()
    return {u["uid"]: f"{LABELS_DIR}/{safe_name(u['uid'], taken)}.txt" for u in rep.users}


def render(rep: ActivityReport, kinds: list[str]) -> dict[str, tuple[str, str]]:
    """Export kind (``audacity:<uid>`` per user) → (relative file name, text)."""
    out: dict[str, tuple[str, str]] = {}
    if "rttm" in kinds:
        out["rttm"] = (NAMES["rttm"], rttm(rep))
    if "vtt" in kinds:
        out["vtt"] = (NAMES["vtt"], webvtt(rep))
    if "csv" in kinds:
        out["csv"] = (NAMES["csv"], figures_csv(rep))
    if "audacity" in kinds:
        for uid, name in label_files(rep).items():
            out[f"audacity:{uid}"] = (name, audacity(rep, uid))
    return out


def write_exports(rep: ActivityReport, outdir: Path, kinds: list[str]) -> dict[str, str]:
    """Write the exports (JSON last, listing the others) into ``outdir``; returns kind → path."""
    files: dict[str, str] = {}
    for kind, (name, text) in render(rep, kinds).items():
        path = outdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as fh:
            fh.write(text.encode("utf-8"))
        files[kind] = str(path)
    if "json" in kinds:
        files["json"] = str(outdir / NAMES["json"])
        rep.files = dict(files)
        write_json(rep.to_dict(), outdir / NAMES["json"])
    rep.files = dict(files)
    return files


def write_json(doc: dict[str, Any], path: Path) -> None:
    with atomic_write(path) as fh:
        fh.write((json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))
