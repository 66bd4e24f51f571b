"""Shared benchmark plumbing: run a command, sample the whole process tree's memory
(proportional set size, so a binary shared by several processes counts once), report
wall time, CPU seconds (user+sys of the tree: as reaped, or as sampled where more) and the peak."""
from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Measure:
    name: str
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    root_cpu_s: float = 0.0    # the command's own process, without its children (last sample)

    def row(self, ref: "Measure | None" = None) -> str:
        ratio = f"  ×{self.wall_s / ref.wall_s:5.2f} wall  ×{self.cpu_s / ref.cpu_s:5.2f} cpu" if ref else ""
        return f"{self.name:<34} wall {self.wall_s:7.2f} s  cpu {self.cpu_s:7.2f} s  peak {self.peak_rss_mb:7.1f} MB{ratio}"


def _tree_rss_kb(root: int, cpu: dict[int, float] | None = None) -> int:
    """The tree's PSS now; ``cpu`` gets each process's own user + system seconds so far."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    own: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            ppid = int(fields[1])
            own[int(d.name)] = (int(fields[11]) + int(fields[12])) / tick
            # PSS: shared pages (the same ffmpeg binary in many processes) counted once
            for line in (d / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    rss[int(d.name)] = int(line.split()[1])
            parents[int(d.name)] = ppid
        except (OSError, ValueError, IndexError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        if cpu is not None and pid in own:
            cpu[pid] = max(cpu.get(pid, 0.0), own[pid])
        todo += [c for c, p in parents.items() if p == pid]
    return total


def measure(name: str, cmd: list[str], env: dict | None = None) -> Measure:
    """Run ``cmd`` to completion; fail loudly if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = [0]
    root = [0.0]
    seen: dict[int, float] = {}   # every process of the tree: its own CPU, last sampled
    stop = threading.Event()
    tick = os.sysconf("SC_CLK_TCK")

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid, seen))
            try:
                fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
                root[0] = max(root[0], (int(fields[11]) + int(fields[12])) / tick)   # utime + stime
            except (OSError, ValueError, IndexError):
                pass
            stop.wait(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stop.set()
    th.join()
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name} failed: {err.strip().splitlines()[-1:] or err}")
    # the reaped tree's CPU (exact), or the sampled sum where processes were not reaped by the
    # command (verify's workers are forked by multiprocessing's fork server, which is not waited for)
    return Measure(name, wall, max(ru.ru_utime + ru.ru_stime, sum(seen.values())), peak[0] / 1024.0, root[0])
