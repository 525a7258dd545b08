// Package playground serves EdgeSeek's browser playground: the page in web/
// (embedded), the GOOS=js edge module with Go's wasm_exec.js (embedded from
// playground/assets/, filled by playground/build.sh), the tokenizer.json the
// module loads, and a JSON description of the loaded model at /api/model.
//
// The page talks to the host over the edge protocol websocket (protocol/),
// which host/server serves at /ws; this package serves only what the page
// needs besides it. Routes:
//
//	GET /                    the page (index.html and its CSS and ES modules)
//	GET /assets/edge.wasm    the browser edge module
//	GET /assets/wasm_exec.js Go's JavaScript glue for it
//	GET /assets/tokenizer.wasm, /assets/sampler.wasm  the C plugins (wasm/plugins)
//	GET /api/model           ModelInfo as JSON
//	GET /api/tokenizer.json  the model's tokenizer.json
package playground

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/web"
)

//go:embed assets
var assets embed.FS

// Module files served under /assets/.
const (
	ModuleFile = "edge.wasm"
	GlueFile   = "wasm_exec.js"
	// TokenizerFile and SamplerFile are the C tokenizer and sampler
	// (wasm/plugins), which the page puts in front of the Go edge as the
	// host does; without them the Go edge does their work.
	TokenizerFile = "tokenizer.wasm"
	SamplerFile   = "sampler.wasm"
)

// Options configure Handler.
type Options struct {
	// ModelName is shown by the page and sent in its hello; it must match
	// the server's model name (server.Config.ModelName). Empty: the page
	// takes whatever the host serves.
	ModelName string
	// Config is the loaded model's configuration (model.Model.Config). Nil
	// serves /api/model as 404, and the page shows no model panel.
	Config *checkpoint.Config
	// Summary is the checkpoint's storage summary (checkpoint.Checkpoint.
	// Summary()), for the parameter counts by dtype; nil leaves them out.
	Summary *checkpoint.Summary
	// ContextLimit is the host's context limit (engine.ContextLimit()); 0
	// reports the model's MaxPositions.
	ContextLimit int
	// TokenizerJSON is the model's tokenizer.json, which the browser edge
	// module needs. Nil reads TokenizerPath.
	TokenizerJSON []byte
	// TokenizerPath is read once when TokenizerJSON is nil (typically
	// filepath.Join(checkpoint.Dir, "tokenizer.json")). When both are empty
	// the page cannot run the module and offers hosted mode.
	TokenizerPath string
	// AssetDir, when set, serves edge.wasm, wasm_exec.js and the C plugins
	// from this directory (the plugins also from its plugins/ directory)
	// instead of the embedded copies (for example "build/wasm" while
	// developing).
	AssetDir string
	// WSPath is the websocket path the page connects to (default "/ws").
	WSPath string
}

// ForCheckpoint fills the model fields of Options from an open checkpoint:
// its configuration, storage summary and tokenizer.json path.
func ForCheckpoint(ck *checkpoint.Checkpoint) Options {
	sum := ck.Summary()
	return Options{Config: ck.Config, Summary: &sum, TokenizerPath: filepath.Join(ck.Dir, "tokenizer.json")}
}

// HasEmbeddedModule reports whether the binary carries the browser edge
// module (playground/build.sh ran before it was built).
func HasEmbeddedModule() bool {
	_, err1 := fs.Stat(assets, "assets/"+ModuleFile)
	_, err2 := fs.Stat(assets, "assets/"+GlueFile)
	return err1 == nil && err2 == nil
}

type handler struct {
	opt   Options
	page  http.Handler
	info  []byte // /api/model JSON, nil when unknown
	tokMu sync.Mutex
	tok   []byte
	tokOK bool

	gzMu sync.Mutex
	gz   map[string]*gzEntry
}

type gzEntry struct {
	raw, gz []byte
	mod     time.Time
}

// Handler returns the playground's HTTP handler. Mount it as the fallback
// route ("/") of the server's mux, next to /ws.
func Handler(opt Options) http.Handler {
	if opt.WSPath == "" {
		opt.WSPath = "/ws"
	}
	h := &handler{opt: opt, page: http.FileServerFS(web.FS), gz: map[string]*gzEntry{}}
	if opt.TokenizerJSON != nil {
		h.tok, h.tokOK = opt.TokenizerJSON, true
	}
	if opt.Config != nil {
		info := NewModelInfo(opt.ModelName, *opt.Config, opt.Summary, opt.ContextLimit)
		b, err := json.Marshal(info)
		if err == nil {
			h.info = b
		}
	}
	return h
}

// ServeHTTP implements http.Handler.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	p := r.URL.Path
	switch {
	case p == "/api/model":
		h.serveModel(w, r)
	case p == "/api/tokenizer.json":
		h.serveTokenizer(w, r)
	case p == "/api/config.json":
		writeJSON(w, map[string]any{"ws_path": h.opt.WSPath, "model": h.opt.ModelName})
	case p == "/assets/"+ModuleFile || p == "/assets/"+GlueFile || p == "/assets/"+TokenizerFile || p == "/assets/"+SamplerFile:
		h.serveAsset(w, r, path.Base(p))
	case strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/assets/"):
		http.NotFound(w, r)
	default:
		if p == "/" || p == "/index.html" {
			// The module needs wasm-unsafe-eval; nothing else is inline.
			hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; "+
				"style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
		}
		hd.Set("Cache-Control", "no-cache")
		h.page.ServeHTTP(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func (h *handler) serveModel(w http.ResponseWriter, r *http.Request) {
	if h.info == nil {
		http.Error(w, "no model information", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(h.info)
}

func (h *handler) tokenizer() []byte {
	h.tokMu.Lock()
	defer h.tokMu.Unlock()
	if !h.tokOK && h.opt.TokenizerPath != "" {
		if b, err := os.ReadFile(h.opt.TokenizerPath); err == nil {
			h.tok = b
		}
		h.tokOK = true
	}
	return h.tok
}

func (h *handler) serveTokenizer(w http.ResponseWriter, r *http.Request) {
	b := h.tokenizer()
	if b == nil {
		http.Error(w, "this model has no tokenizer.json", http.StatusNotFound)
		return
	}
	h.serveBytes(w, r, "tokenizer.json", b, time.Time{}, "application/json")
}

// asset returns an edge module file's content.
func (h *handler) asset(name string) ([]byte, time.Time, error) {
	if h.opt.AssetDir != "" {
		p := filepath.Join(h.opt.AssetDir, name)
		st, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) { // wasm/build.sh's layout: build/wasm/plugins/
			p = filepath.Join(h.opt.AssetDir, "plugins", name)
			st, err = os.Stat(p)
		}
		if err != nil {
			return nil, time.Time{}, err
		}
		b, err := os.ReadFile(p)
		return b, st.ModTime(), err
	}
	b, err := assets.ReadFile("assets/" + name)
	return b, time.Time{}, err
}

func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	b, mod, err := h.asset(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.Error(w, "the browser edge module was not built into this binary (run wasm/build.sh and playground/build.sh)", http.StatusNotFound)
			return
		}
		http.Error(w, "reading "+name+" failed", http.StatusInternalServerError)
		return
	}
	ct := "text/javascript; charset=utf-8"
	if strings.HasSuffix(name, ".wasm") {
		ct = "application/wasm"
	}
	h.serveBytes(w, r, name, b, mod, ct)
}

// serveBytes serves b, gzip-compressed (once, then cached) when the client
// accepts it. X-Uncompressed-Length lets the page show download progress
// against the decoded size.
func (h *handler) serveBytes(w http.ResponseWriter, r *http.Request, name string, b []byte, mod time.Time, ct string) {
	hd := w.Header()
	hd.Set("Content-Type", ct)
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Uncompressed-Length", strconv.Itoa(len(b)))
	hd.Add("Vary", "Accept-Encoding")
	if len(b) < 1024 || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		http.ServeContent(w, r, name, mod, bytes.NewReader(b))
		return
	}
	h.gzMu.Lock()
	e := h.gz[name]
	if e == nil || len(e.raw) != len(b) || !mod.Equal(e.mod) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
		zw.Write(b)
		zw.Close()
		e = &gzEntry{raw: b, gz: buf.Bytes(), mod: mod}
		h.gz[name] = e
	}
	h.gzMu.Unlock()
	hd.Set("Content-Encoding", "gzip")
	hd.Set("Content-Length", strconv.Itoa(len(e.gz)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(e.gz)
}
