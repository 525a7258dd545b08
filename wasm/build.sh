#!/bin/sh
# Builds the edge WebAssembly modules and the example C plugin:
#   build/wasm/edge-wasip1.wasm   WASI reactor run by the host (wazero)
#   build/wasm/edge.wasm          GOOS=js module for browsers
#   build/wasm/wasm_exec.js       Go's JS glue for edge.wasm
#   build/wasm/plugins/c-sampler.wasm   the example third-party plugin
#   build/wasm/plugins/sampler.wasm     the sampler in C (same tokens as Go's)
#   build/wasm/plugins/tokenizer.wasm   the tokenizer's encoder in C (same ids as Go's)
# and copies edge-wasip1.wasm, sampler.wasm and tokenizer.wasm to host/edgehost/
# for go:embed.
# Run from anywhere; `make` calls it before `go test`.
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=build/wasm
mkdir -p "$OUT/plugins"

GOOS=wasip1 GOARCH=wasm "$GO" build -buildmode=c-shared -trimpath -ldflags='-s -w' \
	-o "$OUT/edge-wasip1.wasm" ./wasm/cmd/edge-wasip1
GOOS=js GOARCH=wasm "$GO" build -trimpath -ldflags='-s -w' \
	-o "$OUT/edge.wasm" ./wasm/cmd/edge-js
cp "$("$GO" env GOROOT)/lib/wasm/wasm_exec.js" "$OUT/wasm_exec.js"
cp "$OUT/edge-wasip1.wasm" host/edgehost/edge.wasm

# The C plugin needs clang with the wasm32 target and wasm-ld (Debian: clang lld).
if ! command -v clang >/dev/null 2>&1 || ! command -v wasm-ld >/dev/null 2>&1; then
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq clang lld
fi
CC=${CC:-clang}
# wasm/plugins/internal holds what EdgeSeek's own plugins share; c-sampler, the
# example for third parties, stands alone.
for dir in wasm/plugins/*/; do
	name=$(basename "$dir")
	shared=wasm/plugins/internal/*.c
	case $name in
	internal) continue ;;
	c-sampler) shared= ;;
	esac
	# shellcheck disable=SC2086 # $shared is a glob
	"$CC" --target=wasm32 -O2 -nostdlib -fno-builtin -Wall -Wextra -Werror \
		-Wl,--no-entry -Wl,--strip-all -Wl,-z,stack-size=65536 \
		-o "$OUT/plugins/$name.wasm" "$dir"*.c $shared
done
cp "$OUT/plugins/sampler.wasm" host/edgehost/sampler.wasm
cp "$OUT/plugins/tokenizer.wasm" host/edgehost/tokenizer.wasm
