"""Issue 14, the pure parts and the local-folder path: options, names, completeness, manifest, store."""
from __future__ import annotations

import json

import pytest

from mediatools.agora.names import playlist_name, slice_name
from mediatools.agora.playlist import PlaylistEntry, format_playlist
from mediatools.atomic import stray_temp_files
from mediatools.errors import MediatoolsError, UsageError
from mediatools.pipeline import (
    ProcessOptions,
    find_recordings,
    manifest_key,
    mix_key,
    process,
    process_recording,
    stem_key,
)
from mediatools.pipeline.completeness import assess, choose_versions, endlist_keys, group
from mediatools.pipeline.manifest import is_current
from mediatools.pipeline.options import parse_when
from mediatools.storage.backend import LocalStore
from mediatools.storage.selection import ObjectInfo
from mediatools.synth.generate import Fault

SID, CN = "abc123", "room-1"


def test_options_from_toml_and_flags_override(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[process]\nformat = "mp3"\nstems = true\nname-template = "{sid}.{ext}"\nsid = ["a1", "b2"]\n'
                 'wait_s = 60\n')
    o = ProcessOptions.from_toml(f)
    assert (o.format, o.stems, o.name_template, o.sids, o.wait_s) == ("mp3", True, "{sid}.{ext}", ["a1", "b2"], 60.0)
    o2 = o.merged(format="aac", stems=None)
    assert (o2.format, o2.stems) == ("aac", True)
    assert o.options_digest() != o2.options_digest()
    assert o.options_digest() == o.merged(workers=7, force=True, wait_s=0.0).options_digest()  # how, not what
    for text, msg in (('stemz = 1', "unknown option 'stemz'"), ('stems = "yes"', "option 'stems' has the wrong type"),
                      ('format = "ogg"', "format must be one of"), ('sid = "../x"', "not a recording id"),
                      ('name_template = "x/{sid}.{ext}"', "not a plain file name"), ("format = [", "not valid TOML"),
                      ('name_template = "fixed.{ext}"', "must hold {sid}"),
                      ('name_template = "{cname.__class__}_{sid}.{ext}"', "as they are, not {cname.__class__}"),
                      ('name_template = "{sid!r}.{ext}"', "as they are, not {sid!r}"),
                      ('name_template = "{sid:>40}.{ext}"', "as they are, not {sid:>40}"),
                      ("retries = 99", "retries must be 0 to 20")):
        f.write_text(text + "\n")
        with pytest.raises(UsageError, match=msg):
            ProcessOptions.from_toml(f)


def test_transcode_options_decide_the_format_and_the_digest(tmp_path):
    t = tmp_path / "start.json"
    t.write_text(json.dumps({"clientRequest": {"transcodeOptions": {
        "container": {"format": "mp3"}, "audio": {"sampleRate": "44100", "bitrate": "48000", "channels": "1"}}}}))
    o = ProcessOptions(transcode_options=str(t)).with_transcode_file()
    assert o.mix_settings() == {"format": "mp3", "sample_rate": 44100, "channels": 1, "bitrate": "48000",
                                "normalize": "limit"}
    assert ProcessOptions(transcode_options=str(t), channels=2).with_transcode_file().mix_settings()["channels"] == 2


def test_parse_when():
    now = 1_800_000_000_000
    assert parse_when("24h", now) == now - 86_400_000
    assert parse_when("90m", now) == now - 5_400_000
    assert parse_when("2026-03-14T09:26:53.589Z") == 1_773_480413_589
    assert parse_when("20260314092653589") == 1_773_480413_589
    # sub-ms bounds round up, the same for --since and --until: a slice at .589 is before .5891
    assert parse_when("2026-03-14T09:26:53.589100Z") == 1_773_480413_590
    assert parse_when("2026-03-14T09:26:53.588999+00:00") == 1_773_480413_589
    assert parse_when("0.0005s", now) == now
    with pytest.raises(UsageError):
        parse_when("soon")


def test_names_stay_inside_the_prefix():
    assert manifest_key("a/b/", SID, CN) == "a/b/abc123_room-1.mediatools.json"
    assert mix_key("a/", SID, CN, "m4a", "{sid}_{cname}_0.{ext}") == "a/abc123_room-1_0.m4a"
    assert stem_key("", SID, CN, "1111.m4a") == "abc123_room-1_stems/1111.m4a"
    for bad in ("../x.m4a", ".hidden.m4a", "a/b.m4a"):
        with pytest.raises(UsageError):
            stem_key("", SID, CN, bad)
    with pytest.raises(UsageError):
        mix_key("", SID, "..", "m4a", "{cname}.{ext}")


def _pl(uid: str, slices: list[int], *, endlist: bool = True) -> bytes:
    entries = [PlaylistEntry(slice_name(SID, CN, uid, t), 15.0, discontinuity=i == 0,
                             event_time_ms=t if i == 0 else None) for i, t in enumerate(slices)]
    return format_playlist(entries, endlist=endlist).encode()


def test_completeness_rules():
    t0 = 1_773_480_413_589
    times = [t0, t0 + 15_000]
    texts = {playlist_name(SID, CN, "1"): _pl("1", times), playlist_name(SID, CN, "2"): _pl("2", times, endlist=False)}
    objs = [ObjectInfo(k, len(v), "e") for k, v in texts.items()] + [
        ObjectInfo(slice_name(SID, CN, u, t), 1000, "e") for u in ("1", "2") for t in times[:1]]
    rec = group(objs + [ObjectInfo("notes.txt", 1)])[0]
    ok, why = assess(rec, texts)
    assert not ok
    assert any("uid_s_2__uid_e_audio.m3u8: no #EXT-X-ENDLIST" in w for w in why)
    assert sum("listed by" in w and "not in the store yet" in w for w in why) == 2
    # --lost-after: never while a playlist is still open, whatever the age
    assert assess(rec, texts, lost_before_ms=t0 + 10**9) == (ok, why)
    # every playlist ended: the missing slices are lost only once the last listed one is old enough
    texts2 = {k: _pl(k.split("_uid_s_")[1].split("__")[0], times) for k in texts}
    objs2 = [ObjectInfo(k, len(v), "e") for k, v in texts2.items()] + objs[2:]
    rec2 = group(objs2)[0]
    last = times[-1]   # the missing slices' own names carry the recording's end
    assert not assess(rec2, texts2, lost_before_ms=last)[0]
    lost_ok, lost_why = assess(rec2, texts2, lost_before_ms=last + 1)
    assert lost_ok and len(lost_why) == 1 and lost_why[0].startswith("2 listed slice(s) never arrived, given up as lost")
    assert slice_name(SID, CN, "1", times[1]) in lost_why[0]
    # the documented re-upload rule: the larger of the plain and the highest-index re-upload
    plain = ObjectInfo(playlist_name(SID, CN, "1"), 100)
    old = ObjectInfo(playlist_name(SID, CN, "1", tick=5, index=0), 500)
    new = ObjectInfo(playlist_name(SID, CN, "1", tick=6, index=1), 300)
    assert choose_versions([plain, old, new])[("1", None)] is new
    assert choose_versions([ObjectInfo(plain.key, 400), new])[("1", None)].key == plain.key


def _bak_pl(uid: str, slices: list[int], bak: int | None, *, endlist: bool) -> bytes:
    entries = [PlaylistEntry(slice_name(SID, CN, uid, t, bak=bak), 15.0) for t in slices]
    return format_playlist(entries, endlist=endlist).encode()


def test_a_playlist_a_failover_superseded_is_not_waited_for():
    """The server that died never writes its playlist's ENDLIST: once the uid's bak0 family
    has ended, the recording is complete (process waited for ever before); the newest family's
    ENDLIST is still required, as is every listed slice of both."""
    t0 = 1_773_480_413_589
    first, after = [t0, t0 + 15_000], [t0 + 100_000]

    def rec_of(orig_end: bool, bak_end: bool, extra: list[int] = ()):
        texts = {playlist_name(SID, CN, "1"): _bak_pl("1", first + list(extra), None, endlist=orig_end),
                 playlist_name(SID, CN, "1", bak=0): _bak_pl("1", after, 0, endlist=bak_end)}
        objs = [ObjectInfo(k, len(v), "e") for k, v in texts.items()] + \
            [ObjectInfo(slice_name(SID, CN, "1", t), 1000, "e") for t in first] + \
            [ObjectInfo(slice_name(SID, CN, "1", t, bak=0), 1000, "e") for t in after]
        return group(objs)[0], texts

    assert assess(*rec_of(False, True)) == (True, [])
    ok, why = assess(*rec_of(True, False))
    assert not ok and why == [f"{playlist_name(SID, CN, '1', bak=0)}: no #EXT-X-ENDLIST (still recording, or cut off)"]
    ok, why = assess(*rec_of(False, True, extra=[t0 + 30_000]))   # a listed slice of the old family is missing
    assert not ok and why == [f"{slice_name(SID, CN, '1', t0 + 30_000)}: listed by {playlist_name(SID, CN, '1')} "
                              "but not in the store yet"]
    rec, _ = rec_of(False, True)
    assert endlist_keys(rec.playlists) == [playlist_name(SID, CN, "1", bak=0)]
    # the failover is the server's: a user who had left before it died has no bak family, and
    # its playlist (written by the dead server) never ends either (found by a review session)
    rec, texts = rec_of(False, True)
    gone = playlist_name(SID, CN, "2")
    texts[gone] = _bak_pl("2", [t0 - 60_000], None, endlist=False)   # left 45 s before the server died
    rec = group(rec.playlists + rec.slices + [ObjectInfo(gone, len(texts[gone]), "e"),
                                              ObjectInfo(slice_name(SID, CN, "2", t0 - 60_000), 1000, "e")])[0]
    assert assess(rec, texts) == (True, [])
    assert endlist_keys(rec.playlists) == [playlist_name(SID, CN, "1", bak=0)]


def test_a_user_still_recorded_when_the_server_died_waits_for_its_bak_playlist():
    """Two users recorded until the server died; user 1's bak0 family is in the store, user 2's
    not yet (Agora uploads each user's files on its own). The recording is not complete yet
    (a mix then was published without user 2's second part, as total_success); once user 2's
    bak0 arrives it is; past --lost-after it is given up as lost."""
    t0 = 1_773_480_413_589
    died = t0 + 45_000

    def pl(uid, starts, bak, end):
        return playlist_name(SID, CN, uid, bak=bak), _bak_pl(uid, starts, bak, endlist=end)

    texts = dict([pl("1", [t0, t0 + 15_000, t0 + 30_000], None, False), pl("1", [died + 60_000], 0, True),
                  pl("2", [t0 + 8_000, t0 + 23_000], None, False)])   # user 2's last slice ends 7 s before
    slices = [slice_name(SID, CN, "1", t) for t in (t0, t0 + 15_000, t0 + 30_000)] + \
        [slice_name(SID, CN, "1", died + 60_000, bak=0)] + [slice_name(SID, CN, "2", t) for t in (t0 + 8_000, t0 + 23_000)]

    def rec(texts, slices):
        return group([ObjectInfo(k, len(v), "e") for k, v in texts.items()] + [ObjectInfo(k, 1000, "e") for k in slices])[0]

    ok, why = assess(rec(texts, slices), texts)
    assert not ok and why == ["uid 2: still being recorded when the server of its original playlist died "
                              "(it stops 7 s before the latest there); no bak0 playlist in the store yet"]
    ok, why = assess(rec(texts, slices), texts, lost_before_ms=died + 10 * 3600_000)
    assert ok and why == ["given up as lost: " + (
        "uid 2: still being recorded when the server of its original playlist died "
        "(it stops 7 s before the latest there); no bak0 playlist in the store yet")]
    k, v = pl("2", [died + 61_000], 0, True)
    texts[k] = v
    assert assess(rec(texts, slices + [slice_name(SID, CN, "2", died + 61_000, bak=0)]), texts) == (True, [])


def test_manifest_is_current_only_for_the_same_inputs_and_options():
    objs = [ObjectInfo(playlist_name(SID, CN, "1"), 10, "a"), ObjectInfo(slice_name(SID, CN, "1", 1_773_480_413_589),
                                                                         99, "b")]
    rec = group(objs)[0]
    m = {"inputs_digest": rec.inputs_digest(), "options_digest": "o"}
    assert is_current(m, rec, "o")[0]
    assert not is_current(m, rec, "p")[0]
    assert not is_current(m, group(objs + [ObjectInfo(slice_name(SID, CN, "1", 1_773_480_428_589), 5, "c")])[0],
                          "o")[0]
    assert not is_current(None, rec, "o")[0]


def test_local_store_refuses_escaping_keys_and_cleans_up(tmp_path):
    s = LocalStore(tmp_path / "root")
    (tmp_path / "root").mkdir()
    for bad in ("../x", "a/../../x", "/etc/passwd", "a//b"):
        with pytest.raises(MediatoolsError):
            s.put_bytes(b"x", bad, "text/plain")
    s.put_bytes(b"hello", "a/b/c.txt", "text/plain")
    assert [o.key for o in s.list("a/")] == ["a/b/c.txt"] and s.get("a/b/c.txt") == b"hello"
    s.delete("a/b/c.txt")
    assert list((tmp_path / "root").iterdir()) == []


def test_local_folder_to_local_folder_with_stems(make_recording, tmp_path):
    folder, truth = make_recording("process_local_bak", users=2, duration_s=30.0, seed=31, gaps=0,
                                   faults=[Fault("bak_gap", "1")])
    dest = tmp_path / "out"
    o = ProcessOptions(all=True, workers=0, stems=True, dest=str(dest))
    [info] = find_recordings(str(folder), o)
    assert info.complete and info.users == 2 and info.sid == truth["sid"]
    rep = process(str(folder), o)
    assert rep.ok and rep.counts["processed"] == 1
    r = rep.recordings[0]
    names = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    base = f"{truth['sid']}_{truth['cname']}"
    assert names == sorted([f"{base}.mediatools.json", f"{base}_0.m4a"] +
                           [f"{base}_stems/{u['uid']}.m4a" for u in truth["users"]])
    assert r.verify["passed"] and stray_temp_files(dest) == []
    # stems are on the mix's clock: each lasts the session and each user's runs sit at their
    # places (copied AAC: within half a frame), not from the user's first run (found by a review)
    from mediatools.media.tones import decode_pcm, onset_ms
    for u in truth["users"]:
        x = decode_pcm(dest / f"{base}_stems/{u['uid']}.m4a", 48000)
        assert abs(len(x) / 48.0 - truth["span_ms"]) <= 1024 / 48 / 2 + 0.1, (u["uid"], len(x) / 48.0)
        for run in u["runs"]:
            a = max(0, int((run["onset_offset_ms"] - 300) * 48))
            got = onset_ms(x[a:a + 48000], 48000, u["freq"], level=0.25) + a / 48.0
            assert abs(got - run["onset_offset_ms"]) <= 1024 / 48 / 2 + 2.0, (u["uid"], got, run)
    again = process_recording(str(folder), truth["sid"], o)   # idempotent: the second call is a skip
    assert again.status == "skipped" and again.outputs == r.outputs


def test_a_local_recording_in_a_sub_folder_is_processed_in_place(make_recording, tmp_path):
    """Agora's fileNamePrefix puts a recording in folders (``a/b/``): a local SOURCE above them
    finds it there, and the results land beside it, as in a bucket."""
    import shutil
    folder, truth = make_recording("process_local_sub", users=2, duration_s=20.0, seed=33, gaps=0)
    src = tmp_path / "src"
    shutil.copytree(folder, src / "a" / "b")
    o = ProcessOptions(all=True, workers=0, verify=False)
    rep = process(str(src), o)
    assert rep.ok and rep.counts["processed"] == 1, rep.recordings[0].error
    base = f"{truth['sid']}_{truth['cname']}"
    assert (src / "a" / "b" / f"{base}_0.m4a").is_file() and (src / "a" / "b" / f"{base}.mediatools.json").is_file()
    assert process_recording(str(src), truth["sid"], o).status == "skipped"
    forced = process_recording(str(src), truth["sid"], ProcessOptions(all=True, workers=0, verify=False, force=True))
    assert forced.status == "processed" and forced.reasons[0].startswith("--force: processed again"), forced.reasons


def test_a_run_that_published_meanwhile_is_not_foreign(tmp_path):
    """Two runs of one new recording (a second instance, a job released while its task still
    ran): the second read no manifest when it started, the first then published, and the second
    failed for good on "exists and no mediatools manifest claims it" (found by a review session).
    The manifest is read again before anything is called foreign."""
    import json as _json

    from mediatools.storage.publish import MANIFEST_SCHEMA, ForeignObject, check_foreign
    (tmp_path / "root").mkdir()
    s = LocalStore(tmp_path / "root")
    s.put_bytes(b"mix", "r/x_0.m4a", "audio/mp4")
    with pytest.raises(ForeignObject):
        check_foreign(s, ["r/x_0.m4a"], set(), "r/x.mediatools.json")        # nobody claims it
    s.put_bytes(_json.dumps({"schema": MANIFEST_SCHEMA, "outputs": [{"key": "r/x_0.m4a"}]}).encode(),
                "r/x.mediatools.json", "application/json")
    check_foreign(s, ["r/x_0.m4a"], set(), "r/x.mediatools.json")            # the other run's: ours
    with pytest.raises(ForeignObject):
        check_foreign(s, ["r/x_0.m4a"], set())                               # (without the re-read)


def test_a_refused_key_is_reported_not_silently_left_out(caplog):
    """process said "0 recordings" with exit 0 for keys under a '//' (found by a review session)."""
    import logging
    bad = "a//" + playlist_name(SID, CN, "1")
    with caplog.at_level(logging.WARNING, logger="mediatools.pipeline.completeness"):
        assert group([ObjectInfo(bad, 5)]) == []
    assert f"{bad}: refused (empty path segment)" in caplog.text


def test_an_output_replaced_or_deleted_behind_its_manifest(make_recording, tmp_path):
    """A manifest only vouches for the objects it published: a mix deleted since is published
    again (a rerun used to skip for ever), and one another writer replaced (Agora's own postpone
    mix writes the same name) is theirs: left alone, as any foreign object, unless --force."""
    import shutil
    folder, truth = make_recording("process_local_sub", users=2, duration_s=20.0, seed=33, gaps=0)
    src = tmp_path / "src"
    shutil.copytree(folder, src)
    o = ProcessOptions(all=True, workers=0, verify=False)
    assert process(str(src), o).counts["processed"] == 1
    mix = src / f"{truth['sid']}_{truth['cname']}_0.m4a"
    assert process(str(src), o).counts["skipped"] == 1
    mix.unlink()
    again = process(str(src), o).recordings[0]
    assert again.status == "processed" and "0.m4a gone" in again.reasons[0] and mix.is_file()
    import os as _os
    st = mix.stat()
    _os.utime(mix, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))   # touched, or copied without -p: the same bytes
    assert process(str(src), o).counts["skipped"] == 1
    mix.write_bytes(b"Agora's own postpone mix")
    theirs = process(str(src), o).recordings[0]
    assert theirs.status == "failed" and theirs.error["code"] == "foreign_object", theirs.error
    assert mix.read_bytes() == b"Agora's own postpone mix"
    forced = process(str(src), ProcessOptions(all=True, workers=0, verify=False, force=True)).recordings[0]
    assert forced.status == "processed" and mix.read_bytes() != b"Agora's own postpone mix"


def test_named_users_must_have_a_playlist_and_what_never_comes_is_given_up_after_lost_after():
    """A 32 named two users' playlists while one was still in Agora's backup: nothing asked for
    it, and the mix went out without that user (found by a review session). An unreadable
    playlist, or slices with no playlist, kept a recording incomplete even past --lost-after."""
    t0 = 1_773_480_413_589
    times = [t0, t0 + 15_000]
    texts = {playlist_name(SID, CN, "1"): _pl("1", times)}
    objs = [ObjectInfo(k, len(v), "e") for k, v in texts.items()] + [
        ObjectInfo(slice_name(SID, CN, "1", t), 1000, "e") for t in times]
    rec = group(objs)[0]
    assert assess(rec, texts) == (True, [])
    ok, why = assess(rec, texts, expected_uids=["1", "2"])
    assert not ok and why == ["uid 2: named by Agora's notification, no playlist in the store yet"]
    assert not assess(rec, texts, expected_uids=["2"], lost_before_ms=times[-1])[0]    # not old enough
    ok, why = assess(rec, texts, expected_uids=["2"], lost_before_ms=times[-1] + 1)
    assert ok and why == ["given up as lost: uid 2: named by Agora's notification, no playlist in the store yet"]
    # uid 3: slices but no playlist; uid 1's playlist unreadable: incomplete, then given up as lost
    objs3 = objs + [ObjectInfo(slice_name(SID, CN, "3", t0), 1000, "e")]
    rec3 = group(objs3)[0]
    bad = {playlist_name(SID, CN, "1"): b"\x00garbage"}
    ok, why = assess(rec3, bad)
    assert not ok and len(why) == 2 and why[0] == "uid 3: slices but no playlist yet"
    ok, why = assess(rec3, bad, lost_before_ms=times[-1] + 1)
    assert ok and len(why) == 2 and all(w.startswith("given up as lost: ") for w in why)
    # with a playlist still open, nothing is given up
    open_ = {playlist_name(SID, CN, "1"): _pl("1", times, endlist=False)}
    assert not assess(rec3, open_, lost_before_ms=times[-1] + 10**9)[0]


def test_entries_the_loader_skips_are_not_waited_for():
    """What inspect and mix skip (and report) can never arrive: an entry cut off after its
    EXTINF, a name that is no slice name, another track's or another sid's slice. process
    waited for them for ever ("incomplete"); a URL entry is percent-decoded, so it is found."""
    from mediatools.agora.playlist import entry_name
    t0 = 1_773_480_413_589
    times = [t0, t0 + 15_000]
    pl = playlist_name(SID, CN, "1")
    mine = [slice_name(SID, CN, "1", t) for t in times]
    entries = [PlaylistEntry(n, 15.0) for n in mine] + [
        PlaylistEntry(slice_name("other99", CN, "1", t0), 15.0),       # another sid's slice
        PlaylistEntry(slice_name(SID, CN, "2", t0), 15.0),             # another user's
        PlaylistEntry("notes.ts", 15.0),                               # no slice name
        PlaylistEntry("", 15.0)]                                       # cut off after its EXTINF
    texts = {pl: format_playlist(entries, endlist=True).encode()}
    objs = [ObjectInfo(pl, len(texts[pl]), "e")] + [ObjectInfo(n, 1000, "e") for n in mine]
    assert assess(group(objs)[0], texts) == (True, [])
    # a listed slice of its own that is missing is still waited for
    assert not assess(group(objs[:-1])[0], texts)[0]
    spaced = slice_name(SID, "room 1", "1", t0)
    assert entry_name("https://b.s3.example.com/p/" + spaced.replace(" ", "%20") + "?X-Amz=1") == spaced
    assert entry_name("room%201_x.ts") == "room%201_x.ts"    # a bare name is never unquoted (cname may hold %)


def test_a_local_destination_that_cannot_be_written_is_one_line_not_internal(make_recording, tmp_path):
    """--to a path that is a file (or cannot be created): the recording fails with "cannot
    write" naming the path, not "internal error: FileExistsError"."""
    folder, _ = make_recording("dest_not_a_dir", users=2, duration_s=20.0, seed=4, gaps=0)
    blocker = tmp_path / "notadir"
    blocker.write_text("")
    rep = process(str(folder), ProcessOptions(all=True, workers=0, verify=False, dest=str(blocker), retries=1))
    (r,) = rep.recordings
    assert r.status == "failed", r
    assert r.error["code"] == "store_write", r.error
    assert "cannot write" in r.error["message"] and str(blocker) in r.error["message"], r.error
    assert r.attempts == 1 and rep.to_dict()["recordings"][0]["dest"] == str(blocker)   # not mixed again
    gone = process(str(folder), ProcessOptions(sids=["0" * 32], workers=0)).to_dict()
    assert gone["recordings"][0]["status"] == "failed" and gone["recordings"][0]["dest"] is None, gone


def test_a_selection_flag_replaces_the_configs(make_recording, tmp_path):
    """--all on the command line kept a config's sid list, so only those were processed
    (found by a review session); --sid replaces a config's all = true."""
    from tests.conftest import run_cli
    folder, truth = make_recording("select_flag", users=1, duration_s=5.0, seed=2, gaps=0)
    cfg = tmp_path / "p.toml"
    cfg.write_text(f'sid = ["{"0" * 32}"]\nverify = false\nworkers = 0\n')
    r = run_cli("process", str(folder), "--config", str(cfg), "--all", "--to", str(tmp_path / "a"), "--json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and [x["sid"] for x in doc["recordings"]] == [truth["sid"]], r.stderr
    cfg.write_text("all = true\nverify = false\nworkers = 0\n")
    r = run_cli("process", str(folder), "--config", str(cfg), "--sid", "0" * 32, "--to", str(tmp_path / "b"), "--json")
    assert [x["sid"] for x in json.loads(r.stdout)["recordings"]] == ["0" * 32], r.stdout


def test_a_password_in_an_endpoint_url_never_reaches_an_error(tmp_path):
    """botocore's "Could not connect to the endpoint URL" named --endpoint-url whole, password
    included (found by a review session)."""
    import os

    from tests.conftest import run_cli
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    r = run_cli("process", "s3://bkt/x/", "--all", "--endpoint-url", "http://admin:UrlPassLeak77@127.0.0.1:1",
                "--workers", "0", "--json", env=env)
    assert r.returncode == 1 and "127.0.0.1:1" in r.stdout + r.stderr
    assert "UrlPassLeak77" not in r.stdout + r.stderr and "admin:***@127.0.0.1:1" in r.stdout + r.stderr
    e = MediatoolsError("cannot reach https://u:p@h/x, https://:p2@h and ftp://h/y", file="s3://b/k@1")
    assert str(e) == "s3://b/k@1: cannot reach https://u:***@h/x, https://:***@h and ftp://h/y"
    assert str(MediatoolsError("x", file="postgresql+psycopg://mt:***@h/x")) == "postgresql+psycopg://mt:***@h/x: x"
