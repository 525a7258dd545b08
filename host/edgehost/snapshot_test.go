package edgehost_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/edgehost"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/edge"
)

// TestTemplateInstances: instances started from a template's snapshot
// behave like the prepared instance (same session handle, same tokens and
// samples as the native edge) and are independent of each other; modules
// that cannot be snapshotted get the setup replayed instead.
func TestTemplateInstances(t *testing.T) {
	ctx := context.Background()
	tj := testTokenizer(t)
	native := edge.New()
	var ni protocol.SessionInfo
	if err := nativeCall(t, native, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &ni); err != nil {
		t.Fatal(err)
	}
	var want protocol.IDsReply
	if err := nativeCall(t, native, protocol.FnTokenize, &protocol.TextRequest{Handle: ni.Handle, Text: corpus}, &want); err != nil {
		t.Fatal(err)
	}
	logits := randLogits(4000, 3)
	params := &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.9, TopP: 0.9, Seed: 42}}
	var nsh protocol.HandleReply
	if err := nativeCall(t, native, protocol.FnSamplerNew, params, &nsh); err != nil {
		t.Fatal(err)
	}
	var wantIDs []int32
	for range 5 {
		var rep protocol.SampleReply
		if err := nativeCall(t, native, protocol.FnSample, &protocol.SampleRequest{Handle: nsh.Handle, F32: edge.EncodeF32(logits)}, &rep); err != nil {
			t.Fatal(err)
		}
		wantIDs = append(wantIDs, rep.ID)
	}

	for _, c := range []struct {
		name     string
		cfg      edgehost.Config
		snapshot bool
	}{
		{"instrumented", edgehost.Config{}, true},
		{"CloseOnContextDone", edgehost.Config{CloseOnContextDone: true}, false},
	} {
		r := newRuntime(t, c.cfg)
		m, err := r.CompileEmbedded(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var session protocol.Handle
		setups := 0
		t0 := time.Now()
		tmpl, first, err := m.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) error {
			setups++
			var info protocol.SessionInfo
			err := in.Invoke(ctx, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: tj}, &info)
			session = info.Handle
			return err
		})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		setupTook := time.Since(t0)
		first.Close(ctx)
		if tmpl.Snapshotted() != c.snapshot {
			t.Fatalf("%s: snapshotted %v, want %v", c.name, tmpl.Snapshotted(), c.snapshot)
		}
		var insts []*edgehost.Instance
		for i := range 3 {
			t1 := time.Now()
			in, err := tmpl.Instantiate(ctx)
			if err != nil {
				t.Fatalf("%s: instance %d: %v", c.name, i, err)
			}
			t.Logf("%s: instance %d ready in %v (template setup %v)", c.name, i, time.Since(t1), setupTook)
			defer in.Close(ctx)
			insts = append(insts, in)
		}
		if wantSetups := map[bool]int{true: 1, false: 4}[c.snapshot]; setups != wantSetups {
			t.Errorf("%s: setup ran %d times, want %d", c.name, setups, wantSetups)
		}
		for i, in := range insts {
			var got protocol.IDsReply
			if err := in.Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: session, Text: corpus}, &got); err != nil {
				t.Fatalf("%s: instance %d: tokenize: %v", c.name, i, err)
			}
			if !slices.Equal(got.IDs, want.IDs) {
				t.Fatalf("%s: instance %d tokenizes differently from the native edge", c.name, i)
			}
		}
		// Each instance has its own objects: samplers created in two of
		// them draw the same seeded sequence, unaffected by each other.
		var handles [2]protocol.HandleReply
		for i := range 2 {
			if err := insts[i].Invoke(ctx, protocol.FnSamplerNew, params, &handles[i]); err != nil {
				t.Fatal(err)
			}
		}
		for step := range wantIDs {
			for i := range 2 {
				var rep protocol.SampleReply
				if err := insts[i].Invoke(ctx, protocol.FnSample, &protocol.SampleRequest{Handle: handles[i].Handle, F32: edge.EncodeF32(logits)}, &rep); err != nil {
					t.Fatal(err)
				}
				if rep.ID != wantIDs[step] {
					t.Fatalf("%s: instance %d step %d sampled %d, native %d", c.name, i, step, rep.ID, wantIDs[step])
				}
			}
		}
		// Releasing the session in one instance leaves the others intact.
		if err := insts[0].Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: session}, &protocol.Empty{}); err != nil {
			t.Fatal(err)
		}
		var pe *protocol.Error
		if err := insts[0].Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: session, Text: "x"}, &protocol.IDsReply{}); !errors.As(err, &pe) {
			t.Fatalf("%s: tokenize with a released session = %v, want a protocol error", c.name, err)
		}
		if err := insts[1].Invoke(ctx, protocol.FnTokenize, &protocol.TextRequest{Handle: session, Text: "x"}, &protocol.IDsReply{}); err != nil {
			t.Fatalf("%s: another instance lost its session: %v", c.name, err)
		}
	}
}

// TestSnapshotRefusesOtherModule: a snapshot only seeds its own module.
func TestSnapshotRefusesOtherModule(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	m2, err := r.Compile(ctx, "loop", plugin(1, 1, loopBody))
	if err != nil {
		t.Fatal(err)
	}
	in := goEdge(t, r)
	snap, err := in.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if snap.Bytes() < 1<<20 {
		t.Fatalf("snapshot of the Go edge has %d bytes", snap.Bytes())
	}
	if _, err := m2.InstantiateFrom(ctx, snap); err == nil {
		t.Fatal("a snapshot seeded another module's instance")
	}
}

// TestTemplateKeepSpares: a closed instance's module is kept (up to the
// limit) and the next instance starts from it reset to the snapshot — none
// of the closed session's state survives and it answers exactly as the
// first did — while failed instances, instances whose memory grew and
// instances beyond the limit are closed instead.
func TestTemplateKeepSpares(t *testing.T) {
	ctx := context.Background()
	r := newRuntime(t, edgehost.Config{})
	m, err := r.Compile(ctx, "sampler", samplerCBytes(t))
	if err != nil {
		t.Fatal(err)
	}
	logits := randLogits(5000, 3)
	params := &protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.8, TopP: 0.9, LogProbs: true, TopLogProbs: 3, Seed: 7}}
	sample := func(in *edgehost.Instance, h protocol.Handle, l []float32) (protocol.SampleReply, error) {
		var rep protocol.SampleReply
		err := in.Invoke(ctx, protocol.FnSample, protocol.Raw(protocol.AppendSampleRequestF32(nil, h, l, nil)), &rep)
		return rep, err
	}
	// The setup samples once, so that the snapshot holds the grown scratch.
	tmpl, first, err := m.NewTemplate(ctx, func(ctx context.Context, in *edgehost.Instance) error {
		var h protocol.HandleReply
		if err := in.Invoke(ctx, protocol.FnSamplerNew, params, &h); err != nil {
			return err
		}
		if _, err := sample(in, h.Handle, logits); err != nil {
			return err
		}
		return in.Invoke(ctx, protocol.FnRelease, &protocol.HandleRequest{Handle: h.Handle}, &protocol.Empty{})
	})
	if err != nil {
		t.Fatal(err)
	}
	first.Close(ctx)
	tmpl.KeepSpares(1)
	t.Cleanup(func() { tmpl.Close(ctx) })
	// A session: a sampler left open and three draws.
	session := func(in *edgehost.Instance) (protocol.Handle, []protocol.SampleReply) {
		var h protocol.HandleReply
		if err := in.Invoke(ctx, protocol.FnSamplerNew, params, &h); err != nil {
			t.Fatal(err)
		}
		var reps []protocol.SampleReply
		for range 3 {
			rep, err := sample(in, h.Handle, logits)
			if err != nil {
				t.Fatal(err)
			}
			reps = append(reps, rep)
		}
		return h.Handle, reps
	}
	in1, err := tmpl.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	h1, want := session(in1)
	in1.Close(ctx)
	if n := tmpl.Spares(); n != 1 {
		t.Fatalf("%d spares after a healthy close, want 1", n)
	}
	if _, err := sample(in1, h1, logits); err == nil {
		t.Fatal("a closed instance still answers")
	}
	in2, err := tmpl.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := tmpl.Spares(); n != 0 {
		t.Fatalf("%d spares after reuse, want 0", n)
	}
	// The closed session's sampler is gone, and the same session gets the
	// same handle and the same draws.
	if _, err := sample(in2, h1, logits); err == nil {
		t.Fatalf("handle %d of the closed session still samples after the reset", h1)
	}
	h2, got := session(in2)
	if h2 != h1 || !reflect.DeepEqual(got, want) {
		t.Fatalf("reset instance: handle %d, draws %+v; fresh instance: handle %d, draws %+v", h2, got, h1, want)
	}
	// Memory grown past the snapshot's (a vocabulary 40× larger): closed.
	if _, err := sample(in2, h2, randLogits(200000, 4)); err != nil {
		t.Fatal(err)
	}
	in2.Close(ctx)
	if n := tmpl.Spares(); n != 0 {
		t.Fatalf("%d spares after closing an instance whose memory grew, want 0", n)
	}
	// A failed instance (a module that traps): closed; a healthy one of the
	// same template is kept.
	tm, err := r.Compile(ctx, "trap", plugin(1, 1, trapBody))
	if err != nil {
		t.Fatal(err)
	}
	trapT, trapFirst, err := tm.NewTemplate(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	trapFirst.Close(ctx)
	trapT.KeepSpares(1)
	bad, err := trapT.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Call(ctx, protocol.FnSample, []byte{0x80}); !errors.Is(err, edgehost.ErrModuleFailed) {
		t.Fatalf("trapping call: %v", err)
	}
	bad.Close(ctx)
	if n := trapT.Spares(); n != 0 {
		t.Fatalf("%d spares after closing a trapped instance, want 0", n)
	}
	good, err := trapT.Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	good.Close(ctx)
	if n := trapT.Spares(); n != 1 {
		t.Fatalf("%d spares after closing an unused instance, want 1", n)
	}
	trapT.Close(ctx)
	// No more than the limit.
	a, _ := tmpl.Instantiate(ctx)
	b, _ := tmpl.Instantiate(ctx)
	a.Close(ctx)
	b.Close(ctx)
	if n := tmpl.Spares(); n != 1 {
		t.Fatalf("%d spares with a limit of 1", n)
	}
	tmpl.Close(ctx)
	if n := tmpl.Spares(); n != 0 {
		t.Fatalf("%d spares after Template.Close", n)
	}
}
