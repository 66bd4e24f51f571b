"""``report``: one self-contained HTML page showing who spoke when.

:func:`page_data` turns an activity report (and the recording's problems and failover
joins) into the page's compact JSON; :func:`render_html` puts it into the template; and
:func:`report` is the stage (load → activity → page, written atomically).
"""
from __future__ import annotations

import html
import json
import logging
import os
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..activity.api import activity
from ..activity.options import ActivityReport
from ..agora.names import NameError_, iso_utc, parse_name, parse_result_name
from ..atomic import atomic_write
from ..errors import MediatoolsError
from ..progress import Progress
from ..recording.model import Recording
from ..recording.prepare import prepare_recording
from ..timeline.contract import build_timeline
from ..timeline.span import Span, overlap
from . import page
from .options import ReportOptions, ReportReport

log = logging.getLogger(__name__)


def _flat(spans: list[list[float]] | list[Span]) -> list[float]:
    out: list[float] = []
    for s in spans:
        a, b = (s.start, s.end) if isinstance(s, Span) else s
        out += [_num(a), _num(b)]
    return out


def _num(x: float) -> float:
    return int(x) if float(x).is_integer() else round(float(x), 3)


def markers(rec: Recording | None, origin_ms: int, uids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """uid → problems placed on its lane (at the slice's file-name time) and failover joins."""
    out: dict[str, list[dict[str, Any]]] = {u: [] for u in uids}
    if rec is None:
        return out
    for p in rec.problems:
        if p.uid not in out:
            continue
        try:
            n = parse_name(p.file)
        except NameError_:
            n = None
        if n is not None and n.utc_ms is not None:
            out[p.uid].append({"t": n.utc_ms - origin_ms, "code": p.code, "file": p.file, "message": p.message})
    for u in rec.users:
        if u.uid not in out:
            continue
        for prev, r in zip(u.runs, u.runs[1:]):
            src = r.slices[0].source
            if src != "original" and src != prev.slices[-1].source:
                out[u.uid].append({"t": r.start_ms - origin_ms, "code": "failover_joined", "file": r.slices[0].name,
                                   "message": f"{src} failover run joined here"})
    for ms in out.values():
        ms.sort(key=lambda m: m["t"])
    return out


def page_data(act: ActivityReport, *, rec: Recording | None = None, mix_src: str | None = None,
              mix_offset_ms: float = 0.0) -> dict[str, Any]:
    uids = [u["uid"] for u in act.users]
    marks = markers(rec, act.origin_ms, uids)
    every = [Span(a, b) for u in act.users for a, b in u["turns"]]
    return {"schema": "mediatools.report-data/1", "sid": act.sid, "cname": act.cname, "origin_ms": act.origin_ms,
            "origin_utc": act.origin_utc, "span_ms": act.span_ms,
            "users": [{"uid": u["uid"], "presence": _flat(u["presence"]), "turns": _flat(u["turns"]),
                       "markers": marks[u["uid"]]} for u in act.users],
            "overlap": _flat(overlap(every)), "silences": _flat(act.figures["call"]["silences"]),
            "mix": {"src": mix_src, "offset_ms": mix_offset_ms} if mix_src else None}


def _table(act: ActivityReport) -> str:
    e = html.escape
    head = ("uid", "present", "talk", "share", "turns", "longest turn", "overlap", "interruptions", "interrupted")
    rows = ["<table id='figures'><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for f in act.figures["users"]:
        cells = (e(f["uid"]), _s(f["present_ms"]), _s(f["talk_ms"]), f"{100 * f['share']:.1f} %", f["turns"],
                 _s(f["longest_turn_ms"]), _s(f["overlap_ms"]), f["interruptions"], f["interrupted"])
        rows.append(f"<tr data-uid='{e(f['uid'], quote=True)}'>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    c = act.figures["call"]
    rows.append(f"<tr class='call'><td>call</td><td>{_s(c['span_ms'])}</td><td>{_s(c['talk_ms'])}</td><td></td>"
                f"<td>{c['turns']}</td><td></td><td>{_s(c['overlap_ms'])}</td><td>{c['interruptions']}</td><td></td></tr>")
    rows.append("</tbody></table>")
    rows.append(f"<p>{len(c['silences'])} silences longer than {act.detector.get('silence_ms', 5000) / 1000:g} s "
                f"({_s(c['silence_ms'])} in all).</p>")
    return "".join(rows)


def _s(ms: float) -> str:
    """A duration for the figures table: "12.3 s", "1:05.0", "1:00:05.0" (rounded to the tenth
    first, so 119.96 s is "2:00.0", never "1:60.0")."""
    tenths = int(round(ms / 100.0))
    s, t = divmod(tenths, 10)
    if s < 60:
        return f"{s}.{t} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}.{t}" if h else f"{m}:{sec:02d}.{t}"


def render_html(data: dict[str, Any], act: ActivityReport, problems: list[Any] = ()) -> str:
    e = html.escape
    lanes = []
    for i, u in enumerate(data["users"]):
        lanes.append(f"<div class='row lane' data-index='{i}' data-uid='{e(u['uid'], quote=True)}'>"
                     f"<div class='name' title='{e(u['uid'], quote=True)}'>{e(u['uid'])}</div><canvas></canvas></div>")
    lanes.append("<div class='row lane overlap' data-kind='overlap'><div class='name'>overlap</div><canvas></canvas></div>")
    player = ""
    if data.get("mix"):
        player = f"<audio id='player' controls preload='metadata' src='{e(data['mix']['src'], quote=True)}'></audio>"
    probs = ""
    if problems:
        items = "".join(f"<li>{e(p.code)}: {e(p.file)}: {e(p.message)} ({e(p.action)})</li>" for p in problems)
        probs = f"<section><h2>Problems</h2><ul class='problems'>{items}</ul></section>"
    blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    blob = blob.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    title = f"{data['sid']} · {data['cname']}"
    sub = (f"{len(data['users'])} users · {_s(data['span_ms'])} · from {data['origin_utc']} to "
           f"{iso_utc(data['origin_ms'] + int(data['span_ms']))} · talk {_s(act.figures['call']['talk_ms'])}, "
           f"overlap {_s(act.figures['call']['overlap_ms'])}")
    return page.TEMPLATE.format(title=e(title), subtitle=e(sub), css=page.CSS, js=page.JS, lanes="\n".join(lanes),
                                player=player, table=_table(act), problems=probs, data=blob)


def mix_url(mix: Path, out: Path) -> str:
    """The mix as a URL relative to the page (so the pair can be moved or published together)."""
    rel = os.path.relpath(os.path.abspath(mix), os.path.abspath(out.parent))   # symlinks kept: the name is the link
    return quote(Path(rel).as_posix())


def published_mix(rec: Recording) -> Path | None:
    """The mix ``process`` (or Agora) published beside the recording: ``<sid>_<cname>_<n>.<ext>``."""
    found = []
    for r in rec.results:
        n = parse_result_name(Path(r).name)
        if n is not None and n.kind == "mix" and (rec.root / r).is_file():
            found.append((n.index or 0, r))
    return rec.root / min(found)[1] if found else None


def report(source: str | Path | Recording, out: str | Path, options: ReportOptions | None = None, *,
           progress: Progress | None = None, act: ActivityReport | None = None) -> ReportReport:
    """Write the page for ``source`` to ``out``; ``act`` reuses an activity report already made."""
    o = options or ReportOptions()
    out = Path(out)
    if out.is_dir():
        raise MediatoolsError("is a folder; give the report's file name", file=str(out), code="usage")
    rec = prepare_recording(source, sid=o.sid, strict=o.strict, tolerance_ms=o.activity.tolerance_ms)
    mix = Path(o.mix) if o.mix else (published_mix(rec) if o.find_mix else None)
    if mix is not None and not mix.is_file():
        raise MediatoolsError("no such mix file", file=str(mix), code="not_found")
    if act is None:
        ao = replace(o.activity, sid=rec.sid, uids=list(o.uids), exclude_uids=list(o.exclude_uids), strict=o.strict)
        act = activity(rec, None, ao, progress=progress)
    # a mix's t = 0 is the origin of all users; the lanes may show fewer (--uid)
    mix_origin = build_timeline(rec).origin_ms
    src = o.mix_src or (mix_url(mix, out) if mix else None)
    data = page_data(act, rec=rec, mix_src=src,
                     mix_offset_ms=float(mix_origin - act.origin_ms))
    text = render_html(data, act, rec.problems).encode("utf-8")
    with atomic_write(out, part=False) as fh:
        fh.write(text)
    log.info("report %s: %d users, %d bytes", out, len(act.users), len(text))
    return ReportReport(output=str(out), sid=act.sid, cname=act.cname, users=len(act.users),
                        turns=sum(len(u["turns"]) for u in act.users),
                        markers=sum(len(u["markers"]) for u in data["users"]), size_bytes=len(text),
                        mix=str(mix) if mix else None, problems=list(rec.problems))
