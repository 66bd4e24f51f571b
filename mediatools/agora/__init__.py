"""Agora's side of the contract: what Agora writes and how it names it.

* :mod:`.names` — the file-name grammar (playlists, slices, ``bak<n>_`` failover,
  re-uploaded playlists, and the names of results stored next to a recording);
* :mod:`.playlist` — M3U8 parsing with Agora's own tags;
* :mod:`.documents` — reading Agora's JSON documents (start requests, stop responses,
  callbacks) and finding a key in them;
* :mod:`.transcode` — ``transcodeOptions`` (what a postpone mix was asked for);
* :mod:`.vendors` — ``storageConfig.vendor`` / region codes → S3-compatible endpoints.
"""
from .names import AgoraName, NameError_, format_utc, iso_utc, parse_name, parse_utc, playlist_name, slice_name
from .playlist import Playlist, PlaylistEntry, PlaylistError, parse_playlist
from .transcode import TranscodeOptions, load_transcode_options

__all__ = ["AgoraName", "NameError_", "format_utc", "iso_utc", "parse_name", "parse_utc", "playlist_name",
           "slice_name", "Playlist", "PlaylistEntry", "PlaylistError", "parse_playlist", "TranscodeOptions",
           "load_transcode_options"]
