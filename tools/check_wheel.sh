#!/usr/bin/env bash
# Build the wheel a user gets (`pip wheel .`, default options) and check it:
#   - check-wheel-contents: no duplicate or misplaced files, a valid RECORD;
#   - auditwheel show: the shared libraries it needs and the manylinux tag they allow;
#   - its files: _core (and _cuda where nvcc was found) but never _cuda_emu; py.typed,
#     the build record, the LICENSE in the metadata, the SPDX license field;
#   - installed in a fresh virtual environment: sparsedream_fast.__version__,
#     `sparsedream --version` and the wheel's own version agree, and importing it warns of
#     nothing.
# Takes a few minutes (a full Release build). Not part of CI; docs/reliability.md has the
# result of the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT=$ROOT/build/wheelcheck
rm -rf "$OUT/dist"
mkdir -p "$OUT"
[ -x "$OUT/venv/bin/python" ] || python3 -m venv "$OUT/venv"
PY=$OUT/venv/bin/python
"$PY" -m pip install -q check-wheel-contents auditwheel

# the user's build: no SPARSEDREAM_* variables set (the emulator is a testing tool)
env -u SPARSEDREAM_CUDA_EMULATOR -u SPARSEDREAM_CPP -u SPARSEDREAM_CUDA \
    "$PY" -m pip wheel -q --no-deps -w "$OUT/dist" -C build-dir="$OUT/cmake" .
WHEEL=$(ls "$OUT"/dist/sparsedream_fast-*.whl)
echo "wheel: $WHEEL"

echo "--- check-wheel-contents"
"$OUT/venv/bin/check-wheel-contents" "$WHEEL"
echo "--- auditwheel show"
"$OUT/venv/bin/auditwheel" show "$WHEEL"

echo "--- contents"
"$PY" - "$WHEEL" <<'EOF'
import email.parser
import sys
import zipfile

wheel = sys.argv[1]
PKG = "sparsedream_fast"  # the package's folder inside the wheel
names = zipfile.ZipFile(wheel).namelist()
mods = sorted(n.split("/")[-1].split(".")[0] for n in names if n.endswith(".so"))
print("compiled modules:", mods)
problems = []
if "_core" not in mods:
    problems.append("no _core")
if "_cuda_emu" in mods:
    problems.append("the CUDA emulator _cuda_emu is in a user's wheel")
for need in (f"{PKG}/py.typed", f"{PKG}/_build_config.py"):
    if need not in names:
        problems.append(f"no {need}")
meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
    problems.append("no LICENSE in the .dist-info")
meta = email.parser.Parser().parsestr(zipfile.ZipFile(wheel).read(meta_name).decode())
print("Metadata-Version:", meta["Metadata-Version"], "| License-Expression:", meta["License-Expression"],
      "| Version:", meta["Version"])
if meta["License-Expression"] != "MIT":
    problems.append(f"License-Expression is {meta['License-Expression']!r}")
record = zipfile.ZipFile(wheel).read(f"{PKG}/_build_config.py").decode()
print("build record:", [line for line in record.splitlines() if line.startswith("BUILT_MODULES")])
if problems:
    sys.exit("wheel check failed: " + "; ".join(problems))
EOF

echo "--- installed in a fresh environment"
rm -rf "$OUT/user"
python3 -m venv "$OUT/user"
"$OUT/user/bin/pip" install -q "$WHEEL"
WHEEL_VERSION=$(basename "$WHEEL" | cut -d- -f2)
(cd "$OUT" && "$OUT/user/bin/python" -W error::RuntimeWarning - "$WHEEL_VERSION" <<'EOF'
import subprocess
import sys
from importlib.metadata import version

import sparsedream_fast as sdf

cli = subprocess.run([sys.prefix + "/bin/sparsedream", "--version"], capture_output=True, text=True,
                     check=True).stdout.split()[-1]
print("wheel", sys.argv[1], "| metadata", version("sparsedream-fast"), "| __version__", sdf.__version__,
      "| sparsedream --version", cli)
assert sys.argv[1] == version("sparsedream-fast") == sdf.__version__ == cli
print(sdf.backends()["cpp"])
assert sdf.backends()["cpp"].available
EOF
)
echo "wheel check: OK"
