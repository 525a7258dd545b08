package server

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/abiedge"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/protocol"
	// The tokenizer builder makes a test tokenizer.json; only tests import
	// wasm/ from host/.
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

// wasmFixture is a server whose engine runs the embedded Go edge in wazero
// the way `edgeseek serve` does: a template instance that loaded the
// tokenizer, and one instance per request started from its snapshot, with
// the sampler module chosen as by serve's --sampler flag (""/builtin: the
// embedded C sampler in front; edgehost.SamplerEdge: the Go edge samples).
// It returns a counter of the instances spawned.
func wasmFixture(t testing.TB, ecfg engine.Config, samplerChoice string) (*fixture, *atomic.Int64) {
	t.Helper()
	ctx := context.Background()
	tj, err := tokenizer.BuildByteLevel(400, []byte(strings.Repeat("session user assistant system the quick brown fox jumps over the lazy dog. ", 30)),
		[]string{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"})
	if err != nil {
		t.Fatal(err)
	}
	rt, err := edgehost.New(ctx, edgehost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	mod, err := rt.CompileEmbedded(ctx)
	if err != nil {
		rt.Close(ctx)
		t.Skipf("embedded edge module unavailable: %v", err)
	}
	var info protocol.SessionInfo
	tmpl, first, err := mod.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) (err error) {
		info, err = abiedge.OpenSession(ctx, in, tj, 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// As serve does: the embedded C tokenizer encodes prompts.
	tmod, err := rt.CompileTokenizer(ctx, edgehost.TokenizerBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	ttmpl, err := abiedge.TokenizerTemplate(ctx, tmod, first, info.Handle)
	if err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	smod, err := rt.CompileSampler(ctx, samplerChoice)
	if err != nil {
		t.Fatal(err)
	}
	// As serve does: closed sessions' instances are kept and reset for the
	// next requests, so the tests below also run on recycled instances.
	tmpl.KeepSpares(2)
	var stmpl *edgehost.Template
	if smod != nil {
		if stmpl, err = abiedge.SamplerTemplate(ctx, smod, int(info.Vocab)); err != nil {
			t.Fatal(err)
		}
		stmpl.KeepSpares(8)
	}
	// As serve does: the shared instance has the tokenizer plugin, the
	// requests' instances the sampler.
	own, spawn := abiedge.FromTemplate(tmpl, ttmpl), abiedge.FromTemplate(tmpl, stmpl)
	spawned := new(atomic.Int64)
	count := func(sp abiedge.Spawn) abiedge.Spawn {
		return func(ctx context.Context) (abiedge.Conn, error) {
			spawned.Add(1)
			return sp(ctx)
		}
	}
	ed, err := abiedge.NewSpawningFor(ctx, count(own), count(spawn), info, 0)
	if err != nil {
		t.Fatal(err)
	}
	r := enginetest.NewRunner()
	r.Cfg.VocabSize = int(info.Vocab)
	r.Cfg.BOS, r.Cfg.EOS = 0, 1
	eng, err := engine.New(r, ed, ecfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Config{}, eng, zerolog.Nop()))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	f := &fixture{r: r, eng: eng, srv: srv, cl: &http.Client{Transport: tr, Timeout: 20 * time.Minute}}
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
		eng.Close()
		ed.Close()
		rt.Close(ctx)
	})
	return f, spawned
}

// TestWasmSamplersAgree: the embedded C sampler that serve puts in front of
// the Go edge picks exactly the tokens the Go edge's own sampler picks, for
// seeded requests with every kind of sampling parameter, through HTTP, the
// engine and per-request wazero instances.
func TestWasmSamplersAgree(t *testing.T) {
	fc, _ := wasmFixture(t, engine.Config{PrefixCacheBytes: -1}, edgehost.SamplerBuiltin)
	fg, _ := wasmFixture(t, engine.Config{PrefixCacheBytes: -1}, edgehost.SamplerEdge)
	bodies := []map[string]any{
		{"temperature": 0.0},
		{"temperature": 0.8, "top_p": 0.95},
		{"temperature": 1.0, "top_k": 40, "min_p": 0.05},
		{"temperature": 1.3, "top_p": 0.5, "presence_penalty": 1.5, "frequency_penalty": 0.5},
		{"temperature": 0.7, "repetition_penalty": 1.3, "logit_bias": map[string]any{"5": 50, "17": -100}},
		{"temperature": 2.0},
	}
	for i, b := range bodies {
		b["messages"] = []any{map[string]any{"role": "user", "content": fmt.Sprintf("the quick brown fox %d", i)}}
		b["max_tokens"], b["seed"], b["ignore_eos"] = 200, 7+i, true
		c, _, _, _ := chatStream(t, fc, b)
		g, _, _, _ := chatStream(t, fg, b)
		if c != g {
			t.Errorf("request %d (%v): C sampler\n%q\nGo edge\n%q", i, b, c, g)
		}
		if len(c) == 0 {
			t.Errorf("request %d: no text", i)
		}
	}
}
