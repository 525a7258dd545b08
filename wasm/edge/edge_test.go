package edge

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/sampler"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

const corpus = "The quick brown fox jumps over the lazy dog. 🙂 héllo wörld, 你好世界! " +
	"Streaming must never emit half a character. The dog sleeps; the fox runs. "

func testTokenizer(t testing.TB) []byte {
	t.Helper()
	tj, err := tokenizer.BuildByteLevel(300, []byte(strings.Repeat(corpus, 4)), []string{"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"})
	if err != nil {
		t.Fatal(err)
	}
	return tj
}

// call runs fn through Call, so every test also covers the msgpack path.
func call[Rep any](t *testing.T, e *Edge, fn string, req any) (*Rep, error) {
	t.Helper()
	b, err := protocol.Marshal(req)
	if err != nil {
		t.Fatalf("marshal %T: %v", req, err)
	}
	rep := new(Rep)
	return rep, ParseResponse(e.Call(fn, b), rep)
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestTokenizeRoundTrip(t *testing.T) {
	e := New()
	info := must[*protocol.SessionInfo](t)(call[protocol.SessionInfo](t, e, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}))
	if info.Vocab != 302 {
		t.Fatalf("vocab = %d, want 302", info.Vocab)
	}
	tok, _ := tokenizer.Load(testTokenizer(t))
	for _, text := range []string{"", "The quick brown fox", "🙂 你好", "unseen ω text\n\n"} {
		ids := must[*protocol.IDsReply](t)(call[protocol.IDsReply](t, e, protocol.FnTokenize, &protocol.TextRequest{Handle: info.Handle, Text: text}))
		want, _ := tok.Encode(text)
		if !reflect.DeepEqual(toInt(ids.IDs), want) && len(want) > 0 {
			t.Fatalf("tokenize(%q) = %v, want %v", text, ids.IDs, want)
		}
		back := must[*protocol.TextReply](t)(call[protocol.TextReply](t, e, protocol.FnDetokenize, &protocol.IDsRequest{Handle: info.Handle, IDs: ids.IDs}))
		if back.Text != text {
			t.Fatalf("detokenize = %q, want %q", back.Text, text)
		}
	}
}

func TestStreamHoldsPartialUTF8(t *testing.T) {
	e := New()
	info := must[*protocol.SessionInfo](t)(call[protocol.SessionInfo](t, e, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}))
	st := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnStreamNew, &protocol.IDsRequest{Handle: info.Handle}))
	// Byte tokens 0..255 are the raw bytes: 🙂 = F0 9F 99 82 split over three pushes.
	steps := []struct {
		ids  []int32
		want string
	}{
		{[]int32{'a'}, "a"},
		{[]int32{0xf0}, ""},
		{[]int32{0x9f, 0x99}, ""},
		{[]int32{0x82, 'b'}, "🙂b"},
		{[]int32{0xe4}, ""},
	}
	for i, s := range steps {
		got := must[*protocol.TextReply](t)(call[protocol.TextReply](t, e, protocol.FnStreamPush, &protocol.IDsRequest{Handle: st.Handle, IDs: s.ids}))
		if got.Text != s.want {
			t.Fatalf("push %d = %q, want %q", i, got.Text, s.want)
		}
	}
	fl := must[*protocol.TextReply](t)(call[protocol.TextReply](t, e, protocol.FnStreamFlush, &protocol.HandleRequest{Handle: st.Handle}))
	if fl.Text != "\uFFFD" {
		t.Fatalf("flush = %q, want U+FFFD", fl.Text)
	}
}

func randLogits(n int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, n)
	for i := range l {
		l[i] = float32(r.NormFloat64() * 3)
	}
	return l
}

func TestSampleMatchesSampler(t *testing.T) {
	params := []protocol.SamplingParams{
		{},
		{Temperature: 0.8, TopP: 0.9, Seed: 42},
		{Temperature: 1, TopK: 40, MinP: 0.05, Seed: 7, LogProbs: true, TopLogProbs: 5},
		{Temperature: 0.7, RepetitionPenalty: 1.3, PresencePenalty: 0.5, Seed: 3, MaxTokens: 6},
	}
	for pi, p := range params {
		e := New()
		h := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnSamplerNew, &protocol.SamplerNew{Params: p}))
		ref, err := sampler.New(sampler.Params{Temperature: p.Temperature, TopK: int(p.TopK), TopP: p.TopP, MinP: p.MinP,
			RepetitionPenalty: p.RepetitionPenalty, PresencePenalty: p.PresencePenalty, Seed: p.Seed, MaxTokens: int(p.MaxTokens),
			LogProbs: p.LogProbs, TopLogProbs: int(p.TopLogProbs)})
		if err != nil {
			t.Fatal(err)
		}
		var hist []int32
		for step := range 6 {
			logits := randLogits(1000, uint64(step))
			got, err := call[protocol.SampleReply](t, e, protocol.FnSample, &protocol.SampleRequest{Handle: h.Handle, F32: EncodeF32(logits), History: hist})
			if err != nil {
				t.Fatalf("params %d step %d: %v", pi, step, err)
			}
			want, _ := ref.Sample(logits, toInt(hist))
			if int(got.ID) != want.ID || got.LogProb != want.LogProb || got.Finish != want.Finish.String() || len(got.Top) != len(want.Top) {
				t.Fatalf("params %d step %d: got %+v, want %+v", pi, step, got, want)
			}
			hist = append(hist, got.ID)
		}
	}
}

func TestSampleFloat16(t *testing.T) {
	e := New()
	h := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnSamplerNew, &protocol.SamplerNew{}))
	logits := []float32{0, 1, 5, 2}
	got := must[*protocol.SampleReply](t)(call[protocol.SampleReply](t, e, protocol.FnSample, &protocol.SampleRequest{Handle: h.Handle, F16: protocol.EncodeFloat16(logits)}))
	if got.ID != 2 {
		t.Fatalf("greedy f16 = %d, want 2", got.ID)
	}
}

func TestBadInput(t *testing.T) {
	e := New()
	info := must[*protocol.SessionInfo](t)(call[protocol.SessionInfo](t, e, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}))
	smp := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnSamplerNew, &protocol.SamplerNew{}))
	released := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnSamplerNew, &protocol.SamplerNew{}))
	must[*protocol.Empty](t)(call[protocol.Empty](t, e, protocol.FnRelease, &protocol.HandleRequest{Handle: released.Handle}))
	enc := func(v any) []byte { b, _ := protocol.Marshal(v); return b }
	raw := func(v any) []byte { b, _ := protocolMarshalUnchecked(v); return b }
	tests := []struct {
		name, fn string
		req      []byte
		code     string
		text     string
	}{
		{"unknown fn", "edge_nope", nil, protocol.CodeInvalid, "unknown function"},
		{"garbage", protocol.FnTokenize, []byte{0xc1, 2, 3}, protocol.CodeInvalid, "reserved"},
		{"empty", protocol.FnTokenize, nil, protocol.CodeInvalid, "truncated"},
		{"bad tokenizer", protocol.FnSessionNew, enc(&protocol.SessionNew{Tokenizer: []byte("{}")}), protocol.CodeInvalid, "tokenizer"},
		{"handle 0", protocol.FnTokenize, raw(&protocol.TextRequest{Text: "x"}), protocol.CodeInvalid, "handle"},
		{"unknown handle", protocol.FnTokenize, enc(&protocol.TextRequest{Handle: 999, Text: "x"}), protocol.CodeInvalid, "not a live session"},
		{"wrong kind", protocol.FnTokenize, enc(&protocol.TextRequest{Handle: smp.Handle, Text: "x"}), protocol.CodeInvalid, "not a live session"},
		{"released", protocol.FnSample, enc(&protocol.SampleRequest{Handle: released.Handle, F32: EncodeF32([]float32{1})}), protocol.CodeInvalid, "not a live sampler"},
		{"id out of vocab", protocol.FnDetokenize, enc(&protocol.IDsRequest{Handle: info.Handle, IDs: []int32{5000}}), protocol.CodeInvalid, "5000"},
		{"bad params", protocol.FnSamplerNew, raw(&protocol.SamplerNew{Params: protocol.SamplingParams{TopP: 2}}), protocol.CodeInvalid, "top_p"},
		{"no logits", protocol.FnSample, raw(&protocol.SampleRequest{Handle: smp.Handle}), protocol.CodeInvalid, "exactly one"},
		{"engram without config", protocol.FnEngramNew, enc(&protocol.HandleRequest{Handle: info.Handle}), protocol.CodeInvalid, "no Engram config"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := ParseResponse(e.Call(tc.fn, tc.req), &protocol.Empty{})
			var pe *protocol.Error
			if !errors.As(err, &pe) {
				t.Fatalf("want a protocol.Error, got %v", err)
			}
			if pe.Code != tc.code || !strings.Contains(pe.Message, tc.text) {
				t.Fatalf("got %s %q, want %s containing %q", pe.Code, pe.Message, tc.code, tc.text)
			}
		})
	}
	if e.Live() != 2 {
		t.Fatalf("live handles = %d, want 2", e.Live())
	}
}
