"""Fingerprint what ``mediatools demo`` makes (merge and mix outputs), to show a refactor
changed no byte of them.

    python scripts/same_outputs.py --save before.json      # on the old tree
    python scripts/same_outputs.py --check before.json     # on the new tree: exit 1 on any difference

m4a/aac/mp3 files are compared byte for byte. Ogg files carry a random stream serial, so
they are compared packet by packet (ffmpeg's framemd5 of a stream copy). merge.json is
compared without its ``outdir`` (the folder differs from run to run).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def fingerprint(root: Path) -> dict[str, str]:
    try:
        from mediatools.media.ffmpeg import base_cmd
    except ImportError:  # the tree before the layout issue
        from mediatools.ffmpeg import base_cmd  # type: ignore[no-redef]
    out = {}
    for p in sorted([root / "call.m4a", *sorted((root / "merged").iterdir())]):
        if p.suffix in (".ogg", ".opus"):
            fm = subprocess.run(base_cmd() + ["-i", str(p), "-map", "0:a:0", "-c", "copy", "-f", "framemd5", "-"],
                                capture_output=True, check=True).stdout
            out[p.name] = "packets:" + hashlib.md5(fm).hexdigest()
        elif p.suffix == ".json":
            doc = json.loads(p.read_text())
            doc.pop("outdir", None)
            out[p.name] = "json:" + hashlib.md5(json.dumps(doc, sort_keys=True).encode()).hexdigest()
        else:
            out[p.name] = "bytes:" + hashlib.md5(p.read_bytes()).hexdigest()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", type=Path)
    g.add_argument("--check", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as td:
        subprocess.run([sys.executable, "-m", "mediatools", "demo", "-o", td], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        got = fingerprint(Path(td))
    if args.save:
        args.save.write_text(json.dumps(got, indent=1))
        print(f"saved {len(got)} fingerprints to {args.save}")
        return 0
    want = json.loads(args.check.read_text())
    diff = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
    for k in diff:
        print(f"DIFFERENT  {k}: {want.get(k)} -> {got.get(k)}")
    print("identical" if not diff else f"{len(diff)} of {len(want)} differ")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
