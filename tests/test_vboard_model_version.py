"""The virtual board's timing-model version follows its sources.

Every result measured on the virtual board carries ``measure_agent.vboard.MODEL_VERSION``
(``VB_MODEL_VERSION`` in ``measure_agent/vboard/native/cyclemodel.h``) and the cost model keys its tables
on it: a change to a timing rule that keeps the old version silently mixes old and new cycle counts.
This test pins, for each version, the sha256 of the native sources that decide cycle counts. When it
fails after you changed one of them:

* if the change can change a cycle count: bump ``VB_MODEL_VERSION`` and add a row for the new version;
* if it cannot (a comment, a refactoring with identical counts): replace the current version's hash.

The hash printed in the failure message is the one to write into the table.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

NATIVE = Path(__file__).resolve().parents[1] / "measure_agent" / "vboard" / "native"
#: the sources whose rules decide cycle counts (decoder, per-core tables and pipeline rules, flash and
#: caches, per-block accounting and hooks, CYCCNT attribution)
TIMING_SOURCES = ("decode.c", "timing.c", "flash.c", "blocks.c", "ppb.c")

#: version -> sha256 of the timing sources (sources_digest())
VERSIONS = {
    # (ppb.c's mmio_now, the energy pin's timestamps, and flash.c's flash fault when HCLK is above what the
    # programmed latency allows change no count: benchmarks/layer_cycles.py, tests/test_clock.py)
    "2026.12-2": "f3a0cea8062d66176c23fc3bf4a0f6860ebdb396deb20dc3271eb72b94b10f0c",
    # fast mode: an STM's words forwarded to the loads of its block that read them back, and no register
    # predicted from a value an unkept instruction overwrote (fast = strict again: test_vboard_fast_vs_strict);
    # blocks.c's wall-clock deadline (Model.deadline_ns) only stops a run: no count changes
    "2026.12-3": "9ebfd82075ee99f70b2574a3e021618a3144cd07cf7f524aca5f36053fc0efed",
}


def sources_digest() -> str:
    h = hashlib.sha256()
    for name in TIMING_SOURCES:
        h.update(name.encode() + b"\0" + (NATIVE / name).read_bytes() + b"\0")
    return h.hexdigest()


def header_version() -> str:
    m = re.search(r'#define\s+VB_MODEL_VERSION\s+"([^"]+)"', (NATIVE / "cyclemodel.h").read_text())
    assert m, "VB_MODEL_VERSION not found in cyclemodel.h"
    return m.group(1)


def test_model_version_matches_timing_sources():
    version, digest = header_version(), sources_digest()
    assert version in VERSIONS, (
        f"VB_MODEL_VERSION {version!r} has no row in tests/test_vboard_model_version.py: add "
        f'"{version}": "{digest}" to VERSIONS')
    assert VERSIONS[version] == digest, (
        f"the timing sources ({', '.join(TIMING_SOURCES)}) changed but VB_MODEL_VERSION is still {version!r}. "
        f"If the change can change a cycle count, bump VB_MODEL_VERSION in native/cyclemodel.h and add a row "
        f'for the new version to VERSIONS; if it cannot, set VERSIONS["{version}"] = "{digest}"')


def test_extension_reports_the_header_version():
    from measure_agent.vboard import MODEL_VERSION

    assert MODEL_VERSION == header_version(), "the built extension is older than cyclemodel.h: rebuild it"


def test_versions_are_unique():
    assert len(set(VERSIONS.values())) == len(VERSIONS), "two versions with the same timing sources"
