#!/bin/sh
# Copies the browser edge module and Go's wasm_exec.js from build/wasm/
# (written by wasm/build.sh) into playground/assets/, which the playground
# package embeds. Run it after wasm/build.sh; `make` does.
set -eu
cd "$(dirname "$0")/.."
SRC=build/wasm
for f in edge.wasm wasm_exec.js; do
	if [ ! -f "$SRC/$f" ]; then
		echo "playground/build.sh: $SRC/$f is missing; run wasm/build.sh first" >&2
		exit 1
	fi
	cp "$SRC/$f" "playground/assets/$f.tmp"
	mv "playground/assets/$f.tmp" "playground/assets/$f"
done
