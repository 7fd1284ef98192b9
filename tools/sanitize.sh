#!/usr/bin/env bash
# Build the C++ extension (_core) with sanitizers and run the C++-backed tests under them.
#
#   tools/sanitize.sh asan [PYTEST ARGS...]   AddressSanitizer + UndefinedBehaviorSanitizer
#   tools/sanitize.sh tsan                    ThreadSanitizer over the threaded fits
#   tools/sanitize.sh all                     both
#
# Each kind gets its own virtual environment and build folder under build/sanitize/KIND
# (reused by later runs: the second run only recompiles what changed). The interpreter is
# not instrumented, so the sanitizer's runtime is preloaded (LD_PRELOAD). Reports go to
# build/sanitize/KIND/log.*; the script fails when there is any. See docs/reliability.md for
# what the runs found and why the options below are what they are. Not part of CI: the
# ASan run of the tests takes about ten minutes on 2 cores, the TSan run a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KIND=${1:-all}
shift || true

# the C++-backed tests: every backend test, the bindings' own tests, checkpoints and ops
ASAN_TESTS=(tests/test_backends.py tests/test_batch_backends.py tests/test_batch_cpp.py
            tests/test_batch_rules.py tests/test_batch_screening.py tests/test_checkpoint.py
            tests/test_ops.py tests/test_tnn.py tests/test_validation.py tests/test_model_api.py
            tests/test_lateral.py tests/test_metrics.py)

build_venv() {  # KIND FLAGS...: a virtual environment with _core built with FLAGS
    local kind=$1; shift
    local dir=$ROOT/build/sanitize/$kind
    local flags="$* -g -fno-omit-frame-pointer"
    mkdir -p "$dir"
    if [ ! -x "$dir/venv/bin/python" ]; then
        python3 -m venv "$dir/venv"
    fi
    # no CUDA module and no emulator: the sanitizers look at the CPU module only (the
    # emulator switches stacks with swapcontext, which ASan and TSan do not follow)
    SPARSEDREAM_CUDA=OFF SPARSEDREAM_CUDA_EMULATOR=OFF "$dir/venv/bin/pip" install -q ".[test]" \
        -C build-dir="$dir/cmake" -C cmake.build-type=RelWithDebInfo \
        -C cmake.define.CMAKE_CXX_FLAGS="$flags" \
        -C cmake.define.CMAKE_MODULE_LINKER_FLAGS="$*" \
        -C cmake.define.CMAKE_SHARED_LINKER_FLAGS="$*"
}

check_logs() {  # KIND: fail when the sanitizer wrote any report
    local dir=$ROOT/build/sanitize/$1
    shopt -s nullglob
    local logs=("$dir"/log.*)
    shopt -u nullglob
    if [ ${#logs[@]} -gt 0 ]; then
        echo "sanitize $1: reports in ${logs[*]}:" >&2
        grep -h -E "ERROR|WARNING: ThreadSanitizer|runtime error" "${logs[@]}" | sort | uniq -c | head -40 >&2
        return 1
    fi
    echo "sanitize $1: no reports"
}

run_asan() {
    local dir=$ROOT/build/sanitize/asan
    build_venv asan -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=undefined
    rm -f "$dir"/log.*
    local rt
    # libstdc++ preloaded too: the interpreter does not link it, and ASan's __cxa_throw
    # interceptor must find the real one at start-up (else the first C++ exception aborts
    # with "CHECK failed: real___cxa_throw != 0")
    rt="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libstdc++.so.6)"
    # detect_leaks=0: CPython and numpy keep their allocations at exit; leaks of _core would
    # need a leak-checking interpreter. The pytest cache stays off (the run leaves nothing).
    (cd "$dir" && \
     LD_PRELOAD="$rt" \
     ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:halt_on_error=1:log_path=$dir/log" \
     UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$dir/log" \
     SD_SANITIZER=asan \
     "$dir/venv/bin/python" -m pytest -q -p no:cacheprovider -x --rootdir="$ROOT" -c "$ROOT/pyproject.toml" \
        "${ASAN_TESTS[@]/#/$ROOT/}" -m "not slow" "$@")
    check_logs asan
}

run_tsan() {
    local dir=$ROOT/build/sanitize/tsan
    build_venv tsan -fsanitize=thread
    rm -f "$dir"/log.*
    local rt
    rt="$(g++ -print-file-name=libtsan.so) $(g++ -print-file-name=libstdc++.so.6)"
    # libgomp is not instrumented: the start and end of its parallel regions are invisible to
    # TSan. The build marks them itself (SD_TSAN_FORK / ENTER / LEAVE / JOIN in common.hpp,
    # only under -fsanitize=thread), so what TSan checks is the code's own synchronisation:
    # the Team's atomics (team.hpp) and the data the threads share. OMP_NUM_THREADS=4 on 2 cores
    # makes the helpers late, which is where the Team's protocol matters most.
    (cd "$dir" && \
     LD_PRELOAD="$rt" OMP_NUM_THREADS=4 OMP_WAIT_POLICY=passive \
     TSAN_OPTIONS="halt_on_error=0:report_signal_unsafe=0:second_deadlock_stack=1:log_path=$dir/log" \
     SD_SANITIZER=tsan \
     "$dir/venv/bin/python" "$ROOT/tools/tsan_fits.py" "$@")
    # one kind of report is a known false positive of the uninstrumented libgomp (the
    # region-entry read of the shared-variable block); tsan_triage.py fails on any other
    shopt -s nullglob
    python3 "$ROOT/tools/tsan_triage.py" "$dir"/log.*
    shopt -u nullglob
}

case $KIND in
    asan) run_asan "$@" ;;
    tsan) run_tsan "$@" ;;
    all) run_asan && run_tsan ;;
    *) echo "usage: tools/sanitize.sh asan|tsan|all [args]" >&2; exit 2 ;;
esac
