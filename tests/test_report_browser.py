"""Issue 16: the timeline report in a real headless Chromium, opened from file://.

A real recording (voice, a missing slice, a failover overlap) mixed by mediatools: nothing
but file:/data: requested, no console error, one lane per user plus the overlap lane, as
many turn rectangles drawn as the data has, a problem marker whose tooltip names the file,
a click on a turn moves the player there; and 20 users × 3 h opens in under 2 s, under 5 MB.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest
from browser_support import launch, sync_playwright
from conftest import run_cli

from mediatools.activity.figures import figures
from mediatools.activity.options import ActivityReport
from mediatools.report import page_data, render_html
from mediatools.synth.generate import Fault
from mediatools.timeline.span import Span


@pytest.fixture(scope="module")
def made(make_recording, tmp_path_factory):
    folder, truth = make_recording("report_voice", users=3, duration_s=40.0, seed=5, signal="voice", slice_s=5.0,
                                   faults=[Fault("missing_slice", "0", 0, 2), Fault("bak_overlap", "1", 1, 2)])
    out = tmp_path_factory.mktemp("report")
    run_cli("mix", str(folder), "-o", str(out / "call.m4a"), "-q", check=True)
    proc = run_cli("report", str(folder), "-o", str(out / "report.html"), "--mix", str(out / "call.m4a"), "--json",
                   check=True)
    act = run_cli("activity", str(folder), "-o", str(out / "act"), "--json", check=True)
    return folder, out, json.loads(proc.stdout), json.loads(act.stdout)


def _watch(page):  # noqa: ANN001
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return requests, errors


def test_report_in_headless_chromium(made):
    folder, out, rep, act = made
    assert rep["schema"] == "mediatools.report/1" and rep["markers"] >= 2
    html_path = out / "report.html"
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 800})
        requests, errors = _watch(page)
        page.goto(html_path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        lanes = page.locator(".lane")
        assert lanes.count() == len(act["users"]) + 1
        drawn = {el["uid"]: int(el["drawn"]) for el in lanes.evaluate_all(
            "ls => ls.filter(l => l.dataset.uid).map(l => ({uid: l.dataset.uid, drawn: l.dataset.drawn}))")}
        assert drawn == {u["uid"]: len(u["turns"]) for u in act["users"]}
        assert page.evaluate("mtReport.data.users.map(u => u.turns.length / 2)") == \
            [len(u["turns"]) for u in act["users"]]
        # the missing slice's marker: its tooltip names the file
        data = page.evaluate("mtReport.data")
        ui, mark = next((i, m) for i, u in enumerate(data["users"]) for m in u["markers"] if m["code"] == "missing_slice")
        box = page.locator(f".lane[data-index='{ui}'] canvas").bounding_box()
        v0, v1 = page.evaluate("mtReport.view()")
        page.mouse.move(box["x"] + (mark["t"] - v0) / (v1 - v0) * box["width"], box["y"] + box["height"] / 2)
        assert mark["file"] in page.locator("#tip").inner_text()
        # a click on a turn plays the mix from that turn's start
        page.wait_for_function("document.getElementById('player').readyState >= 1")
        u = max(act["users"], key=lambda u: len(u["turns"]))
        ui = [x["uid"] for x in data["users"]].index(u["uid"])
        a, b = u["turns"][len(u["turns"]) // 2]
        box = page.locator(f".lane[data-index='{ui}'] canvas").bounding_box()
        page.mouse.click(box["x"] + ((a + b) / 2 - v0) / (v1 - v0) * box["width"], box["y"] + box["height"] / 2)
        page.wait_for_function(f"Math.abs(document.getElementById('player').currentTime - {a / 1000}) < 0.3")
        assert page.locator(f".lane[data-index='{ui}']").get_attribute("data-clicked") == str(int(a))
        page.wait_for_selector("#cursor", state="visible")
        # zoom in: half the span shown, fewer or as many rectangles
        page.click("#zin")
        w0, w1 = page.evaluate("mtReport.view()")
        assert abs((w1 - w0) - (v1 - v0) / 2) < 1
        page.screenshot(path=str(out / "report.png"), full_page=True)
        browser.close()
    assert all(r.startswith(("file:", "data:")) for r in requests), requests
    assert errors == [], errors
    assert (out / "report.png").stat().st_size > 0


def _big_report(users: int = 20, hours: float = 3.0, seed: int = 1) -> ActivityReport:
    """A 20-user, 3-hour call as turn lists only (no audio): dense talkers, pauses, mutes."""
    rng = np.random.default_rng(seed)
    span = hours * 3_600_000
    presence, turns = {}, {}
    for k in range(users):
        uid = str(10_000 + k)
        join = float(rng.uniform(0, 600_000)) if k else 0.0
        mute = float(rng.uniform(join + 1_000_000, span - 1_000_000))
        presence[uid] = [Span(round(join), round(mute)), Span(round(mute + 120_000), span)]
        ts, t = [], join + float(rng.uniform(0, 5000))
        while t < span - 5000:
            d = float(rng.uniform(400, 4000))
            if not (mute <= t <= mute + 120_000 + 4000):
                ts.append(Span(round(t), round(t + d)))
            t += d + float(rng.uniform(300, 14_000))
        turns[uid] = ts
    f = figures(presence, turns, span)
    ulist = [{"uid": u, "presence": [[s.start, s.end] for s in presence[u]], "turns": [[s.start, s.end] for s in turns[u]]}
             for u in presence]
    return ActivityReport(sid="b16b00b5", cname="big", origin_ms=1_773_480_413_589, origin_utc="2026-03-14T09:26:53.589Z",
                          span_ms=span, detector={"silence_ms": 5000}, users=ulist, figures=f)


def test_twenty_users_three_hours_opens_fast(tmp_path):
    act = _big_report()
    n_turns = sum(len(u["turns"]) for u in act.users)
    assert n_turns > 20_000
    text = render_html(page_data(act), act)
    path = tmp_path / "big.html"
    path.write_text(text, encoding="utf-8")
    assert path.stat().st_size < 5 * 1024 * 1024, path.stat().st_size
    with sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        requests, errors = _watch(page)
        t0 = time.monotonic()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']")
        wall = time.monotonic() - t0
        ready_ms = page.evaluate("mtReportReady")
        drawn = page.locator(".lane[data-uid]").evaluate_all("ls => ls.map(l => +l.dataset.drawn)")
        assert drawn == [len(u["turns"]) for u in act.users]
        assert page.locator(".lane").count() == 21
        t1 = time.monotonic()
        page.evaluate("mtReport.setView(3600000, 3660000)")   # one minute of the second hour
        zoom_s = time.monotonic() - t1
        page.screenshot(path=str(tmp_path / "big.png"))
        browser.close()
    print(f"20 users x 3 h: {n_turns} turns, {path.stat().st_size / 1e6:.2f} MB, ready {ready_ms:.0f} ms after "
          f"navigation, {wall:.2f} s wall; zoom {zoom_s * 1000:.0f} ms")
    assert ready_ms < 2000 and wall < 2.0, (ready_ms, wall)
    assert all(r.startswith(("file:", "data:")) for r in requests) and errors == [], (requests, errors)


def test_report_finds_the_published_mix_and_refuses_bad_input(made, tmp_path):
    folder, out, rep, _ = made
    rec = tmp_path / "rec"
    rec.mkdir()
    for f in folder.iterdir():
        if f.suffix in (".ts", ".m3u8"):
            (rec / f.name).symlink_to(f)
    base = f"{rep['sid']}_{rep['cname']}"
    (rec / f"{base}_0.m4a").symlink_to(out / "call.m4a")
    page = rec / "report.html"
    got = json.loads(run_cli("report", str(rec), "-o", str(page), "--json", check=True).stdout)
    assert got["mix"].endswith(f"{base}_0.m4a") and f"src='{base}_0.m4a'" in page.read_text()
    run_cli("report", str(rec), "-o", str(tmp_path / "nomix.html"), "--no-mix", check=True)
    assert "<audio" not in (tmp_path / "nomix.html").read_text()
    bad = run_cli("report", str(tmp_path / "nowhere"), "-o", str(tmp_path / "x.html"))
    assert bad.returncode == 1 and "nowhere" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.html").exists()
