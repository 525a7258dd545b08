package edge

import (
	"errors"
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
)

// FuzzCall feeds arbitrary requests to every ABI function of an Edge that
// holds a session, a stream and a sampler: the response must always parse,
// and no input may reach a recovered panic ("internal").
func FuzzCall(f *testing.F) {
	tj := testTokenizer(f)
	seeds := []any{
		&protocol.TextRequest{Handle: 1, Text: "the fox 🙂"},
		&protocol.IDsRequest{Handle: 1, IDs: []int32{1, 2, 300}},
		&protocol.IDsRequest{Handle: 2, IDs: []int32{0xf0, 0x9f}},
		&protocol.HandleRequest{Handle: 2},
		&protocol.SampleRequest{Handle: 3, F32: EncodeF32([]float32{1, 2, 3})},
		&protocol.SampleRequest{Handle: 3, F16: protocol.EncodeFloat16([]float32{1, 2}), History: []int32{1}},
		&protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 1, TopK: 3, LogitBias: map[int32]float32{1: 5}}},
		&protocol.ChatRequest{Handle: 1, Messages: []protocol.ChatMessage{{Role: "user", Content: "hi"}}, Tokenize: true},
	}
	for i, s := range seeds {
		b, err := protocol.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), b)
	}
	f.Fuzz(func(t *testing.T, fn uint8, req []byte) {
		e := New()
		must := func(rep any, err error) {
			if err != nil {
				t.Fatal(err)
			}
		}
		info, err := e.SessionNew(&protocol.SessionNew{Tokenizer: tj})
		must(info, err)
		st, err := e.StreamNew(&protocol.IDsRequest{Handle: info.Handle})
		must(st, err)
		sm, err := e.SamplerNew(&protocol.SamplerNew{Params: protocol.SamplingParams{Temperature: 0.5, LogProbs: true, TopLogProbs: 2}})
		must(sm, err)
		name := protocol.Functions[int(fn)%len(protocol.Functions)]
		if name == protocol.FnSessionNew {
			return // tokenizer.json parsing is fuzzed by wasm/tokenizer
		}
		err = ParseResponse(e.Call(name, req), &struct{}{})
		var pe *protocol.Error
		if errors.As(err, &pe) && pe.Code == protocol.CodeInternal {
			t.Fatalf("%s: internal error: %s", name, pe.Message)
		}
	})
}
