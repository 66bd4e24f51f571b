"""The HTML page at ``/``: recent jobs, their state, timings and links to the outputs.

One self-contained document: inline CSS, no script, no request to any other host (the
CSP forbids it), every value escaped. Output links go to ``/outputs/<sid>/<n>``, which
redirects to a short-lived presigned URL, so no credential is ever in the page.
"""
from __future__ import annotations

import html
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from .ledger import Job

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'none'; frame-ancestors 'none'"
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} table{border-collapse:collapse;width:100%}
th,td{padding:.3em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#f4f4f4} .state{font-weight:600;padding:.1em .5em;border-radius:.3em}
.queued{background:#eef} .running{background:#ffe9b3} .done{background:#d9f2d9} .failed{background:#f7d4d4}
.err{color:#a00;max-width:30em;overflow-wrap:anywhere} code{font-size:.9em}
.counts span{margin-right:1.2em}
"""


def _t(ms: int | None) -> str:
    if not ms:
        return ""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _dur(a: int | None, b: int | None) -> str:
    return f"{(b - a) / 1000:.1f} s" if a and b and b >= a else ""


def output_keys(result: dict[str, Any] | None) -> list[str]:
    """Output keys a pipeline result names, in order (what ``/outputs/<sid>/<n>`` indexes)."""
    outs = (result or {}).get("outputs") or []
    keys = []
    for o in outs if isinstance(outs, list) else []:
        k = o.get("key") or o.get("fileName") if isinstance(o, dict) else o if isinstance(o, str) else None
        if isinstance(k, str):
            keys.append(k)
    return keys


def render(jobs: list[Job], counts: dict[str, int], *, instance: str) -> str:
    e = html.escape
    rows = []
    for j in jobs:
        d = j.to_dict()
        links = " ".join(f'<a href="/outputs/{quote(j.sid)}/{i}">{e(k.rsplit("/", 1)[-1])}</a>'
                         for i, k in enumerate(output_keys(d["result"]))) if j.kind == "process" else ""
        verdict = (d["result"] or {}).get("verify") if d["result"] else None
        vtext = "" if not isinstance(verdict, dict) else ("passed" if verdict.get("passed", verdict.get("ok"))
                                                          else "failed")
        rows.append(
            f'<tr data-sid="{e(j.sid)}" data-state="{e(j.state)}"><td><a href="/jobs/{quote(j.sid)}"><code>{e(j.sid)}'
            f'</code></a></td><td>{e(j.cname or "")}</td><td>{e(j.kind)}</td>'
            f'<td><span class="state {e(j.state)}">{e(j.state)}</span></td><td>{j.attempts}</td>'
            f"<td>{_t(j.created_ms)}</td><td>{_t(j.started_ms)}</td><td>{_t(j.finished_ms)}</td>"
            f"<td>{_dur(j.started_ms, j.finished_ms)}</td><td>{links}</td><td>{e(vtext or j.agora_result or '')}</td>"
            f'<td class="err">{e(j.error or "")}</td></tr>')
    summary = "".join(f"<span>{e(s)}: <b>{n}</b></span>" for s, n in counts.items())
    body = "\n".join(rows) or '<tr><td colspan="12">No jobs yet.</td></tr>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="15">
<link rel="icon" href="data:,">
<title>mediatools serve</title><style>{_STYLE}</style></head>
<body><h1>mediatools serve</h1>
<p class="counts">{summary}</p>
<table id="jobs"><thead><tr><th>sid</th><th>cname</th><th>kind</th><th>state</th><th>attempts</th>
<th>queued (UTC)</th><th>started</th><th>finished</th><th>took</th><th>outputs</th><th>verify</th><th>error</th></tr>
</thead><tbody>
{body}
</tbody></table>
<p><small>instance {e(instance)} · times UTC · refreshes every 15 s · JSON: <a href="/jobs">/jobs</a></small></p>
</body></html>"""
