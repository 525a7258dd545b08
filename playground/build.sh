#!/bin/sh
# Copies the browser edge module, Go's wasm_exec.js and the C tokenizer and
# sampler from build/wasm/ (written by wasm/build.sh) into playground/assets/,
# which the playground package embeds. Run it after wasm/build.sh; `make` does.
set -eu
cd "$(dirname "$0")/.."
SRC=build/wasm
for f in edge.wasm wasm_exec.js plugins/tokenizer.wasm plugins/sampler.wasm; do
	if [ ! -f "$SRC/$f" ]; then
		echo "playground/build.sh: $SRC/$f is missing; run wasm/build.sh first" >&2
		exit 1
	fi
	name=$(basename "$f")
	cp "$SRC/$f" "playground/assets/$name.tmp"
	mv "playground/assets/$name.tmp" "playground/assets/$name"
done
