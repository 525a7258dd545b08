package server

import (
	"context"
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
// tokenizer, and one instance per request started from its snapshot. It
// returns a counter of the instances spawned.
func wasmFixture(t testing.TB, ecfg engine.Config) (*fixture, *atomic.Int64) {
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
	first.Close(ctx)
	spawn := abiedge.FromTemplate(tmpl)
	spawned := new(atomic.Int64)
	ed, err := abiedge.NewSpawning(ctx, func(ctx context.Context) (abiedge.Conn, error) {
		spawned.Add(1)
		return spawn(ctx)
	}, info, 0)
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
