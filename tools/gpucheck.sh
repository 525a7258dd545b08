#!/usr/bin/env bash
# gpucheck.sh — the CUDA backend's device check: build, GPU-against-CPU
# parity suite (every kernel on random inputs, then the full logits of the
# tiny V4 and V4.1 models), then a benchmark table (GEMV GB/s against the
# measured copy bandwidth, GEMM TFLOP/s, decode attention). Aimed at < 8 min
# on one GPU. The full log and the table go to DIR.
#
#   tools/gpucheck.sh [--out DIR]     run everything (needs an NVIDIA GPU)
#   tools/gpucheck.sh --prepare       on a machine with Go but no GPU: build the
#                                     test binary (and pack libnvrtc) into
#                                     build/gpucheck/, for a GPU machine
#                                     without Go or NVRTC
#
# Needs on the GPU machine: the NVIDIA driver (libcuda.so.1) and NVRTC
# (libnvrtc.so*: CUDA toolkit, Debian libnvrtc11.2, pip nvidia-cuda-nvrtc-cu12,
# or build/gpucheck/nvrtc from --prepare). Go is needed unless --prepare ran.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
OUT=""
PREPARE=0
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT="$2"; shift 2 ;;
	--out=*) OUT="${1#--out=}"; shift ;;
	--prepare) PREPARE=1; shift ;;
	-h|--help) sed -n '2,18p' "$0"; exit 0 ;;
	*) echo "gpucheck: unknown argument $1" >&2; exit 2 ;;
	esac
done
PREP="$ROOT/build/gpucheck"

if [ "$PREPARE" = 1 ]; then
	set -e
	mkdir -p "$PREP/nvrtc"
	CGO_ENABLED=0 go test -c -o "$PREP/cuda.test" ./kernels/cuda
	for f in /usr/lib/x86_64-linux-gnu/libnvrtc.so.*.*.* /usr/lib/x86_64-linux-gnu/libnvrtc-builtins.so.*.*.*; do
		[ -e "$f" ] || continue
		xz -T0 -6 -c "$f" > "$PREP/nvrtc/$(basename "$f").xz"
	done
	du -sh "$PREP"
	echo "gpucheck: prepared $PREP (carry build/gpucheck to the GPU machine)"
	exit 0
fi

[ -n "$OUT" ] || OUT="$ROOT/build/gpucheck-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
LOG="$OUT/gpucheck.log"
TABLE="$OUT/bench.txt"
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
START=$(date +%s)
FAIL=0
step() { echo; echo "=== $* ($(( $(date +%s) - START ))s)"; }

step "machine"
uname -a
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.memory --format=csv || echo "nvidia-smi not found"

# NVRTC: use what the machine has, else a packed copy from --prepare.
find_nvrtc() {
	[ -n "${EDGESEEK_NVRTC:-}" ] && return 0
	if ldconfig -p 2>/dev/null | grep -q 'libnvrtc\.so'; then return 0; fi
	local c
	for c in /usr/local/cuda*/lib64/libnvrtc.so* /usr/lib/x86_64-linux-gnu/libnvrtc.so* \
		$(python3 -c 'import nvidia, os; print(os.path.dirname(nvidia.__path__[0]))' 2>/dev/null)/nvidia/cuda_nvrtc/lib/libnvrtc.so*; do
		if [ -e "$c" ]; then export EDGESEEK_NVRTC="$c"; return 0; fi
	done
	if ls "$PREP"/nvrtc/libnvrtc.so.*.xz >/dev/null 2>&1; then
		local d="$OUT/nvrtc"
		mkdir -p "$d"
		for f in "$PREP"/nvrtc/*.xz; do
			b="$(basename "$f" .xz)"
			xz -dc "$f" > "$d/$b"
			case "$b" in
			libnvrtc-builtins.so.*.*.*) # libnvrtc dlopens its builtins by soname (libnvrtc-builtins.so.X.Y)
				ln -sf "$b" "$d/${b%.*}" ;;
			esac
		done
		export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
		export EDGESEEK_NVRTC="$(ls "$d"/libnvrtc.so.*.*.* | head -1)"
		return 0
	fi
	return 1
}
step "nvrtc"
if find_nvrtc; then echo "NVRTC: ${EDGESEEK_NVRTC:-from the loader path}"; else echo "gpucheck: no libnvrtc found (see the header of this script)"; exit 1; fi

step "build"
TESTBIN=""
if command -v go >/dev/null; then
	go version
	go build ./... || FAIL=1
	go vet ./kernels/cuda || FAIL=1
	mkdir -p "$OUT/bin"
	go test -c -o "$OUT/bin/cuda.test" ./kernels/cuda || { echo "gpucheck: build failed"; exit 1; }
	TESTBIN="$OUT/bin/cuda.test"
elif [ -x "$PREP/cuda.test" ]; then
	echo "go not found; using the prepared $PREP/cuda.test"
	TESTBIN="$PREP/cuda.test"
else
	echo "gpucheck: neither go nor a prepared test binary (tools/gpucheck.sh --prepare)"; exit 1
fi

step "kernels compile (NVRTC, compute_80 and compute_90)"
if EDGESEEK_REQUIRE_NVRTC=1 timeout 120 "$TESTBIN" -test.count=1 -test.v -test.run 'NVRTC|Modules' >"$OUT/compile.log" 2>&1; then
	grep -E 'NVRTC [0-9]|^(ok|PASS)' "$OUT/compile.log"
else
	cat "$OUT/compile.log"; echo "FAIL: kernel compilation"; FAIL=1
fi

step "device"
if ! EDGESEEK_GPU=1 timeout 120 "$TESTBIN" -test.count=1 -test.v -test.run 'TestGPUOpen$'; then
	echo "gpucheck: FAILED: no usable CUDA device; skipping parity and benchmark"
	exit 1
fi

step "parity: each kernel against the CPU"
EDGESEEK_GPU=1 timeout 240 "$TESTBIN" -test.count=1 -test.v -test.timeout 230s \
	-test.run 'TestGPU(MatMul|MatMulTensorCores|MatMulOddCols|Attend|AttendPrefill|RMSNormSwiGLU|RoPE|HCSite|Compress|Indexer|Route|Graph)$' \
	|| { echo "FAIL: kernel parity"; FAIL=1; }

step "parity: tiny V4 and V4.1 model logits"
EDGESEEK_GPU=1 timeout 120 "$TESTBIN" -test.count=1 -test.v -test.timeout 110s -test.run 'TestGPUModelLogits' \
	|| { echo "FAIL: model logits"; FAIL=1; }

step "benchmark"
EDGESEEK_GPU=1 EDGESEEK_GPU_BENCH=1 EDGESEEK_GPU_TABLE="$TABLE" timeout 150 "$TESTBIN" -test.count=1 -test.v \
	-test.timeout 140s -test.run 'TestGPUBenchTable' >"$OUT/bench.log" 2>&1 || { echo "FAIL: benchmark (see $OUT/bench.log)"; FAIL=1; }

step "summary"
if [ -s "$TABLE" ]; then cat "$TABLE"; else tail -30 "$OUT/bench.log"; fi
echo
echo "log: $LOG"
echo "total: $(( $(date +%s) - START ))s"
if [ "$FAIL" != 0 ]; then echo "gpucheck: FAILED"; exit 1; fi
echo "gpucheck: all checks passed"
