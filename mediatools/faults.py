"""The fault policy: what every command does with each kind of broken input.

This table is the single source for the README section "What mediatools does with broken
recordings" (``python -m mediatools.faults`` prints it) and for the fault-matrix tests,
which check each row's problem code against real runs — so the documentation cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FaultPolicy:
    fault: str         # what is wrong
    code: str          # the Problem code reported (stderr, --json); "-" when none
    tolerant: str      # what the default (tolerant) mode does
    strict: str = "fails, exit 1, one line naming the file, nothing written"


POLICY: tuple[FaultPolicy, ...] = (
    FaultPolicy("slice listed in a playlist but missing from storage", "missing_slice",
                "skipped; the run splits there, so later audio stays in place and the hole is silence"),
    FaultPolicy("truncated slice (not a whole number of 188-byte TS packets)", "truncated",
                "skipped like a missing slice"),
    FaultPolicy("slice holding less audio than its EXTINF (cut at a packet boundary: the file looks whole)",
                "short_slice",
                "taken at the audio it holds (its frames counted); the next slice joins its run only where that "
                "audio ends, so later slices stay at their file-name times"),
    FaultPolicy("slice with packets lost or garbled inside (the file looks whole)", "damaged_slice",
                "decoded, placed by its frames' timestamps: the audio lost is silence where it was, and what "
                "follows keeps its time (the run stays whole); merge decodes that user rather than copy. "
                "Damage that also leaves it shorter than its EXTINF is short_slice instead (taken at what it holds)"),
    FaultPolicy("slice holding more audio than its EXTINF", "long_slice",
                "taken whole, likewise (where the next slice starts earlier, the overlap is cut)"),
    FaultPolicy("garbage bytes named .ts (no MPEG-TS sync byte)", "garbage",
                "skipped like a missing slice"),
    FaultPolicy("zero-byte slice", "zero_bytes", "skipped like a missing slice"),
    FaultPolicy("slice that is valid MPEG-TS but carries no audio a decoder can play (null packets, noise "
                "with sync bytes)", "undecodable", "skipped like a missing slice"),
    FaultPolicy("a run whose codec, sample rate or channels differ from the user's other runs",
                "format_change", "reported; mix resamples every run; merge transcodes that user"),
    FaultPolicy("duplicated playlist entry", "duplicate_entry", "the repeat is dropped"),
    FaultPolicy("out-of-order playlist entries", "out_of_order", "order restored by file-name time"),
    FaultPolicy("playlist without #EXT-X-ENDLIST", "no_endlist",
                "reported (recording still running or cut off); everything listed is used"),
    FaultPolicy("playlist that lists no slices", "empty_playlist",
                "reported; slices in storage are used by their file-name time (orphan_slice)"),
    FaultPolicy("playlist that is not M3U8 at all", "not_m3u8",
                "playlist skipped; the user is rebuilt from slice names"),
    FaultPolicy("non-UTF-8 bytes in a playlist", "non_utf8", "bytes replaced; valid entries used"),
    FaultPolicy("EXTINF negative, zero, absurd (> 1 h) or not a number", "bad_extinf",
                "the slice's duration is measured by decoding it"),
    FaultPolicy("impossible file-name UTC (e.g. month 13)", "bad_utc", "file skipped"),
    FaultPolicy("file-name UTC more than 12 h from every other slice of the user, and the playlist does "
                "not open a run with it (a lone misnamed file; a user back after a long absence, even for one "
                "slice, is kept)", "utc_outlier", "slice skipped"),
    FaultPolicy("bak<n> failover playlist overlapping the original", "overlap_cut",
                "joined to the user; the earlier run is cut so each instant plays once"),
    FaultPolicy("bak<n> failover playlist leaving a gap", "failover_joined",
                "joined to the user; the gap is silence"),
    FaultPolicy("the sender's AAC format (rate, channels, profile) changes between two slices of a run",
                "format_change", "a new run starts at the change, at its place: the mix decodes each part with "
                "its own decoder, merge copies a user only when all its runs share one format"),
    FaultPolicy("re-uploaded playlist versions (_<tick>_<index>.m3u8)", "reuploaded_playlist",
                "the larger of the unsuffixed and the highest-index version is used (Agora's rule)"),
    FaultPolicy("slices in storage listed in no playlist", "orphan_slice",
                "kept at their file-name time, duration measured"),
    FaultPolicy("slices but no playlist at all", "no_playlist", "the user is rebuilt from slice names"),
    FaultPolicy("playlist but none of its slices", "no_audio",
                "reported for that user (every slice also as missing_slice); other users go on"),
    FaultPolicy("two recordings (sids) in one folder", "-",
                "usage error (exit 2) naming the sids, for commands that need one; inspect lists both",
                "same"),
    FaultPolicy("unusual characters in a uid", "-",
                "handled; merge makes a safe, unique file name and records the mapping", "same"),
    FaultPolicy("output folder unwritable or disk full", "-",
                "exit 1, one line naming the path; no partial file under the final name", "same"),
    FaultPolicy("Ctrl-C / SIGTERM / SIGHUP (terminal closed) during mix, merge or fetch", "-",
                "exit 130; temporary files removed; completed fetched files kept for resume", "same"),
    FaultPolicy("S3 key that would land outside the destination (.., absolute, backslash, empty segment)",
                "refused_key", "refused and reported; nothing written outside DIR", "same"),
    FaultPolicy("S3 throttling (503 SlowDown), reset connections, truncated bodies", "-",
                "retried with backoff; a persistent failure ends with a one-line error and exit 1", "same"),
)


def markdown() -> str:
    rows = ["| fault | reported as | default (tolerant) | `--strict` |", "|---|---|---|---|"]
    for p in POLICY:
        code = f"`{p.code}`" if p.code != "-" else "-"
        rows.append(f"| {p.fault} | {code} | {p.tolerant} | {p.strict} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())
