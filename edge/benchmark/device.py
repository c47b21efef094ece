"""What a benchmark ran on — the board (CPU, ISA flags, memory, OS) and the software stack —
and what the kernel says about this process while it runs (RSS, per-thread CPU time).

The first is recorded in every ``edge bench`` JSON so that two files, from two boards or two
versions, say what differs between them before their figures are compared. Every read of
``/proc`` the benchmark makes is here, each returning None (or zeros) where there is none.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import threading
from pathlib import Path

import edge
from edge.benchmark.schema import Device, MemoryKb

#: ISA extensions that change how fast int8 inference and our kernels run, as /proc/cpuinfo
#: names them (x86 ``flags``, ARM ``Features``). The rest of the list is noise for this purpose.
ISA_FLAGS = (
    # x86
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "amx_int8",
    # ARM (Linux names; "asimd" is NEON on AArch64)
    "neon",
    "asimd",
    "asimddp",
    "asimdhp",
    "fphp",
    "i8mm",
    "bf16",
    "sve",
    "sve2",
)
#: Distributions whose versions are worth recording (missing ones are recorded as None).
PACKAGES = (
    "edge",
    "numpy",
    "onnxruntime",
    "ai-edge-litert",
    "tflite-runtime",
    "opencv-python-headless",
    "opencv-python",
)
CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")


def _cpuinfo() -> dict[str, str]:
    """The first value of each key of /proc/cpuinfo (all cores of a board share them)."""
    info: dict[str, str] = {}
    try:
        text = CPUINFO.read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_model(info: dict[str, str] | None = None) -> str:
    info = _cpuinfo() if info is None else info
    # x86 says "model name"; ARM boards say "Model" (the board), "Hardware" or only the part.
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        if info.get(key):
            return info[key]
    if "CPU part" in info:
        return f"CPU implementer {info.get('CPU implementer', '?')} part {info['CPU part']}"
    return platform.processor() or platform.machine()


def isa_flags(info: dict[str, str] | None = None) -> list[str]:
    info = _cpuinfo() if info is None else info
    present = set((info.get("flags") or info.get("Features") or "").split())
    if not present and platform.machine().lower() in ("arm64", "aarch64"):
        present.add("asimd")  # NEON is part of the AArch64 baseline (macOS has no cpuinfo)
    return [flag for flag in ISA_FLAGS if flag in present]


def memory_kb() -> MemoryKb:
    values: dict[str, int | None] = {"total": None, "available": None}
    try:
        for line in MEMINFO.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("MemTotal", "MemAvailable"):
                values["total" if key == "MemTotal" else "available"] = int(rest.split()[0])
    except (OSError, ValueError, IndexError):
        pass
    return MemoryKb(**values)


def current_rss_kb() -> int | None:
    """This process's resident set now (Linux), or None where /proc is not there."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kb() -> int:
    """This process's peak resident set so far."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS, KiB elsewhere


#: Per thread name: (ns on a CPU, ns runnable but waiting for a CPU).
ThreadClocks = dict[str, tuple[int, int]]


def thread_clocks() -> ThreadClocks | None:
    """Per thread of this process: (ns on a CPU, ns runnable but waiting for a CPU), summed
    by Python thread name; threads Python did not start (a runtime's pool) are ``native``.
    None where the kernel does not say (not Linux, no schedstat)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    clocks: ThreadClocks = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return None
    for tid in tids:
        try:
            fields = Path(f"/proc/self/task/{tid}/schedstat").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
        name = names.get(int(tid), "native")
        on_cpu, waiting = clocks.get(name, (0, 0))
        clocks[name] = (on_cpu + int(fields[0]), waiting + int(fields[1]))
    return clocks or None


def own_schedstat() -> tuple[int, int]:
    """(ns on a CPU, ns waiting for one) of the calling thread; zeros where unknown."""
    try:
        fields = Path("/proc/thread-self/schedstat").read_text().split()
        return int(fields[0]), int(fields[1])
    except (OSError, ValueError, IndexError):
        return 0, 0


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def device_info() -> Device:
    """The ``device`` section of an ``edge bench`` JSON."""
    import cv2

    info = _cpuinfo()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    return Device(
        cpu=cpu_model(info),
        machine=platform.machine(),
        cores=os.cpu_count(),
        cores_usable=usable,
        isa_flags=isa_flags(info),
        memory_kb=memory_kb(),
        os=platform.platform(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        packages=package_versions(),
        opencv=cv2.__version__,
        opencv_threads=cv2.getNumThreads(),
        edge_isa=edge.active_isa(),
        edge_isa_forced=os.environ.get("EDGE_ISA"),
        # On a shared board the figures mean little without it.
        load_average=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    )
