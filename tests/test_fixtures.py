"""The committed fixture is a real Agora-style recording whose timeline matches its truth."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediatools.recording.discovery import load_recording
from mediatools.timeline.contract import build_timeline

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "two_users"


def test_committed_fixture_matches_truth():
    truth = json.loads((FIXTURE / "truth.json").read_text())
    tl = build_timeline(load_recording(FIXTURE))
    assert tl.origin_ms == truth["origin_ms"]
    for tu in truth["users"]:
        ut = tl.user(tu["uid"])
        assert [r.start_ms for r in ut.runs] == [r["start_ms"] for r in tu["runs"]]
        assert [r.duration_ms for r in ut.runs] == pytest.approx([r["duration_ms"] for r in tu["runs"]], abs=1.0)
    assert any(not u["uid"].isdigit() for u in truth["users"])  # a string user account
