package edgehost_test

import (
	"context"
	"errors"
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
