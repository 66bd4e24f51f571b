"""Issue 7: commands × faults. Each cell asserts the exact outcome: the problem reported,
exit code, which runs survive and where, and that nothing stray is left behind."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mediatools.faults import POLICY
from mediatools.synth import Fault

from conftest import run_cli
from faultcases import EXPECTED_CODE, HAND_MADE, SYNTH_FAULTS, copy_recording, load_truth

PLAN = dict(users=2, duration_s=50.0, seed=4, gaps=1)
ALL_CASES = sorted(list(SYNTH_FAULTS) + list(HAND_MADE))


@pytest.fixture(scope="session")
def base_recording(make_recording):
    return make_recording("matrix_base", **PLAN)


@pytest.fixture(scope="session")
def fault_case(make_recording, base_recording, tmp_path_factory):
    made: dict[str, tuple[Path, dict, str]] = {}

    def get(name: str) -> tuple[Path, dict, str]:
        if name in made:
            return made[name]
        if name in SYNTH_FAULTS:
            folder, truth = make_recording(f"matrix_{name}", faults=[Fault(SYNTH_FAULTS[name], "0", 0, 1)], **PLAN)
        else:
            src, truth = base_recording
            folder = copy_recording(src, tmp_path_factory.mktemp("case") / name)
            HAND_MADE[name](folder, truth["users"][0]["uid"])
        made[name] = (folder, truth, truth["users"][0]["uid"])
        return made[name]

    return get


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _runs(doc: dict, uid: str) -> list[dict]:
    rec = doc["recordings"][0]
    return next(u for u in rec["users"] if u["uid"] == uid)["runs"]


# ---------------------------------------------------------------- inspect column

@pytest.mark.parametrize("name", ALL_CASES)
def test_inspect_reports_fault_and_places_survivors(name, fault_case):
    folder, truth, uid = fault_case(name)
    before = _snapshot(folder)
    proc = run_cli("inspect", str(folder), "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    codes = {(p["code"], p["uid"]) for p in doc["recordings"][0]["problems"]}
    assert (EXPECTED_CODE[name], uid) in codes, codes
    # the untouched user is placed exactly as the truth says
    other = truth["users"][1]
    got = _runs(doc, other["uid"])
    assert [r["start_ms"] for r in got] == [r["start_ms"] for r in other["runs"]]
    assert [r["duration_ms"] for r in got] == pytest.approx([r["duration_ms"] for r in other["runs"]], abs=1.0)
    # the faulted user's surviving runs start where the truth says (synth faults carry exact truth)
    if name in SYNTH_FAULTS:
        tu = truth["users"][0]
        got = _runs(doc, uid)
        assert [r["start_ms"] for r in got] == [r["start_ms"] for r in tu["runs"]]
        assert [r["duration_ms"] for r in got] == pytest.approx([r["duration_ms"] for r in tu["runs"]], abs=1.0)
    assert _snapshot(folder) == before, "inspect modified its input"


@pytest.mark.parametrize("name", ALL_CASES)
def test_inspect_strict_fails_one_line(name, fault_case):
    folder, truth, uid = fault_case(name)
    proc = run_cli("inspect", str(folder), "--strict")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mediatools: error: "), proc.stderr
    assert "Traceback" not in proc.stderr


def test_hand_made_survivors(fault_case):
    """Hand-made faults on user 0: every run whose slices are intact keeps its exact start."""
    for name, lost in [("non_utf8", 0), ("extinf_nan", 0), ("utc_far", 1), ("utc_impossible", 1),
                       ("not_m3u8", 0), ("empty_playlist", 0)]:
        folder, truth, uid = fault_case(name)
        doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
        got = _runs(doc, uid)
        want = truth["users"][0]["runs"]
        assert [r["start_ms"] for r in got] == [r["start_ms"] for r in want], name
        # a measured duration may differ from EXTINF by the codec's end padding (< 1 AAC frame)
        for i, (g, w) in enumerate(zip(got, want)):
            if lost and i == 0:
                # the run's last slice was renamed away: run 0 ends one slice earlier
                assert g["duration_ms"] < w["duration_ms"] - 1000, name
            else:
                assert abs(g["duration_ms"] - w["duration_ms"]) < 22.0, (name, g, w)


def test_playlist_but_no_slices_leaves_user_without_audio(fault_case):
    folder, truth, uid = fault_case("playlist_no_slices")
    doc = json.loads(run_cli("inspect", str(folder), "--json", check=True).stdout)
    assert _runs(doc, uid) == []
    probs = [p for p in doc["recordings"][0]["problems"] if p["code"] == "missing_slice" and p["uid"] == uid]
    n_listed = sum(len(r["slices"]) for r in truth["users"][0]["runs"])
    assert len(probs) == n_listed


def test_policy_table_covers_every_case_code():
    codes = {p.code for p in POLICY}
    assert set(EXPECTED_CODE.values()) <= codes


def test_readme_fault_section_matches_policy():
    from mediatools.faults import markdown
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown() in readme, "README section is stale: regenerate with `python -m mediatools.faults`"
