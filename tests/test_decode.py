"""The in-process decoder (mediatools.media.decode): the same samples as ffmpeg's concat
protocol and atrim by sample count, bad packets skipped, unopenable streams named, lazy."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from mediatools.media.decode import LAYOUTS, DecodeError, Decoder, SliceChain
from mediatools.media.ffmpeg import base_cmd, concat_url


@pytest.fixture(scope="session")
def rec(make_recording):
    """AAC 48k mono, Opus stereo, AAC 16k mono, AAC 44.1k stereo; 4 s slices, so runs span several."""
    return make_recording("decode_mixed", users=4, duration_s=24.0, seed=3, codec="mixed", slice_s=4.0,
                          sample_rates=[48000, 48000, 16000, 44100], channels=[1, 2, 1, 2])


def _runs(folder: Path, truth: dict) -> list[tuple[dict, list[Path]]]:
    return [(u, [folder / s for s in r["slices"]]) for u in truth["users"] for r in u["runs"] if len(r["slices"]) > 1]


def _concat_protocol(paths: list[Path], rate: int, ch: int) -> np.ndarray:
    """What ``ffmpeg -i concat:... -af aresample -ac ch -f f32le`` hands over, in-process."""
    import av
    with av.open(concat_url(paths), format="mpegts") as c:
        r = av.AudioResampler(format="flt", layout=LAYOUTS[ch], rate=rate)
        out = [g.to_ndarray().reshape(-1, ch) for p in c.demux(c.streams.audio[0]) for f in p.decode()
               for g in r.resample(f)]
        out += [g.to_ndarray().reshape(-1, ch) for g in r.resample(None)]
    return np.concatenate(out)


def _all(dec: Decoder, n: int = 48000) -> np.ndarray:
    blocks = []
    while True:
        x = dec.read(n)
        blocks.append(x)
        if len(x) < n:
            return np.concatenate(blocks)


@pytest.mark.parametrize("rate", [48000, 16000, 44100])
def test_same_samples_as_the_concat_protocol(rec, rate):
    folder, truth = rec
    runs = _runs(folder, truth)
    assert len({u["uid"] for u, _ in runs}) == 4
    for u, paths in runs:
        ch = u["channels"]
        want = _concat_protocol(paths, rate, ch)
        with Decoder(paths, rate, ch) as dec:
            got = _all(dec, 10007)
        assert got.dtype == np.float32 and got.shape == want.shape, (u["uid"], got.shape, want.shape)
        assert np.array_equal(got, want), u["uid"]


def test_trim_is_by_sample_count_like_atrim(rec):
    folder, truth = rec
    u, paths = _runs(folder, truth)[0]
    full = _all(Decoder(paths, 48000, 1))
    for skip, length in [(0, 1000), (37, 48000 * 3 + 5), (4096, len(full)), (100, len(full) + 50_000)]:
        got = _all(Decoder(paths, 48000, 1, skip=skip, length=length), 4800)
        assert np.array_equal(got, full[skip:length]), (skip, length)   # a longer plan: the run's own end


def test_bad_packets_are_skipped_and_decoding_goes_on(rec, tmp_path, capfd):
    folder, truth = rec
    u, paths = next((u, p) for u, p in _runs(folder, truth) if u["codec"] == "aac" and len(p) >= 3)
    copies = [Path(shutil.copy(p, tmp_path / p.name)) for p in paths]
    clean = _all(Decoder(copies, 48000, u["channels"]))
    b = bytearray(copies[1].read_bytes())
    rng = np.random.default_rng(1)
    for k in rng.choice(len(b) // 188, 40, replace=False):   # scramble payloads, keep the TS headers
        b[k * 188 + 20:k * 188 + 120] = rng.integers(0, 256, 100, dtype=np.uint8).tobytes()
    copies[1].write_bytes(bytes(b))
    with Decoder(copies, 48000, u["channels"]) as dec:
        got = _all(dec)
        assert dec.bad_packets > 0
    assert capfd.readouterr().err == ""                       # FFmpeg's log does not reach stderr
    assert len(got) < len(clean)
    # the ffmpeg CLI drops the bad packets too (it logs each and goes on). Known difference: where
    # the decoder fails in avcodec_receive_frame() with an error other than "invalid data"
    # (AVERROR(EPERM) from PyAV 18's FFmpeg 8.1 on one of these packets), PyAV's decode()
    # raises and the CLI (5.1 and 9) still has a frame: one 1024-sample frame fewer here.
    cli = subprocess.run(base_cmd() + ["-i", concat_url(copies), "-map", "0:a:0", "-ac", str(u["channels"]),
                                       "-ar", "48000", "-f", "f32le", "-"], capture_output=True)
    assert cli.returncode == 0 and b"Invalid data" in cli.stderr
    want = np.frombuffer(cli.stdout, np.float32).reshape(-1, u["channels"])
    assert 0 <= len(want) - len(got) <= 1024, (len(want), len(got))
    assert np.allclose(got[-96000:], want[-96000:], atol=1e-5)    # after the bad slice: the same audio


@pytest.mark.parametrize("codec", ["aac", "opus"])
def test_audio_lost_inside_a_damaged_slice_is_silence_in_place(rec, tmp_path, codec):
    """40 % of a slice's packets zeroed in its middle: named in ``holes``, the audio they held is
    silence of its length where it was, so the run keeps its length and everything after the
    damage is the clean run's samples at the clean run's places. Not named, it closes up."""
    folder, truth = rec
    u, paths = next((u, p) for u, p in _runs(folder, truth) if u["codec"] == codec and len(p) >= 3)
    copies = [Path(shutil.copy(p, tmp_path / p.name)) for p in paths]
    ch = u["channels"]
    clean = _all(Decoder(copies, 48000, ch))
    b = bytearray(copies[1].read_bytes())
    n = len(b) // 188
    lo, hi = n * 3 // 10 * 188, n * 7 // 10 * 188
    b[lo:hi] = bytes(hi - lo)
    copies[1].write_bytes(bytes(b))
    closed = _all(Decoder(copies, 48000, ch))
    with Decoder(copies, 48000, ch, holes=[copies[1]]) as dec:
        got = _all(dec)
        filled = dec.lost_s
    assert len(closed) < len(clean) - 48000      # more than a second lost: without holes it closes up
    assert filled > 0 and len(got) == len(clean), (filled, len(got), len(clean))
    silent = np.flatnonzero(np.abs(got).max(axis=1) == 0)
    start = len(Decoder(copies[:1], 48000, ch).read(10**8))   # where the damaged slice begins
    assert len(silent) and start < silent[0] and silent[-1] < start + 4 * 48000, (start, silent[:1], silent[-1:])
    # past the frames whose decoder state the damage spoiled (Opus: ~150 ms to converge), and but
    # the stream's last frame: the clean run's samples, sample for sample
    after = silent[-1] + 1 + 9600
    assert np.allclose(got[after:-1024], clean[after:-1024], atol=1e-4), codec
    assert np.array_equal(got[:start], clean[:start])


def test_unopenable_streams_name_the_first_slice(rec, tmp_path):
    folder, truth = rec
    _, paths = _runs(folder, truth)[0]
    junk = tmp_path / "junk.ts"
    junk.write_bytes(bytes([0x47, 0x1F, 0xFF, 0x10]) + bytes(184))   # TS null packets: no programme at all
    with pytest.raises(DecodeError) as e:
        Decoder([junk], 48000, 1)
    assert e.value.file == "junk.ts" and e.value.code == "decode_failed"
    gone = tmp_path / "gone.ts"
    with pytest.raises(DecodeError) as e:
        Decoder([paths[0], gone], 48000, 1)
    assert e.value.file == paths[0].name and "gone.ts: No such file or directory" in e.value.message


def test_decoding_is_lazy(rec):
    """Only what read() asks for is read and decoded: memory is flat in the run's length."""
    folder, truth = rec
    _, paths = max(_runs(folder, truth), key=lambda r: len(r[1]))
    dec = Decoder(paths, 48000, 1)
    dec.read(4800)
    chain: SliceChain = dec._chain
    assert chain.pos < chain.size / 2, (chain.pos, chain.size)
    dec.close()
    assert chain._fh is None


def test_slice_chain_is_the_files_back_to_back(rec):
    folder, truth = rec
    _, paths = _runs(folder, truth)[0]
    whole = b"".join(p.read_bytes() for p in paths)
    c = SliceChain(paths)
    got = bytearray()
    while chunk := c.read(7001):
        got += chunk
    assert bytes(got) == whole and c.tell() == len(whole)
    c.seek(-500, 2)
    assert c.read(10_000) == whole[-500:]
    c.seek(len(paths[0].read_bytes()) - 3)
    assert c.read(3) + c.read(3) == whole[len(paths[0].read_bytes()) - 3:][:6]
    c.close()


def test_mix_of_a_run_that_cannot_be_decoded_goes_on_in_tolerant_mode(rec, tmp_path):
    """Every slice of a run garbage: --strict stops naming the slice; tolerant mode mixes the
    run as silence, reports the problem and writes the mix (the behaviour of the CLI decoders)."""
    folder, truth = rec
    broken = tmp_path / "rec"
    shutil.copytree(folder, broken)
    u = truth["users"][1]
    first = broken / u["runs"][0]["slices"][0]
    for name in u["runs"][0]["slices"]:
        (broken / name).write_bytes((bytes([0x47, 0x1F, 0xFF, 0x10]) + bytes(184)) * 50)
    strict = run_cli("mix", str(broken), "-o", str(tmp_path / "s.wav"), "--strict")
    assert strict.returncode == 1 and first.name in strict.stderr, strict.stderr
    assert not (tmp_path / "s.wav").exists()
    proc = run_cli("mix", str(broken), "-o", str(tmp_path / "m.wav"))
    assert proc.returncode == 0, proc.stderr
    assert first.name in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "m.wav").stat().st_size > 0


def test_a_slice_whose_packets_are_all_noise_is_unreadable_not_a_format_change(rec, tmp_path):
    """TS headers intact (PAT, PMT, the first packet), every payload after them noise: FFmpeg
    finds an AAC stream of 0 Hz and 0 channels. That is an unreadable slice, reported by name,
    not a format change every stage would divide by (it ended in an internal error)."""
    folder, truth = rec
    broken = tmp_path / "rec"
    shutil.copytree(folder, broken)
    u = truth["users"][0]
    first = broken / u["runs"][0]["slices"][0]
    b = bytearray(first.read_bytes())
    for i in range(188 * 3, len(b)):
        if i % 188 > 4:
            b[i] = 0x5A
    first.write_bytes(bytes(b))
    proc = run_cli("mix", str(broken), "-o", str(tmp_path / "m.wav"))
    assert proc.returncode == 0, proc.stderr
    # found when loading (its frames cannot be counted, and decoding it gives no audio): skipped
    assert f"{first.name}: holds no intact audio frame (skipped)" in proc.stderr
    assert "internal error" not in proc.stderr, proc.stderr
    assert (tmp_path / "m.wav").stat().st_size > 0
    strict = run_cli("mix", str(broken), "-o", str(tmp_path / "s.wav"), "--strict")
    assert strict.returncode == 1
    assert strict.stderr.strip().splitlines()[-1] == (
        f"mediatools: error: {first.name}: holds no intact audio frame"), strict.stderr
    assert not (tmp_path / "s.wav").exists()


def test_importing_mediatools_does_not_load_av():
    code = ("import sys, mediatools, mediatools.cli, mediatools.mix.render, mediatools.activity.detect, "
            "mediatools.verify.features, mediatools.media.decode; print(json.dumps('av' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False


def test_an_interrupt_swallowed_by_a_read_callback_still_stops_the_decoder(rec):
    """Ctrl-C landing inside PyAV's read callback is "ignored" by PyAV (the read just fails);
    the CLI's handler notes it, and the decoder raises it again at the next packet, quietly.
    In a subprocess: the noted interrupt lasts for the life of the process."""
    import subprocess
    import sys
    folder, truth = rec
    _, paths = max(_runs(folder, truth), key=lambda r: len(r[1]))
    code = (
        "import sys\n"
        "from mediatools import interrupts\n"
        "from mediatools.media.decode import Decoder, SliceChain\n"
        "interrupts.install()\n"
        "real = SliceChain.read\n"
        "def read(self, n=-1):\n"
        "    if self.pos > 64 * 1024:\n"
        "        interrupts.note()\n"
        "        raise KeyboardInterrupt   # what the signal handler does, here inside the callback\n"
        "    return real(self, n)\n"
        "SliceChain.read = read\n"
        f"dec = Decoder({[str(p) for p in paths]!r}, 48000, 1)\n"
        "try:\n"
        "    while len(dec.read(48000)):\n"
        "        pass\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted'); sys.exit(0)\n"
        "print('decoded to the end'); sys.exit(1)\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == "interrupted", (p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr


def test_a_closed_decoder_lets_go_of_ffmpeg_state(rec):
    """A run read to its length leaves the decoder's generators suspended; the mix keeps every
    finished run, so a closed decoder must hold no codec context, frame or packet (a 3-hour mix
    grew by ~1 MB per finished run before)."""
    import gc

    import av

    def alive() -> int:
        gc.collect()
        return sum(isinstance(o, (av.codec.context.CodecContext, av.frame.Frame, av.packet.Packet))
                   for o in gc.get_objects())

    folder, truth = rec
    before = alive()
    kept = []
    for u, paths in _runs(folder, truth):
        dec = Decoder(paths, 48000, u["channels"], length=48000)   # stops short of the stream's end
        assert len(_all(dec, 12000)) == 48000
        dec.close()
        kept.append(dec)
    assert len(kept) >= 4
    assert alive() == before
    assert len(kept[0].read(100)) == 0     # reading a closed decoder gives nothing, not an error
