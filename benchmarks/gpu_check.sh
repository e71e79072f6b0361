#!/usr/bin/env bash
# GPU validation in one call (issue 16): run as the whole command of a device call, with the
# wheel bundle carried (`make gpu-bundle` makes .gpu-bundle/ here first):
#
#     bash benchmarks/gpu_check.sh                          # device call: carry [".gpu-bundle"]
#
# On the GPU machine (python3 3.12, torch 2.11 + CUDA, torchvision 0.26, pytest, pytest-xdist,
# pytest-timeout; no network) it
#   1. installs the bundle offline, never touching torch, torchvision or numpy
#      (benchmarks/gpu_report.py install);
#   2. prints the versions and torch.cuda.get_device_name() (gpu_report.py env; nvidia-smi);
#   3. runs the package tests with MINIFRCNN_DEVICE=cuda (the CUDA-parametrised ones included;
#      tests/test_browser.py skips: no playwright, no Chromium there);
#   4. runs every lesson, notebooks/[0-9][0-9]_*.ipynb, under nbval, one lesson per xdist worker;
#   5. times the detector's training and inference steps and makes the results lesson's timing
#      table (gpu_report.py timing: minifrcnn.course.timing.time_parts), then, if the budget allows,
#      benchmarks/bench_detector.py on the GPU (one seed, minifrcnn vs torchvision);
#   6. writes report.json, report.md and the logs into $OUT (8 files: gpu_check.log, pytest.log,
#      nbval.log, timing.log, junit-tests.xml, junit-notebooks.xml, report.json, report.md).
#
# Every phase has a cap in seconds, and the phases together stay within --budget (460 s):
# a phase that would not fit is skipped and the report says so. The report is written
# whatever fails, and printed last. Exit status: 0 when every phase passed, 1 otherwise, 2 when
# CUDA was asked for and is not there.
#
# Options (or the environment variable in brackets):
#   --python PY         interpreter to check and install into [GPU_CHECK_PYTHON] (python3)
#   --bundle DIR        wheel bundle [GPU_BUNDLE] (.gpu-bundle); --no-install skips the install
#   --device DEV        MINIFRCNN_DEVICE for everything [GPU_CHECK_DEVICE] (cuda)
#   --budget S          seconds for all phases [GPU_CHECK_BUDGET] (460)
#   --tests-k EXPR      only the package tests that match (pytest -k) [GPU_CHECK_TESTS_K]
#   --lessons "01 03"   only these lessons (number prefixes) [GPU_CHECK_LESSONS]
#   --workers N         xdist workers for the tests [GPU_CHECK_WORKERS] (8)
#   --nb-workers N      xdist workers for the lessons, one lesson each (0: one per lesson, at most 10)
#   --train-steps N     timed training steps [GPU_CHECK_TRAIN_STEPS] (100)
#   --timing-args "..." more options of gpu_report.py timing [GPU_CHECK_TIMING_ARGS]
#   --bench-steps N     bench_detector.py steps, 0 to skip [GPU_CHECK_BENCH_STEPS] (300)
#   --bench-args "..."  more options of bench_detector.py [GPU_CHECK_BENCH_ARGS]
#
# The dry run on a CPU machine (`make gpu-dry-run`) runs this same script with --device cpu,
# a Python 3.11 venv that looks like the GPU machine, a bundle made for it, and a subset.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2

PY=${GPU_CHECK_PYTHON:-python3}
BUNDLE=${GPU_BUNDLE:-.gpu-bundle}
INSTALL=1
DEVICE=${GPU_CHECK_DEVICE:-cuda}
BUDGET=${GPU_CHECK_BUDGET:-460}
TESTS_K=${GPU_CHECK_TESTS_K:-}
LESSONS=${GPU_CHECK_LESSONS:-}
WORKERS=${GPU_CHECK_WORKERS:-8}
NB_WORKERS=${GPU_CHECK_NB_WORKERS:-0}
TRAIN_STEPS=${GPU_CHECK_TRAIN_STEPS:-100}
TIMING_ARGS=${GPU_CHECK_TIMING_ARGS:-}
BENCH_STEPS=${GPU_CHECK_BENCH_STEPS:-300}
BENCH_ARGS=${GPU_CHECK_BENCH_ARGS:-}
# Caps (seconds) of the phases, and the per-test and per-cell limits.
CAP_INSTALL=120 CAP_TESTS=170 CAP_NOTEBOOKS=240 CAP_TIMING=90 CAP_BENCH=100
TEST_TIMEOUT=150 CELL_TIMEOUT=240

while [ $# -gt 0 ]; do
    case $1 in
        --python) PY=$2; shift ;;
        --bundle) BUNDLE=$2; shift ;;
        --no-install) INSTALL=0 ;;
        --device) DEVICE=$2; shift ;;
        --budget) BUDGET=$2; shift ;;
        --tests-k) TESTS_K=$2; shift ;;
        --lessons) LESSONS=$2; shift ;;
        --workers) WORKERS=$2; shift ;;
        --nb-workers) NB_WORKERS=$2; shift ;;
        --train-steps) TRAIN_STEPS=$2; shift ;;
        --timing-args) TIMING_ARGS=$2; shift ;;
        --bench-steps) BENCH_STEPS=$2; shift ;;
        --bench-args) BENCH_ARGS=$2; shift ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d'; exit 0 ;;
        *) echo "gpu_check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

START=$(date +%s)
OUT=${OUT:-$ROOT/build/gpu-check}
mkdir -p "$OUT"
rm -f "$OUT"/{gpu_check.log,pytest.log,nbval.log,timing.log,junit-tests.xml,junit-notebooks.xml,report.json,report.md}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")
LOG=$OUT/gpu_check.log

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export MINIFRCNN_DEVICE=$DEVICE MPLBACKEND=Agg PYTHONUNBUFFERED=1
export MPLCONFIGDIR=$WORK/matplotlib IPYTHONDIR=$WORK/ipython JUPYTER_RUNTIME_DIR=$WORK/jupyter-runtime
export JUPYTER_PLATFORM_DIRS=1
unset MINIFRCNN_REQUIRE_BROWSER  # the browser test must skip there: no Chromium, no playwright

say() { echo "$*" | tee -a "$LOG"; }
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( BUDGET - $(elapsed) )); }
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$WORK/phases.tsv"; }

# phase NAME CAP LOGFILE COMMAND...: run COMMAND under `timeout CAP`, its output appended to
# $OUT/LOGFILE, its last lines echoed; a CAP under 20 s skips the phase.
phase() {
    local name=$1 cap=$2 logfile=$3 rc note="" t0
    shift 3
    if [ "$cap" -lt 20 ]; then
        say "== $name: skipped, ${cap} s left of the budget"
        record "$name" 125 0 "$cap" "skipped: out of budget"
        return 125
    fi
    say "== $name (cap ${cap} s, $(elapsed) s elapsed): $*"
    t0=$(date +%s)
    local before
    before=$(stat -c %s "$OUT/$logfile" 2>/dev/null || echo 0)
    timeout -k 15 "$cap" "$@" >> "$OUT/$logfile" 2>&1
    rc=$?
    [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note="stopped at its ${cap} s cap"
    local tail_text
    tail_text=$(tail -c +"$(( before + 1 ))" "$OUT/$logfile" | tail -n "${TAIL_LINES:-12}" | cut -c1-300)
    say "-- $name: exit $rc after $(( $(date +%s) - t0 )) s${note:+ ($note)}; its last lines:"
    echo "$tail_text"
    record "$name" "$rc" "$(( $(date +%s) - t0 ))" "$cap" "$note"
    return "$rc"
}

has() { "$PY" -c "import $1" >/dev/null 2>&1; }

finish() {
    "$PY" benchmarks/gpu_report.py report --work "$WORK" --out "$OUT" > "$WORK/report.stdout" 2>&1
    local rc=$?
    say ""
    say "== report ($(elapsed) s elapsed): $OUT/report.md"
    cat "$WORK/report.stdout"
    [ "$rc" -eq 0 ] || say "warning: the report step failed (exit $rc)"
    if awk -F'\t' '$2 != 0 {bad = 1} END {exit !bad}' "$WORK/phases.tsv" 2>/dev/null; then
        exit "${1:-1}"
    fi
    exit 0
}

say "gpu_check.sh: $(date '+%Y-%m-%d %H:%M:%S'), root $ROOT, OUT $OUT, python $PY, device $DEVICE, budget ${BUDGET} s"

# ---- 1. install the bundle offline
if [ "$INSTALL" = 1 ]; then
    if [ -d "$BUNDLE" ]; then
        say "bundle $BUNDLE: $(find "$BUNDLE" -name '*.whl' | wc -l) wheels, $(du -sh "$BUNDLE" | cut -f1)"
        phase install "$(min $CAP_INSTALL "$(left)")" gpu_check.log \
            "$PY" benchmarks/gpu_report.py install --bundle "$BUNDLE" --python "$PY" --work "$WORK" \
            --out "$WORK/install.json"
        target=$("$PY" -c "import json, sys; print(json.load(open(sys.argv[1])).get('target') or '')" \
                 "$WORK/install.json" 2>/dev/null)
        [ -n "$target" ] && export PYTHONPATH="$PYTHONPATH:$target"
    else
        say "== install: no bundle at $BUNDLE (make gpu-bundle makes it): nothing installed"
        record install 1 0 0 "no bundle at $BUNDLE"
    fi
fi

# ---- 2. versions and device
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>&1 | tee -a "$LOG"
REQUIRE=(); [ "${DEVICE%%:*}" = cuda ] && REQUIRE=(--require-cuda)
if ! TAIL_LINES=40 phase env 60 gpu_check.log "$PY" benchmarks/gpu_report.py env --out "$WORK/env.json" "${REQUIRE[@]}"; then
    say "the environment check failed: no tests run"
    finish 2
fi

# Options as the report shows them.
mapfile -t NOTEBOOKS < <(ls notebooks/[0-9][0-9]_*.ipynb 2>/dev/null)
if [ -n "$LESSONS" ]; then
    keep=()
    for nb in "${NOTEBOOKS[@]}"; do
        for prefix in $LESSONS; do
            case $(basename "$nb") in "$prefix"_*) keep+=("$nb") ;; esac
        done
    done
    NOTEBOOKS=("${keep[@]}")
fi
printf '%s\n' "${NOTEBOOKS[@]}" > "$WORK/lessons.txt"
[ "$NB_WORKERS" -gt 0 ] 2>/dev/null || NB_WORKERS=$(min "${#NOTEBOOKS[@]}" 10)
GC_DEVICE=$DEVICE GC_BUDGET=$BUDGET GC_TESTS_K=$TESTS_K GC_LESSONS=$LESSONS GC_WORKERS=$WORKERS \
GC_NB_WORKERS=$NB_WORKERS GC_TRAIN_STEPS=$TRAIN_STEPS GC_TIMING_ARGS=$TIMING_ARGS GC_BENCH_STEPS=$BENCH_STEPS \
GC_BENCH_ARGS=$BENCH_ARGS GC_CAPS="install=$CAP_INSTALL tests=$CAP_TESTS notebooks=$CAP_NOTEBOOKS timing=$CAP_TIMING bench=$CAP_BENCH test_timeout=$TEST_TIMEOUT cell_timeout=$CELL_TIMEOUT" \
"$PY" -c '
import json, os, sys
e = {k[3:].lower(): v for k, v in os.environ.items() if k.startswith("GC_")}
caps = dict(item.split("=") for item in e.pop("caps").split())
options = {"device": e["device"], "budget": int(e["budget"]), "tests_k": e["tests_k"], "lessons_filter": e["lessons"],
           "lessons": open(sys.argv[2]).read().split(), "workers": int(e["workers"]),
           "nb_workers": int(e["nb_workers"]), "train_steps": int(e["train_steps"]), "timing_args": e["timing_args"],
           "bench_steps": int(e["bench_steps"]), "bench_args": e["bench_args"],
           "caps": {k: int(v) for k, v in caps.items()}}
json.dump(options, open(sys.argv[1], "w"), indent=1)
' "$WORK/options.json" "$WORK/lessons.txt"

XDIST=0; has xdist && XDIST=1
TIMEOUT_OPTS=()
if has pytest_timeout; then
    TIMEOUT_OPTS=(--timeout "$TEST_TIMEOUT")
fi

# ---- 3. package tests (the lessons and the timings keep at least 160 s of the budget)
TEST_OPTS=(-p no:cacheprovider -v -rfEs --durations=20 -o junit_family=xunit1 --junitxml "$OUT/junit-tests.xml")
[ "$XDIST" = 1 ] && [ "$WORKERS" -gt 1 ] && TEST_OPTS+=(-n "$WORKERS" --dist loadfile)
[ -n "$TESTS_K" ] && TEST_OPTS+=(-k "$TESTS_K")
phase tests "$(min $CAP_TESTS $(( $(left) - 160 )))" pytest.log \
    "$PY" -m pytest tests "${TEST_OPTS[@]}" "${TIMEOUT_OPTS[@]}"

# ---- 4. every lesson under nbval, one lesson per worker (the timings keep 70 s)
NB_OPTS=(--nbval-lax --nbval-current-env --nbval-cell-timeout "$CELL_TIMEOUT" -p no:cacheprovider -v -rfE
         --durations=0 -o junit_family=xunit1 --junitxml "$OUT/junit-notebooks.xml")
[ "$XDIST" = 1 ] && [ "$NB_WORKERS" -gt 1 ] && NB_OPTS+=(-n "$NB_WORKERS" --dist loadfile)
if [ "${#NOTEBOOKS[@]}" -gt 0 ]; then
    # Lessons side by side share the cores: each kernel gets its share of threads.
    NB_THREADS=$(( $(nproc) / (NB_WORKERS > 0 ? NB_WORKERS : 1) )); [ "$NB_THREADS" -ge 1 ] || NB_THREADS=1
    phase notebooks "$(min $CAP_NOTEBOOKS $(( $(left) - 70 )))" nbval.log \
        env OMP_NUM_THREADS="$NB_THREADS" "$PY" -m pytest "${NOTEBOOKS[@]}" "${NB_OPTS[@]}"
else
    say "== notebooks: no lesson matches '$LESSONS'"
    record notebooks 1 0 0 "no lesson matched"
fi

# ---- 5. the detector's steps and the results lesson's timing table, then detector vs torchvision
# shellcheck disable=SC2086  # TIMING_ARGS and BENCH_ARGS are word lists on purpose
TAIL_LINES=25 phase timing "$(min $CAP_TIMING $(( $(left) - 5 )))" timing.log \
    "$PY" benchmarks/gpu_report.py timing --device "$DEVICE" --steps "$TRAIN_STEPS" --out "$WORK/timing.json" $TIMING_ARGS
if [ "$BENCH_STEPS" -gt 0 ]; then
    # One seed and the two detectors only, where the benchmark has those options (several
    # seeds and the old recipe beside them would not fit).
    BENCH_DEFAULT=()
    if [ "$(left)" -ge 40 ]; then
        bench_help=$("$PY" benchmarks/bench_detector.py --help 2>/dev/null)
        grep -q -- '--seeds' <<<"$bench_help" && BENCH_DEFAULT+=(--seeds 0)
        grep -q -- '--no-old' <<<"$bench_help" && BENCH_DEFAULT+=(--no-old)
    fi
    # shellcheck disable=SC2086
    TAIL_LINES=16 phase bench "$(min $CAP_BENCH $(( $(left) - 5 )))" timing.log \
        "$PY" benchmarks/bench_detector.py --device "$DEVICE" --steps "$BENCH_STEPS" "${BENCH_DEFAULT[@]}" \
        --out "$WORK/bench.json" $BENCH_ARGS
fi

finish 1
