"""The mix's taps together: verify's Reference and activity's SpeechTap on one mix share one
thread and resample each run once, and give exactly what each gives alone; one tap failing
leaves the other whole, and never fails the mix."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from mediatools.activity import SpeechTap
from mediatools.activity.tap import RunSpeech
from mediatools.media.tap import Shared16k, mix_taps
from mediatools.mix import MixOptions, mix
from mediatools.recording.discovery import load_recording
from mediatools.verify import Reference


@pytest.fixture(scope="module")
def voice(make_recording):
    folder, _ = make_recording("voice_aac_32000_2", users=3, duration_s=30.0, seed=11, codec="aac",
                               sample_rates=[32000], channels=[2], signal="voice")
    return load_recording(folder)


def _rows(ref: Reference) -> dict:
    return {k: (at, p.at, p.stream.rows(0, p.frames)) for k, (at, p) in ref.runs.items()}


def test_both_taps_share_one_resampling_and_equal_each_alone(voice, tmp_path):
    assert isinstance(mix_taps([Reference(), SpeechTap()])[0], Shared16k)
    alone_ref, alone_speech = Reference(), SpeechTap()
    mix(voice, tmp_path / "a.m4a", MixOptions(), reference=alone_ref)
    mix(voice, tmp_path / "b.m4a", MixOptions(), speech=alone_speech)
    ref, speech = Reference(), SpeechTap()
    names: list[str] = []
    real_start = threading.Thread.start

    def start(self):
        names.append(self.name)
        real_start(self)
    threading.Thread.start = start   # which threads the mix starts (the real ones, counted)
    try:
        mix(voice, tmp_path / "c.m4a", MixOptions(), reference=ref, speech=speech)
    finally:
        threading.Thread.start = real_start
    # one thread does both taps' work; neither tap starts one of its own
    assert names.count("mix-taps") == 1 and not {"verify-reference", "activity-tap"} & set(names), names
    try:
        ref.finish()
        speech.finish()
        assert ref.error is None and speech.error is None
        assert len(ref.runs) == len(alone_ref.runs) == len(speech.runs) >= 3
        a, b = _rows(alone_ref), _rows(ref)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k][:2] == b[k][:2] and np.array_equal(a[k][2], b[k][2]), k
        assert speech.runs == alone_speech.runs
        assert any(spans for _, spans in speech.runs.values())
    finally:
        ref.close()
        alone_ref.close()


def test_a_failing_tap_leaves_the_other_whole(voice, tmp_path, monkeypatch):
    def broken(self, x):  # noqa: ANN001
        raise RuntimeError("detector exploded")

    monkeypatch.setattr(RunSpeech, "put", broken)
    ref, speech = Reference(), SpeechTap()
    rep = mix(voice, tmp_path / "m.m4a", MixOptions(), reference=ref, speech=speech)
    try:
        assert (tmp_path / "m.m4a").stat().st_size > 0 and rep.duration_ms > 0
        speech.finish()
        assert isinstance(speech.error, RuntimeError) and speech.runs == {}
        ref.finish()
        assert ref.error is None and len(ref.runs) >= 3
    finally:
        ref.close()
