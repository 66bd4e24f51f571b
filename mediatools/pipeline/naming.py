"""Names of published outputs: Agora's postpone-mix name by default, always one bare file name.

``<sid>_<cname>_0.<ext>`` (the mix), ``<sid>_<cname>_stems/<uid>.<ext>`` (per-user stems)
and ``<sid>_<cname>.mediatools.json`` (the manifest; its presence means "published").
The sid follows Agora's grammar (letters and digits) and cname comes from a parsed
Agora name (no ``/``), so no recording can name a key outside the destination prefix.
"""
from __future__ import annotations

from ..agora.names import MANIFEST_SUFFIX, PENDING_SUFFIX, stems_folder
from ..errors import UsageError
from ..storage.selection import refusal


def _bare(name: str, what: str) -> str:
    why = refusal(name)
    if why or "/" in name or name.startswith("."):
        raise UsageError(f"{what} {name!r} is not a plain file name ({why or 'folder or hidden name'})")
    return name


def check_template(template: str) -> str:
    """A name template may use {sid}, {cname}, {ext} as they are (no attribute, index, conversion
    or format spec: ``{cname.__class__}`` and ``{sid:>40}`` got through); it must give one plain
    file name, and hold {sid}: without it two recordings publish under one name."""
    import string
    try:
        fields = [(f, conv, spec) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
        sample = template.format(sid="sid", cname="cname", ext="m4a")
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise UsageError(f"--name-template {template!r}: only {{sid}}, {{cname}} and {{ext}} may be used "
                         f"({type(exc).__name__}: {exc})") from None
    odd = ["{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
           for f, conv, spec in fields if f not in ("sid", "cname", "ext") or conv or spec]
    if odd:
        raise UsageError(f"--name-template {template!r}: only {{sid}}, {{cname}} and {{ext}} may be used, "
                         f"as they are, not {odd[0]}")
    _bare(sample, "--name-template gives")
    if "{ext}" not in template:
        raise UsageError(f"--name-template {template!r} must end in .{{ext}} (the format decides the suffix)")
    if "{sid}" not in template:
        raise UsageError(f"--name-template {template!r} must hold {{sid}}: each recording needs a name of its own")
    return template


def base_name(sid: str, cname: str) -> str:
    return _bare(f"{sid}_{cname}", "recording name")


def mix_key(prefix: str, sid: str, cname: str, ext: str, template: str) -> str:
    return prefix + _bare(template.format(sid=sid, cname=cname, ext=ext), "output name")


def stem_key(prefix: str, sid: str, cname: str, filename: str) -> str:
    return f"{prefix}{_bare(stems_folder(sid, cname), 'recording name')}/{_bare(filename, 'stem name')}"


def activity_key(prefix: str, sid: str, cname: str, relname: str) -> str:
    """An activity export (``activity.json``, ``labels/<uid>.txt``, …) under ``<sid>_<cname>_activity/``."""
    parts = [_bare(p, "activity export name") for p in relname.split("/")]
    return f"{prefix}{base_name(sid, cname)}_activity/" + "/".join(parts)


def report_key(prefix: str, sid: str, cname: str) -> str:
    """The HTML report beside the mix: ``<sid>_<cname>.mediatools.report.html`` (a mediatools result name)."""
    return prefix + base_name(sid, cname) + ".mediatools.report.html"


def manifest_key(prefix: str, sid: str, cname: str) -> str:
    """Where the manifest of recording (sid, cname) lives under ``prefix`` (a folder: "" or ending in "/")."""
    return prefix + base_name(sid, cname) + MANIFEST_SUFFIX


def pending_key(prefix: str, sid: str, cname: str) -> str:
    return prefix + base_name(sid, cname) + PENDING_SUFFIX


def is_manifest_name(name: str) -> bool:
    return name.endswith(MANIFEST_SUFFIX)
