"""Sort ThreadSanitizer reports (tools/sanitize.sh tsan) into the one known false positive
and the rest; exit 1 when there is any of the rest.

The known one: a helper thread of an OpenMP region reads the block of shared variables that
the compiler passes to the region (it lies on the master's stack), at the region's first
line, before any code of the region can synchronise; TSan cannot see libgomp's hand-over
(libgomp is not instrumented), so the read looks unordered with the master's earlier writes
to that stack memory. Recognised by: the read is in an outlined region (``._omp_fn.``), at
the line of a ``#pragma omp parallel`` or of the ``SD_TSAN_ENTER`` right after it, and the
memory is the stack of the main thread. See docs/reliability.md.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def entry_lines() -> set:
    """(file, line) of every region start: the pragma and the SD_TSAN_ENTER line."""
    out = set()
    for path in list((ROOT / "csrc").rglob("*.hpp")) + list((ROOT / "csrc").rglob("*.cpp")):
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if "#pragma omp parallel" in line or "SD_TSAN_ENTER(" in line and "define" not in line:
                out.add((str(path), i))
    return out


def main(logs) -> int:
    entries = entry_lines()
    known, other = 0, []
    for log in logs:
        for report in Path(log).read_text().split("==================\n"):
            if "WARNING: ThreadSanitizer" not in report:
                continue
            m = re.search(r"(?:Read|Write) of size \d+ at \S+ by thread T\d+:\n\s+#0 .*?\._omp_fn\.\d+\] (\S+):(\d+)",
                          report)
            if m and (m.group(1), int(m.group(2))) in entries and "Location is stack of main thread" in report:
                known += 1
            else:
                other.append(report)
    print(f"tsan: {known} report(s) of the known kind (region-entry reads of the shared-variable block)")
    for r in other:
        print(r)
    print(f"tsan: {len(other)} other report(s)")
    return 1 if other else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
