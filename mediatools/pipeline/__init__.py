"""``process``: the unattended replacement for Agora's postpone mixing, for one recording or a bucket.

:func:`process` runs the batch (on Dask) and returns a :class:`ProcessReport`;
:func:`process_recording` does one recording in the current process (what a Dask task
runs; idempotent); :func:`find_recordings` lists what is under a source and whether it
is complete; :func:`manifest_key` says where a recording's manifest is published.
"""
from .batch import find_recordings, process
from .completeness import RecordingInfo
from .job import process_recording
from .naming import manifest_key, mix_key, stem_key
from .options import ProcessOptions
from .report import ProcessReport, RecordingResult

__all__ = ["process", "process_recording", "find_recordings", "ProcessOptions", "ProcessReport",
           "RecordingResult", "RecordingInfo", "manifest_key", "mix_key", "stem_key"]
