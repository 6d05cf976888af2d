#!/usr/bin/env bash
# The GPU path, checked on a machine that has NVIDIA's driver and CUDA but no Rust toolchain
# and no network. Build and strip the binary where Rust is, carry it there with Decima's
# traces, and run:
#
#   cargo build --release --features wgpu    # or cuda: see "GPUs" in the README
#   strip -o /tmp/mpda target/release/mpda && xz -6 -c /tmp/mpda > .gpu/mpda.xz  # 87 -> 18 MB
#   cp -r ../shared/decima-tpch .gpu/       # .gpu/ is git-ignored: the traces are not ours
# and there:
#   python3 -c "import lzma,shutil; shutil.copyfileobj(lzma.open('.gpu/mpda.xz'), open('/tmp/mpda','wb'))"
#   chmod +x /tmp/mpda && GPU=wgpu scripts/gpu/check.sh /tmp/mpda .gpu/decima-tpch [OUTDIR]
#
# With the wgpu build (`--features wgpu`, Vulkan on NVIDIA), set GPU=wgpu; the machine then
# needs Vulkan's loader (libvulkan1) and NVIDIA's ICD.
#
# It trains `mpda-decima-batch20` for ITERS iterations (default 5) on `--device $GPU` and on
# `--device cpu` from the same seed, checks that the losses and entropies agree (the
# tolerances are in compare.py), reports iterations per second and the learning step's time
# on each device, and times batched rollout inference (`inference = "batched"`, one Burn
# forward pass per lockstep round) on the GPU against the CPU's host path. Everything lands
# in OUTDIR (default gpu-check/): the runs' metrics.csv, logs, summary.md and summary.json.
# Each step has its own time limit (280, 100, 100 and 50 s: a fresh H200 spent 150 s compiling
# kernels in the first GPU iteration); the whole script stays under 10 minutes.
set -uo pipefail

BIN=${1:?usage: check.sh BIN TRACES [OUTDIR]}
TRACES=${2:?usage: check.sh BIN TRACES [OUTDIR]}
OUTDIR=${3:-gpu-check}
ITERS=${ITERS:-5}
GPU=${GPU:-cuda}
case "$GPU" in cuda | wgpu) ;; *) echo "check.sh: GPU must be cuda or wgpu, not $GPU" >&2; exit 2 ;; esac
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BASE="$ROOT/configs/train/mpda-decima-batch20.toml"

[ -x "$BIN" ] || { echo "check.sh: $BIN is not an executable" >&2; exit 2; }
[ -d "$TRACES" ] || { echo "check.sh: $TRACES is not a folder of Decima's traces" >&2; exit 2; }
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
TRACES=$(cd "$TRACES" && pwd)

# CUDA's libraries for cudarc's dynamic loading (libcuda from the driver, libnvrtc from the
# toolkit, or from pip's nvidia-* wheels where the toolkit is not installed).
for d in /usr/local/cuda/lib64 /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu; do
    [ -d "$d" ] && LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
NVRTC=$(timeout 30 find /usr/local /usr/lib /opt -name 'libnvrtc.so*' 2>/dev/null | sort)
for f in $NVRTC; do
    LD_LIBRARY_PATH="$(dirname "$f"):$LD_LIBRARY_PATH"
done
export LD_LIBRARY_PATH

{
    echo "date: $(date -u +%FT%TZ)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>&1
    echo "cpus: $(nproc)"
    echo "nvrtc: $(echo $NVRTC)"
    echo "binary: $("$BIN" --version 2>&1), device $GPU"
    [ "$GPU" = wgpu ] && { vulkaninfo --summary 2>/dev/null | grep -i 'deviceName\|driverName' || echo "vulkaninfo: not installed"; }
} > "$OUTDIR/machine.txt"
cat "$OUTDIR/machine.txt"

# The preset with the traces here, a smaller held-out set (the GPU evaluates one decision at a
# time through Burn, which is slow and not what this checks) and, for the rollout check,
# batched inference.
variant() { # NAME INFERENCE
    sed -e "s|^traces = .*|traces = \"$TRACES\"|" \
        -e "s|^name = .*|name = \"$1\"|" \
        -e "s|^seeds = .*|seeds = 4|" \
        -e "s|^algorithm = .*|&\ninference = \"$2\"|" "$BASE" > "$OUTDIR/$1.toml"
}
variant check-host host
variant check-batched batched

step() { # LABEL LIMIT_S ARGS...
    local label=$1 limit=$2
    shift 2
    echo "== $label (limit ${limit}s): $*"
    local t0=$(date +%s%N)
    timeout "$limit" "$@" > "$OUTDIR/$label.log" 2>&1
    local rc=$?
    local t1=$(date +%s%N)
    echo "$label rc=$rc wall_ms=$(( (t1 - t0) / 1000000 ))" | tee -a "$OUTDIR/steps.txt"
    tail -5 "$OUTDIR/$label.log"
}

rm -f "$OUTDIR/steps.txt"
# STEPS picks the runs (all four by default); GPU_LIMIT_S gives the GPU run more time on a
# machine whose kernel caches are cold.
STEPS=${STEPS:-gpu cpu gpu-batched cpu-batched}
for s in $STEPS; do
    case $s in
    gpu) step gpu "${GPU_LIMIT_S:-280}" "$BIN" train --config "$OUTDIR/check-host.toml" \
        --runs "$OUTDIR/gpu" --device "$GPU" --iterations "$ITERS" ;;
    cpu) step cpu 100 "$BIN" train --config "$OUTDIR/check-host.toml" --runs "$OUTDIR/cpu" \
        --device cpu --iterations "$ITERS" ;;
    gpu-batched) step gpu-batched 100 "$BIN" train --config "$OUTDIR/check-batched.toml" \
        --runs "$OUTDIR/gpu-batched" --device "$GPU" --iterations 2 ;;
    cpu-batched) step cpu-batched 50 "$BIN" train --config "$OUTDIR/check-batched.toml" \
        --runs "$OUTDIR/cpu-batched" --device cpu --iterations 2 ;;
    *) echo "check.sh: unknown step $s" >&2; exit 2 ;;
    esac
done

python3 "$HERE/compare.py" "$OUTDIR" "$GPU"
