"""Span arithmetic, on hand-made spans with exact answers."""
from __future__ import annotations

from mediatools.timeline import Span, gaps, overlap, support, total, window


def test_crop_and_overlaps():
    s = Span(1000.0, 16019.0)
    assert s.crop(window(0.0, 5000.0)) == Span(1000.0, 5000.0)
    assert s.crop(window(20000.0)) is None
    assert s.crop(window()) == s
    assert s.overlaps(Span(16000.0, 17000.0)) and not s.overlaps(Span(16019.0, 17000.0))
    assert s.duration == 15019.0 and not Span(5.0, 5.0)


def test_support_gaps_overlap():
    spans = [Span(30.0, 45.0), Span(0.0, 10.0), Span(5.0, 12.0), Span(12.0, 20.0)]
    assert support(spans) == [Span(0.0, 20.0), Span(30.0, 45.0)]
    assert gaps(spans) == [Span(20.0, 30.0)]
    assert gaps(spans, within=Span(-5.0, 50.0)) == [Span(-5.0, 0.0), Span(20.0, 30.0), Span(45.0, 50.0)]
    assert overlap(spans) == [Span(5.0, 10.0)]
    assert overlap([Span(0, 10), Span(2, 8), Span(4, 12)]) == [Span(2, 10)]
    assert total(spans) == 35.0
