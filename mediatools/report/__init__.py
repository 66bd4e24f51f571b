"""The timeline report: one self-contained HTML page (lanes per user on the wall clock,
speech turns, presence, gaps, problems, overlaps, zoom, the figures, and the mix as a
player whose position moves over the lanes). :func:`report` is the stage; the page's
HTML, CSS and JS live in :mod:`.page`."""
from .build import page_data, render_html, report
from .options import ReportOptions, ReportReport

__all__ = ["ReportOptions", "ReportReport", "page_data", "render_html", "report"]
