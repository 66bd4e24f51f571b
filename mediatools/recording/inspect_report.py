"""The recording as data: the ``inspect --json`` schema and its human rendering.

Schema ``mediatools.inspect/1`` (times in ms; ``*_utc`` ISO 8601)::

    {"schema", "root", "recordings": [
        {"sid", "cname", "origin_ms", "origin_utc", "span_ms",
         "users": [{"uid", "track_type", "codec", "sample_rate", "channels",
                    "talk_ms", "first_offset_ms", "last_offset_ms", "first_utc", "last_utc",
                    "playlists", "slices", "usable_slices",
                    "runs": [{"index", "start_ms", "start_utc", "offset_ms", "duration_ms",
                              "end_offset_ms", "slices", "sources", "drift_ms",
                              "codec", "sample_rate", "channels"}],
                    "gaps": [{"offset_ms", "duration_ms"}]}],
         "problems": [{"code", "file", "message", "action", "uid"}],
         "results": ["<path relative to root>", ...]}]}   (Agora's postpone mix, mediatools' outputs)
"""
from __future__ import annotations

from ..agora.names import iso_utc
from ..timeline.contract import Timeline, build_timeline
from .model import Recording, Run

SCHEMA = "mediatools.inspect/1"


def _run_dict(i: int, r: Run, origin: int) -> dict:
    m = r.media
    return {"index": i, "start_ms": r.start_ms, "start_utc": iso_utc(r.start_ms),
            "offset_ms": r.start_ms - origin, "duration_ms": round(r.duration_ms, 3),
            "end_offset_ms": round(r.end_ms - origin, 3), "slices": [s.name for s in r.slices],
            "sources": r.sources, "drift_ms": round(r.drift_ms, 3),
            "codec": m.codec if m else None, "sample_rate": m.sample_rate if m else None,
            "channels": m.channels if m else None}


def recording_dict(rec: Recording, tl: Timeline | None = None) -> dict:
    tl = tl or build_timeline(rec)
    users = []
    for ut in tl.users:
        u = ut.track
        m = u.media
        users.append({
            "uid": u.uid, "track_type": u.track_type,
            "codec": m.codec if m else None, "sample_rate": m.sample_rate if m else None,
            "channels": m.channels if m else None,
            "talk_ms": round(ut.talk_ms, 3),
            "first_offset_ms": round(ut.first_offset_ms, 3), "last_offset_ms": round(ut.last_offset_ms, 3),
            "first_utc": iso_utc(u.first_ms) if u.first_ms is not None else None,
            "last_utc": iso_utc(int(round(u.last_ms))) if u.last_ms is not None else None,
            "playlists": u.playlists, "slices": len(u.slices),
            "usable_slices": sum(1 for s in u.slices if s.usable),
            "runs": [_run_dict(p.index, p.run, tl.origin_ms) for p in ut.runs],
            "gaps": [{"offset_ms": round(g.offset_ms, 3), "duration_ms": round(g.duration_ms, 3)} for g in ut.gaps],
        })
    return {"sid": rec.sid, "cname": rec.cname, "origin_ms": tl.origin_ms, "origin_utc": iso_utc(tl.origin_ms),
            "span_ms": round(tl.span_ms, 3), "users": users, "problems": [p.to_dict() for p in rec.problems],
            "results": list(rec.results)}


def clock(ms: float) -> str:
    """Offsets for humans: H:MM:SS.mmm."""
    neg = ms < 0
    ms = abs(int(round(ms)))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, milli = divmod(rem, 1000)
    return f"{'-' if neg else ''}{h}:{m:02d}:{s:02d}.{milli:03d}"


def render_text(doc: dict) -> str:
    out = []
    for r in doc["recordings"]:
        out.append(f"recording {r['sid']}  channel {r['cname']}  start {r['origin_utc']}  "
                   f"span {clock(r['span_ms'])}  users {len(r['users'])}")
        for u in r["users"]:
            fmt = (f"{u['codec']} {u['sample_rate']} Hz {u['channels']}ch" if u["codec"] else "format unknown")
            out.append(f"  uid {u['uid']:<12} {fmt:<22} runs {len(u['runs']):<3} talk {clock(u['talk_ms'])}  "
                       f"{clock(u['first_offset_ms'])} → {clock(u['last_offset_ms'])}  "
                       f"({u['first_utc'] or '-'} → {u['last_utc'] or '-'})")
            # runs and the gaps between them, in time order: when each user could be heard
            lines = [(run["offset_ms"], f"      run {clock(run['offset_ms'])} → {clock(run['end_offset_ms'])}  "
                                        f"{run['duration_ms'] / 1000:9.3f} s  {len(run['slices']):>4} slice"
                                        f"{'' if len(run['slices']) == 1 else 's'}  from {run['start_utc']}")
                     for run in u["runs"]]
            lines += [(g["offset_ms"], f"      gap {clock(g['offset_ms'])} +{g['duration_ms'] / 1000:.3f} s")
                      for g in u["gaps"]]
            out.extend(text for _, text in sorted(lines, key=lambda x: x[0]))
        if r["problems"]:
            out.append(f"  problems ({len(r['problems'])}):")
            for p in r["problems"]:
                out.append(f"    [{p['code']}] {p['file']}: {p['message']} ({p['action']})")
        else:
            out.append("  problems: none")
        if r.get("results"):
            out.append(f"  results beside it: {', '.join(r['results'])}")
    return "\n".join(out)
