package playground

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
	"github.com/edgeseek/edgeseek/model/synth"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		rd = zr
	}
	b, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPageAndAssets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ModuleFile), []byte(strings.Repeat("\x00asm", 1000)), 0o644)
	os.WriteFile(filepath.Join(dir, GlueFile), []byte("globalThis.Go = class {};"), 0o644)
	h := Handler(Options{AssetDir: dir, TokenizerJSON: []byte(`{"model":{}}`)})

	r := get(t, h, "/")
	if s := body(t, r); r.StatusCode != 200 || !strings.Contains(s, `<script type="module" src="/js/app.js">`) {
		t.Fatalf("GET /: %d %q", r.StatusCode, s[:min(len(s), 200)])
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "wasm-unsafe-eval") {
		t.Errorf("CSP %q", csp)
	}
	for _, p := range []string{"/style.css", "/js/app.js", "/js/msgpack.js", "/js/edge.js", "/js/host.js", "/js/views.js"} {
		if r := get(t, h, p); r.StatusCode != 200 {
			t.Errorf("GET %s: %d", p, r.StatusCode)
		}
	}
	r = get(t, h, "/assets/edge.wasm", "Accept-Encoding", "gzip")
	if r.Header.Get("Content-Type") != "application/wasm" || r.Header.Get("Content-Encoding") != "gzip" ||
		r.Header.Get("X-Uncompressed-Length") != "4000" || len(body(t, r)) != 4000 {
		t.Errorf("edge.wasm: %v", r.Header)
	}
	if r := get(t, h, "/assets/wasm_exec.js"); !strings.HasPrefix(r.Header.Get("Content-Type"), "text/javascript") {
		t.Errorf("wasm_exec.js content type %q", r.Header.Get("Content-Type"))
	}
	if r := get(t, h, "/api/tokenizer.json"); body(t, r) != `{"model":{}}` {
		t.Error("tokenizer.json not served")
	}
	if r := get(t, h, "/api/model"); r.StatusCode != 404 {
		t.Errorf("/api/model without a model: %d", r.StatusCode)
	}
	if r := get(t, h, "/api/nothing"); r.StatusCode != 404 {
		t.Errorf("/api/nothing: %d", r.StatusCode)
	}
	var cfg map[string]any
	json.Unmarshal([]byte(body(t, get(t, h, "/api/config.json"))), &cfg)
	if cfg["ws_path"] != "/ws" {
		t.Errorf("config %v", cfg)
	}

	missing := Handler(Options{AssetDir: t.TempDir()})
	if r := get(t, missing, "/assets/edge.wasm"); r.StatusCode != 404 || !strings.Contains(body(t, r), "build.sh") {
		t.Errorf("missing module: %d", r.StatusCode)
	}
	req := httptest.NewRequest("POST", "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}

func TestModelInfo(t *testing.T) {
	for _, arch := range []checkpoint.Arch{checkpoint.ArchV4, checkpoint.ArchV41} {
		cfg := synth.TinyConfig(arch)
		sum := checkpoint.Summary{Tensors: 3, Bytes: 1000, ByDType: map[safetensors.DType]checkpoint.DTypeStat{
			safetensors.BF16: {Tensors: 1, Bytes: 600}, safetensors.I8: {Tensors: 1, Bytes: 300}, safetensors.F8E8M0: {Tensors: 1, Bytes: 100}}}
		h := Handler(Options{ModelName: "tiny", Config: &cfg, Summary: &sum, ContextLimit: 77})
		r := get(t, h, "/api/model")
		var mi ModelInfo
		if err := json.Unmarshal([]byte(body(t, r)), &mi); err != nil {
			t.Fatal(err)
		}
		if mi.Name != "tiny" || mi.Layers != cfg.Layers || len(mi.Schedule) != cfg.Layers || mi.ContextLimit != 77 {
			t.Errorf("%s: %+v", arch, mi)
		}
		// BF16: 300 params, FP4: 600, scales excluded.
		if mi.TotalParams != 900 || len(mi.Params) != 3 || mi.Params[0].DType != "BF16" {
			t.Errorf("%s params: %d %+v", arch, mi.TotalParams, mi.Params)
		}
		if mi.Cache.PerTokenBytes <= 0 {
			t.Errorf("%s: cache per token %v", arch, mi.Cache.PerTokenBytes)
		}
		csa := 0
		for _, l := range mi.Schedule {
			if hasIndexer(cfg, l.Layer) {
				csa++
			}
		}
		if csa != len(mi.CSALayers) || (arch == checkpoint.ArchV41) != (mi.Engram != nil) {
			t.Errorf("%s: csa layers %v, engram %v", arch, mi.CSALayers, mi.Engram)
		}
	}
}
