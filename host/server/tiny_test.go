package server

import (
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/protocol"
)

// The HTTP paths on the tiny random V4 checkpoint (model/synth): streaming
// and non-streaming agree, and concurrent sessions match solo runs.
func TestTinyModelOverHTTP(t *testing.T) {
	r, release, err := enginetest.TinyModel(t.TempDir(), checkpoint.ArchV4, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release) // runs after the fixture's cleanup has closed the engine
	f := newFixture(t, r, engine.Config{PrefixCacheBytes: -1, PrefillChunk: 16}, Config{})
	body := func() map[string]any {
		return map[string]any{"messages": []any{map[string]any{"role": "user", "content": strings.Repeat("tiny model ", 6)}},
			"max_tokens": 12, "seed": 3, "temperature": 0.9, "ignore_eos": true, "logprobs": true, "top_logprobs": 3}
	}
	resp, b := f.post(t, "/v1/chat/completions", body())
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := decode(t, b)
	want := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
	if u := m["usage"].(map[string]any); u["completion_tokens"] != float64(12) {
		t.Fatalf("usage %v", u)
	}
	got, finish, lps, _ := chatStream(t, f, body())
	if got != want || finish != "length" || lps != 12 {
		t.Fatalf("stream %q %s %d, want %q length 12", got, finish, lps, want)
	}
	concurrentHTTP(t, f, 4, 12)
}

// Split-mode steps that ask for them carry the indexer's selections for
// every CSA layer and each layer's mHC mixing matrix.
func TestWebsocketTrace(t *testing.T) {
	r, release, err := enginetest.TinyModel(t.TempDir(), checkpoint.ArchV4, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	f := newFixture(t, r, engine.Config{PrefixCacheBytes: -1}, Config{})
	c := dialWS(t, f, nil)
	w := hello(t, c, protocol.ModeSplit)
	if w.CSALayers != 2 || w.MHCLayers != 6 {
		t.Fatalf("welcome announces %d CSA and %d mHC layers, want 2 and 6", w.CSALayers, w.MHCLayers)
	}
	toks := make([]int32, 60)
	for i := range toks {
		toks[i] = int32(7 * i % 500)
	}
	wsSend(t, c, &protocol.Step{Seq: 1, Tokens: toks, TopN: 5, WantCSA: true, WantMHC: true})
	l, ok := wsRecv(t, c).(*protocol.Logits)
	if !ok {
		t.Fatal("no logits")
	}
	if len(l.CSA) != 2 || l.CSA[0].Layer != 2 || l.CSA[1].Layer != 4 {
		t.Fatalf("csa %+v", l.CSA)
	}
	// Position 59 sees 15 compressed entries; the tiny model's indexer keeps 8.
	for _, s := range l.CSA {
		if len(s.Positions) != 8 {
			t.Errorf("layer %d selected %v, want 8 entries", s.Layer, s.Positions)
		}
		for _, p := range s.Positions {
			if p < 0 || p >= 15 {
				t.Errorf("layer %d selected invisible entry %d", s.Layer, p)
			}
		}
	}
	if len(l.MHC) != 6 {
		t.Fatalf("%d mHC matrices, want 6", len(l.MHC))
	}
	for _, m := range l.MHC {
		for k := 0; k < 4; k++ { // Sinkhorn ends with a column normalisation
			s := m.M[k] + m.M[4+k] + m.M[8+k] + m.M[12+k]
			if s < 0.999 || s > 1.001 {
				t.Errorf("layer %d column %d sums to %v", m.Layer, k, s)
			}
		}
	}
	// Without the request, no extras.
	wsSend(t, c, &protocol.Step{Seq: 2, Pos: 60, Tokens: []int32{3}, TopN: 5})
	if l := wsRecv(t, c).(*protocol.Logits); l.CSA != nil || l.MHC != nil {
		t.Fatalf("unrequested trace: %+v %+v", l.CSA, l.MHC)
	}
}
