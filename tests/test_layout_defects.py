"""The four seams the layout issue found, each shown broken on the old tree and held here."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

import mediatools
from mediatools.synth import Fault

PKG = Path(mediatools.__file__).resolve().parent


@pytest.fixture(scope="module")
def codec_change(make_recording):
    """User 1111's second run is Opus where its first is AAC: one format_change to report."""
    return make_recording("defects_codec_change", users=2, duration_s=30.0, seed=3, gaps=1,
                          faults=[Fault("codec_change", "0", 1, 0)])


def test_two_stages_on_one_recording_report_each_problem_once(codec_change, tmp_path):
    """Defect 1: merge then mix on one loaded recording (the README's library example) found
    format_change twice, because every stage probed again and appended."""
    folder, _ = codec_change
    rec = mediatools.load_recording(folder)
    merged = mediatools.merge(rec, tmp_path / "stems", mediatools.MergeOptions(create_outdir=True))
    mixed = mediatools.mix(rec, tmp_path / "call.m4a")
    codes = [p.code for p in rec.problems]
    assert codes.count("format_change") == 1, codes
    for report in (merged, mixed):
        assert [p["code"] for p in report.to_dict()["problems"]].count("format_change") == 1
    again = mediatools.mix(rec, tmp_path / "again.m4a")
    assert [p.code for p in again.problems].count("format_change") == 1


def test_no_module_carries_a_standard_library_name():
    """Defect 2: mediatools/signal.py shadowed the standard library's signal for any script
    run from inside the package folder, and asyncio then failed to import."""
    stdlib = set(sys.stdlib_module_names)
    clashes = sorted(str(p.relative_to(PKG)) for p in PKG.rglob("*.py") if p.stem in stdlib)
    assert clashes == []
    # and the failure itself: a script run from each package folder can import asyncio
    for folder in sorted({p.parent for p in PKG.rglob("*.py")}):
        p = subprocess.run([sys.executable, "-c", "import asyncio, signal; signal.getsignal(2)"], cwd=folder,
                           capture_output=True, text=True, env={**os.environ, "PYTHONSAFEPATH": ""})
        assert p.returncode == 0, (folder, p.stderr)


def test_results_next_to_a_recording_are_results_not_problems(basic_recording, tmp_path):
    """Defect 3: Agora's postpone mix (``<sid>_<cname>_<index>.<ext>``) and mediatools' own
    outputs beside a recording must not make --strict fail; inspect --json lists them."""
    src, _ = basic_recording
    folder = tmp_path / "rec"
    folder.mkdir()
    for f in src.iterdir():
        if f.suffix in (".ts", ".m3u8"):
            (folder / f.name).symlink_to(f)
    rec = mediatools.load_recording(folder)
    stem = f"{rec.sid}_{rec.cname}"
    made = [f"{stem}_0.m4a", f"{stem}_1.mp3", f"{stem}_0.aac", f"{stem}.mediatools.json"]
    for name in made:
        (folder / name).write_bytes(b"result")
    (folder / f"{stem}_stems").mkdir()
    (folder / f"{stem}_stems" / "1111.m4a").write_bytes(b"stem")
    (folder / "other_room_0.m4a").write_bytes(b"someone else's")   # not this recording's
    p = run_cli("inspect", str(folder), "--strict", "--json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)["recordings"][0]
    assert doc["problems"] == []
    assert sorted(doc["results"]) == sorted(made + [f"{stem}_stems/"])


def test_settings_are_read_when_used_not_at_import(monkeypatch):
    """Defect 4: MEDIATOOLS_SPLIT_MIN_S and MEDIATOOLS_SPOOL_MAX_MB were read at import time,
    so a long-running worker kept its start-up values."""
    from mediatools import settings
    from mediatools.media.formats import FORMATS
    from mediatools.mix.split import can_split

    rate = 48000
    ten_min = 600 * rate
    monkeypatch.delenv("MEDIATOOLS_SPLIT_MIN_S", raising=False)
    assert can_split(FORMATS["m4a"], "limit", ten_min, rate)
    monkeypatch.setenv("MEDIATOOLS_SPLIT_MIN_S", "900")          # changed after import
    assert not can_split(FORMATS["m4a"], "limit", ten_min, rate)
    monkeypatch.setenv("MEDIATOOLS_SPOOL_MAX_MB", "7")
    assert settings.get("MEDIATOOLS_SPOOL_MAX_MB") == 7
    monkeypatch.setenv("MEDIATOOLS_FFMPEG", "/nonexistent/ffmpeg")
    from mediatools.media.ffmpeg import FFmpegError, ffmpeg_path
    with pytest.raises(FFmpegError, match="MEDIATOOLS_FFMPEG=/nonexistent/ffmpeg"):
        ffmpeg_path()
    monkeypatch.delenv("MEDIATOOLS_FFMPEG")
    assert Path(ffmpeg_path()).name.startswith("ffmpeg")
    # every setting read anywhere is documented in the one table
    used = {m for p in PKG.rglob("*.py") for m in re.findall(r"MEDIATOOLS_[A-Z0-9_]+", p.read_text())}
    assert used <= set(settings.SETTINGS), sorted(used - set(settings.SETTINGS))
    assert "os.environ.get(\"MEDIATOOLS" not in "".join(p.read_text() for p in PKG.rglob("*.py"))


def test_no_runtime_dependency_goes_unused():
    """pydub and ffmpeg-python were declared and never imported."""
    tomllib = pytest.importorskip("tomllib")
    deps = tomllib.loads((PKG.parent / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[;~ ]", d, maxsplit=1)[0].strip().lower() for d in deps}
    imports = {"imageio-ffmpeg": "imageio_ffmpeg", "ffmpeg-python": "ffmpeg", "pyyaml": "yaml", "tomli": "tomli",
               "webrtcvad-wheels": "webrtcvad",
               "azure-storage-blob": "azure.storage.blob"}
    source = "\n".join(p.read_text() for p in PKG.rglob("*.py"))
    for name in names:
        mod = imports.get(name, name.replace("-", "_"))
        used = (f"import {mod}" in source or f"from {mod}" in source
                or f'"{mod}"' in source or f"+{mod}:" in source)   # chosen by name: uvicorn's http=, a DB URL
        assert used, f"{name} is declared but never used"
