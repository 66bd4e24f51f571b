"""serve's page in a real headless Chromium (Debian's package, driven by playwright-core):
jobs listed, no request leaves 127.0.0.1, no console error."""
from __future__ import annotations

import hashlib
import shutil
from urllib.parse import urlparse

import pytest
from browser_support import ARGS, CHROMIUM
from serve_support import API_TOKEN, NCS_SECRET, ServeProc, notice, uploaded_details

SIDS = ["e1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6", "e2b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"]


def test_page_in_headless_chromium(tmp_path, s3_server):
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    bucket = "serve-" + hashlib.md5(b"browser").hexdigest()[:10]
    s3_server.client().create_bucket(Bucket=bucket)
    st = {"sources": [f"s3://{bucket}/rec/"], "db": str(tmp_path / "l.db"), "endpoint_url": s3_server.url,
          "region": "us-east-1", "task": "serve_tasks:fake_job", "sweep_interval_s": 3600.0}
    with ServeProc(tmp_path, st, process={"fake_dir": str(tmp_path)}) as srv:
        cname = "room-1"
        for sid in SIDS:
            srv.post_ncs(notice(31, sid, cname, details=uploaded_details(sid, cname, ["1"], "rec/")))
            srv.wait_state(sid, ("done",))
        requests, errors = [], []
        with playwright.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(extra_http_headers={"Authorization": f"Bearer {API_TOKEN}"})
            page = ctx.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            resp = page.goto(srv.url + "/")
            assert resp.status == 200
            rows = page.locator("#jobs tbody tr")
            assert rows.count() == 2
            assert sorted(page.locator("#jobs tbody tr").evaluate_all("rs => rs.map(r => r.dataset.sid)")) == SIDS
            assert page.locator("#jobs tbody tr[data-state=done]").count() == 2
            assert page.locator("a[href^='/outputs/']").count() == 2
            html = page.content()
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            # the page without the token: 401, nothing listed
            anon = browser.new_context().new_page()
            assert anon.goto(srv.url + "/").status == 401
            browser.close()
    assert API_TOKEN not in html and NCS_SECRET not in html
    hosts = {urlparse(u).hostname for u in requests if not u.startswith("data:")}
    assert hosts == {"127.0.0.1"}, requests
    assert errors == [], errors
