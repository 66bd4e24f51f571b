"""The README's promises, run: the "Library use" example, and the layout section against the tree."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

from s3support import CREDS, s3_client

from mediatools.synth import plan, synthesize

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    nxt = README.find("\n## ", start + 3)
    return README[start: nxt if nxt > 0 else len(README)]


def test_library_example_runs_as_written(s3_server, tmp_path):
    """The example, unchanged, against moto: AWS_ENDPOINT_URL points boto3 there, as it would
    any S3-compatible store; the recording is a synthesized 3-user call under that sid."""
    code = re.search(r"```python\n(.*?)```", _section("Library use"), re.S).group(1)
    spec = plan(3, 24.0, seed=5, gaps=1)
    synthesize(spec, tmp_path / "made", measure_onsets=False)
    c = s3_client(s3_server.url)
    c.create_bucket(Bucket="my-bucket")
    for f in sorted((tmp_path / "made").iterdir()):
        if f.suffix in (".ts", ".m3u8"):
            c.upload_file(str(f), "my-bucket", f"agora/app1/{f.name}")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, **CREDS, "AWS_ENDPOINT_URL": s3_server.url}
    p = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""                            # the library prints nothing
    lines = p.stdout.strip().splitlines()
    assert sorted(ln.split()[0] for ln in lines[:3]) == sorted(u.uid for u in spec.users)
    assert (work / "call.m4a").is_file() and (work / "stems" / "merge.json").is_file()
    codes = ast.literal_eval(re.search(r"(\[[^\[\]]*\])$", lines[-1]).group(1))
    assert len(codes) == len(set(codes))             # merge and mix both ran: nothing reported twice


def _tree_in_readme() -> set[str]:
    """Paths below mediatools/ named by the README's tree (indentation gives the package)."""
    block = re.search(r"```text\n(.*?)```", _section("Layout"), re.S).group(1)
    names, pkg = set(), ""
    for line in block.splitlines()[1:]:
        indent = len(line) - len(line.lstrip())
        name = line.split()[0] if line.strip() else ""
        if not name:
            continue
        if indent == 2:
            pkg = name if name.endswith("/") else ""
            names.add(name)
        else:
            names.add(pkg + name)
    return names


def test_layout_section_matches_the_tree():
    """Every package and module the README's layout names exists, and every package and
    module in the tree is named there."""
    listed = _tree_in_readme()
    actual = set()
    for p in (ROOT / "mediatools").rglob("*.py"):
        rel = p.relative_to(ROOT / "mediatools")
        if rel.name == "__init__.py":
            actual.add((rel.parent.as_posix() + "/") if rel.parent.as_posix() != "." else "")
        else:
            actual.add((rel.parent.as_posix() + "/" if rel.parent.as_posix() != "." else "") + rel.name)
    actual.discard("")
    actual.add("__init__.py")
    assert listed == actual, (sorted(listed - actual), sorted(actual - listed))
