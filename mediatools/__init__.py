"""mediatools: Agora Cloud Recording individual audio → audio people can use.

The library API (the CLI and the service are thin layers over it). Every stage has one
shape, ``stage(source, out, options, *, progress=None) -> Report``: options and reports are
dataclasses, reports have ``to_dict()`` (the command's ``--json``) and a ``schema`` name,
and ``progress(done, total)`` follows :class:`mediatools.progress.Progress`.

Loading and the timeline
    ``load_recording(folder, sid=None)`` → :class:`Recording` (users → runs → slices, with
    every problem found as a :class:`Problem`); ``discover(folder)`` → all recordings there;
    ``build_timeline(rec)`` → :class:`Timeline` (each run's offset from the session origin).

Stages
    ``fetch(s3_url_or_location, dest, FetchOptions(...))`` → :class:`FetchReport`
    ``merge(source, outdir, MergeOptions(...))`` → :class:`MergeReport`
    ``mix(source, out_file, MixOptions(...))`` → :class:`MixReport`
    ``verify(mix_file, source, VerifyOptions(...))`` → :class:`VerifyReport`; a
    :class:`VerifyReference` handed to ``mix(..., reference=r)`` and then to
    ``verify(..., reference=r)`` lets verify use what the mix decoded (each run decoded once)
    ``activity(source, out_dir_or_None, ActivityOptions(...))`` → :class:`ActivityReport`: who
    spoke when (turns, talk-time figures; RTTM, WebVTT, Audacity, CSV and JSON into the folder);
    a :class:`SpeechTap` handed to ``mix(..., speech=t)`` and then to ``activity(..., speech=t)``
    lets activity use what the mix decoded
    ``report(source, out_html, ReportOptions(...))`` → :class:`ReportReport`: the timeline page
    ``process(source, ProcessOptions(...))`` → :class:`ProcessReport`: the unattended job
    (wait until complete → mix → verify → stems → publish under Agora's names, manifest
    last) for one recording or a whole bucket, on Dask (imported on first use)

``source`` is a folder or an already loaded :class:`Recording` (loaded once, probed once:
running several stages on one recording reports each problem once). Expected failures
raise :class:`MediatoolsError` (one line naming the file); :class:`UsageError` for bad
arguments. The library prints nothing; it logs to the ``mediatools`` logger.

Heavy dependencies load on first use: boto3 when a bucket is first reached, numpy when
audio is first mixed or measured.
"""
from __future__ import annotations

import logging as _logging

__version__ = "0.1.0"

from .activity import ActivityOptions, ActivityReport, activity  # noqa: E402
from .errors import MediatoolsError, Problem, UsageError  # noqa: E402
from .merge import MergeOptions, MergeReport, merge  # noqa: E402
from .mix import MixOptions, MixReport, mix  # noqa: E402
from .recording import MediaInfo, Recording, Run, Slice, UserTrack, discover, load_recording  # noqa: E402
from .report import ReportOptions, ReportReport, report  # noqa: E402
from .storage import AzureLocation, FetchOptions, FetchReport, S3Location, Selection, Settings, fetch  # noqa: E402
from .timeline import Timeline, build_timeline  # noqa: E402
from .verify import VerifyOptions, VerifyReport, verify  # noqa: E402

_logging.getLogger(__name__).addHandler(_logging.NullHandler())

_LAZY = {"process": ("pipeline", "process"), "process_recording": ("pipeline", "process_recording"),
         "ProcessOptions": ("pipeline", "ProcessOptions"), "ProcessReport": ("pipeline", "ProcessReport"),
         "RecordingResult": ("pipeline", "RecordingResult"), "VerifyReference": ("verify.reference", "Reference"),
         "SpeechTap": ("activity.tap", "SpeechTap")}


def __getattr__(name: str):  # noqa: ANN202
    """The pipeline (and with it Dask), and numpy for a VerifyReference or SpeechTap, are imported when first used."""
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(f".{module}", __name__), attr)
    raise AttributeError(f"module 'mediatools' has no attribute {name!r}")

__all__ = ["__version__", "MediatoolsError", "UsageError", "Problem",
           "MediaInfo", "Recording", "Run", "Slice", "UserTrack", "discover", "load_recording",
           "Timeline", "build_timeline",
           "fetch", "FetchOptions", "FetchReport", "S3Location", "AzureLocation", "Selection", "Settings",
           "merge", "MergeOptions", "MergeReport",
           "mix", "MixOptions", "MixReport",
           "verify", "VerifyOptions", "VerifyReport", "VerifyReference",
           "activity", "ActivityOptions", "ActivityReport", "SpeechTap", "report", "ReportOptions", "ReportReport",
           "process", "process_recording", "ProcessOptions", "ProcessReport", "RecordingResult"]
