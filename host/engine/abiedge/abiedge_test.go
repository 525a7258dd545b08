package abiedge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/abiedge"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
	"github.com/rs/zerolog"
)

// native calls the Go edge in process through the same ABI bytes.
type native struct{ e *edge.Edge }

func (n native) Invoke(_ context.Context, fn string, req, rep any) error {
	b, err := protocol.Marshal(req)
	if err != nil {
		return err
	}
	return edge.ParseResponse(n.e.Call(fn, b), rep)
}

func testTokenizer(t testing.TB) []byte {
	corpus := strings.Repeat("the quick brown fox jumps over the lazy dog. user: assistant: system: ", 20)
	tj, err := tokenizer.BuildByteLevel(400, []byte(corpus), []string{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"})
	if err != nil {
		t.Fatal(err)
	}
	return tj
}

// embeddedEdge returns a runtime (closed when t ends) and the embedded Go
// edge compiled in it; t is skipped when the module was not built.
func embeddedEdge(t *testing.T) (*edgehost.Runtime, *edgehost.Module) {
	t.Helper()
	ctx := context.Background()
	rt, err := edgehost.New(ctx, edgehost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(ctx) })
	mod, err := rt.CompileEmbedded(ctx)
	if err != nil {
		t.Skipf("embedded edge module unavailable: %v", err)
	}
	return rt, mod
}

func generate(t *testing.T, ed *abiedge.Edge) string {
	r := enginetest.NewRunner()
	r.Cfg.VocabSize = ed.Vocab() // every sampled id decodes
	e, err := engine.New(r, ed, engine.Config{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	prompt, err := ed.Encode("the quick fox")
	if err != nil || len(prompt) == 0 {
		t.Fatalf("encode: %v %v", prompt, err)
	}
	st, err := e.Submit(context.Background(), engine.Request{Prompt: prompt, MaxTokens: 20, IgnoreEOS: true,
		Sampling: engine.SamplerParams{Temperature: 1, Seed: 11, LogProbs: true, TopLogProbs: 2}})
	if err != nil {
		t.Fatal(err)
	}
	text, n := "", 0
	for ev := range st.Events {
		text += ev.Text
		if ev.Kind == engine.EventToken {
			n++
			if len(ev.Token.Top) != 2 {
				t.Fatalf("top %v", ev.Token.Top)
			}
		}
	}
	if n != 20 {
		t.Fatalf("%d tokens", n)
	}
	return text
}

func TestABIEdgeMatchesNativeSampler(t *testing.T) {
	ge := edge.New()
	ed, err := abiedge.New(context.Background(), native{ge}, testTokenizer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := ed.Encode("the lazy dog")
	if err != nil || len(ids) == 0 {
		t.Fatalf("encode %v %v", ids, err)
	}
	chat, err := ed.EncodeChat([]engine.Message{{Role: "user", Content: "the quick fox"}}, engine.ChatOptions{})
	if err != nil || len(chat) <= 3 {
		t.Fatalf("chat: %v %v", chat, err)
	}
	before := ge.Live()
	generate(t, ed)
	if got := ge.Live(); got != before {
		t.Fatalf("%d live objects in the edge after the request, want %d (stream and sampler released)", got, before)
	}
	// The module's sampler and the native one agree token for token.
	s1, _ := ed.NewSampler(engine.SamplerParams{Temperature: 1, Seed: 5})
	s2, _ := nativeedge.NewSampler(engine.SamplerParams{Temperature: 1, Seed: 5})
	logits := make([]float32, 400)
	for i := range logits {
		logits[i] = float32((i*7919)%100) / 25
	}
	for i := 0; i < 10; i++ {
		a, err1 := s1.Sample(logits, nil)
		b, err2 := s2.Sample(logits, nil)
		if err1 != nil || err2 != nil || a.ID != b.ID {
			t.Fatalf("step %d: module %d (%v), native %d (%v)", i, a.ID, err1, b.ID, err2)
		}
	}
}

// TestABIEdgeInWazero runs the engine on the embedded Go edge in wazero,
// through one instance and through per-request instances started from a
// template's snapshot, and compares with the native edge.
func TestABIEdgeInWazero(t *testing.T) {
	ctx := context.Background()
	t0 := time.Now()
	_, mod := embeddedEdge(t)
	in, err := mod.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(ctx)
	t.Logf("compile+instantiate %v", time.Since(t0))
	ed, err := abiedge.New(ctx, in, testTokenizer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	nat, err := abiedge.New(ctx, native{edge.New()}, testTokenizer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := generate(t, nat)
	if got := generate(t, ed); got != want {
		t.Fatalf("wazero edge %q, native %q", got, want)
	}
	var info protocol.SessionInfo
	tmpl, first, err := mod.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) (err error) {
		info, err = abiedge.OpenSession(ctx, in, testTokenizer(t), 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	if !tmpl.Snapshotted() {
		t.Fatal("the Go edge's template does not snapshot")
	}
	spawn := abiedge.FromTemplate(tmpl, nil)
	spawned := 0
	sp, err := abiedge.NewSpawning(ctx, func(ctx context.Context) (abiedge.Conn, error) {
		spawned++
		return spawn(ctx)
	}, info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if got := generate(t, sp); got != want {
		t.Fatalf("per-request wazero instances %q, native %q", got, want)
	}
	if spawned != 2 {
		t.Fatalf("%d instances spawned, want 2 (the edge's own and the request's)", spawned)
	}
}

// TestSamplerTemplate: the sampler template's warm-up grows the module's
// memory for the vocabulary, so a session over that vocabulary leaves its
// instance at the snapshot's size and the instance is kept for the next;
// a warm-up the module refuses (here: an empty vocabulary) still gives a
// working template.
func TestSamplerTemplate(t *testing.T) {
	ctx := context.Background()
	rt, err := edgehost.New(ctx, edgehost.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)
	smod, err := rt.CompileSampler(ctx, edgehost.SamplerBuiltin)
	if err != nil {
		t.Skipf("embedded sampler unavailable: %v", err)
	}
	const vocab = 5000
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(i%97) / 10
	}
	session := func(tm *edgehost.Template, n int) *edgehost.Instance {
		t.Helper()
		in, err := tm.Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var h protocol.HandleReply
		params := protocol.SamplingParams{Temperature: 0.7, TopP: 0.9, RepetitionPenalty: 1.2, LogProbs: true, TopLogProbs: 5, Seed: 3}
		if err := in.Invoke(ctx, protocol.FnSamplerNew, &protocol.SamplerNew{Params: params}, &h); err != nil {
			t.Fatal(err)
		}
		var rep protocol.SampleReply
		req := protocol.AppendSampleRequestF32(nil, h.Handle, logits[:n], []int32{4, 5, 6})
		if err := in.Invoke(ctx, protocol.FnSample, protocol.Raw(req), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.ID < 0 || int(rep.ID) >= n || len(rep.Top) != 5 {
			t.Fatalf("sample: %+v", rep)
		}
		return in
	}
	tm, err := abiedge.SamplerTemplate(ctx, smod, vocab)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close(ctx)
	tm.KeepSpares(1)
	session(tm, vocab).Close(ctx)
	if n := tm.Spares(); n != 1 {
		t.Fatalf("%d spares after a session over the warmed vocabulary, want 1 (memory grew past the snapshot)", n)
	}
	tm0, err := abiedge.SamplerTemplate(ctx, smod, 0)
	if err != nil {
		t.Fatalf("a refused warm-up: %v", err)
	}
	defer tm0.Close(ctx)
	session(tm0, 100).Close(ctx)
}

// TestTokenizerPlugin runs the Go edge behind the C tokenizer and the C
// sampler, as serve does: prompts and chats encode to the native edge's
// ids, generation gives the native edge's text, and handles are released
// in the module that made them (the Go edge's stream and the C sampler's
// sampler can have the same number).
func TestTokenizerPlugin(t *testing.T) {
	ctx := context.Background()
	rt, mod := embeddedEdge(t)
	var info protocol.SessionInfo
	tmpl, first, err := mod.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) (err error) {
		info, err = abiedge.OpenSession(ctx, in, testTokenizer(t), 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	tmod, err := rt.CompileTokenizer(ctx, edgehost.TokenizerBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	ttmpl, err := abiedge.TokenizerTemplate(ctx, tmod, first, info.Handle)
	if err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	smod, err := rt.CompileSampler(ctx, edgehost.SamplerBuiltin)
	if err != nil {
		t.Fatal(err)
	}
	stmpl, err := abiedge.SamplerTemplate(ctx, smod, int(info.Vocab))
	if err != nil {
		t.Fatal(err)
	}
	// As serve does: the shared instance with the tokenizer plugin, each
	// request's with the sampler plugin.
	var own, last *edgehost.Chain
	capture := func(sp abiedge.Spawn, into **edgehost.Chain) abiedge.Spawn {
		return func(ctx context.Context) (abiedge.Conn, error) {
			c, err := sp(ctx)
			if err == nil {
				*into = c.(*edgehost.Chain)
			}
			return c, err
		}
	}
	sp, err := abiedge.NewSpawningFor(ctx, capture(abiedge.FromTemplate(tmpl, ttmpl), &own), capture(abiedge.FromTemplate(tmpl, stmpl), &last), info, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	if own.Owner(protocol.FnTokenize).Module() != tmod || own.Owner(protocol.FnSample).Module() != mod {
		t.Fatal("the shared chain does not route tokenize to the tokenizer plugin")
	}
	nat, err := abiedge.New(ctx, native{edge.New()}, testTokenizer(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	text := "the quick brown fox <｜end▁of▁sentence｜> jumps 12345 over the lazy dog.\n\n  user: hi"
	got, err := sp.Encode(text)
	want, _ := nat.Encode(text)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || len(got) < 10 {
		t.Fatalf("Encode: %v %v, native %v", got, err, want)
	}
	msgs := []engine.Message{{Role: "system", Content: "be brief"}, {Role: "user", Content: text}}
	got, err = sp.EncodeChat(msgs, engine.ChatOptions{})
	want, _ = nat.EncodeChat(msgs, engine.ChatOptions{})
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) || len(got) < 10 {
		t.Fatalf("EncodeChat: %v %v, native %v", got, err, want)
	}
	if g, w := generate(t, sp), generate(t, nat); g != w {
		t.Fatalf("generated %q, native %q", g, w)
	}

	se, err := sp.NewSessionEdge(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	c := last
	if c.Owner(protocol.FnSample).Module() != smod || c.Owner(protocol.FnTokenize).Module() != mod {
		t.Fatal("a request's chain does not route sampling to the sampler plugin")
	}
	d := se.NewDetok()
	if _, err := d.Push(5); err != nil {
		t.Fatal(err)
	}
	s, err := se.NewSampler(engine.SamplerParams{Temperature: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Both are handle 2: the Go edge's first object after the session, the
	// C sampler's after the one its template's warm-up made and released.
	push := func() error {
		return c.Invoke(ctx, protocol.FnStreamPush, &protocol.IDsRequest{Handle: 2, IDs: []int32{5}}, &protocol.TextReply{})
	}
	sample := func() error {
		req := protocol.AppendSampleRequestF32(nil, 2, make([]float32, info.Vocab), nil)
		return c.Invoke(ctx, protocol.FnSample, protocol.Raw(req), &protocol.SampleReply{})
	}
	if push() != nil || sample() != nil {
		t.Fatalf("stream 2 / sampler 2 not live: %v / %v", push(), sample())
	}
	d.(interface{ Release() }).Release()
	if err := push(); err == nil || sample() != nil {
		t.Fatalf("after the stream's release: push %v, sample %v", err, sample())
	}
	s.(interface{ Release() }).Release()
	if err := sample(); err == nil {
		t.Fatal("the sampler is still live after its release")
	}
}
