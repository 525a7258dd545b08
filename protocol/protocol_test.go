package protocol

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func f32p(f float32) *float32 { return &f }

// sampleMessages returns one valid message of every type.
func sampleMessages() []Message {
	return []Message{
		&Hello{MinVersion: 1, MaxVersion: 1, Mode: ModeSplit, Client: "test"},
		&Welcome{Version: 1, Mode: ModeHosted, Model: "DeepSeek-V4-Flash", Vocab: 129280, MaxContext: 1 << 20, EngramPerToken: 8},
		&Step{Seq: 7, Pos: 3, Tokens: []int32{0, 1, 129279}, Engram: []int64{1, 2, 3, 4, 5, 6}, TopN: 5, WantCSA: true, WantMHC: true},
		&Logits{Seq: 7, Pos: 5, F16: EncodeFloat16([]float32{1, -2, 0.5}), Timing: StepTiming{QueueUS: 1, ComputeUS: 2},
			CSA: []CSASelection{{Layer: 2, Positions: []int32{0, 4}}}, MHC: []MHCMatrix{{Layer: 1, M: [16]float32{1, 0, 0, 0, 0, 1}}}},
		&Logits{Seq: 8, Top: []TopLogit{{ID: 4, Logit: 3}, {ID: 1, Logit: 2}}},
		&Generate{ID: "r1", Messages: []ChatMessage{{Role: "user", Content: "héllo 🙂"}}, Chat: ChatOptions{Thinking: true, Effort: "high"},
			Sampling: SamplingParams{Temperature: 0.7, TopP: 0.9, Seed: 42, LogProbs: true, TopLogProbs: 3, LogitBias: map[int32]float32{5: -100}}, Stop: []string{"\n\n"}},
		&Cancel{ID: "r1"},
		&Progress{ID: "r1", Done: 10, Total: 20},
		&Token{ID: "r1", Index: 0, TokenID: 17, Text: "🙂", LogProb: f32p(-0.25), Top: []Alt{{ID: 17, LogProb: -0.25, Text: []byte{0xf0}}}},
		&Done{ID: "r1", Finish: FinishLength, Usage: Usage{PromptTokens: 3, CompletionTokens: 4}, Timing: Timing{PrefillUS: 5, DecodeUS: 6}},
		&Error{ID: "r1", Code: CodeInvalid, Message: "bad", Fatal: true},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, m := range sampleMessages() {
		t.Run(string(m.Type()), func(t *testing.T) {
			b, err := Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, m)
			}
		})
	}
}

func frame(t *testing.T, v uint16, typ Type, body any) []byte {
	t.Helper()
	bb, err := msgpack.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := msgpack.Marshal(&Envelope{V: v, T: typ, B: bb})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	step := map[string]any{"seq": 1, "pos": 0, "tokens": []int32{1}}
	tests := []struct {
		name  string
		frame []byte
		want  error // nil: only require an error
		text  string
	}{
		{"empty", nil, nil, "truncated"},
		{"unknown type", frame(t, 1, "teleport", step), ErrUnknownType, "teleport"},
		{"wrong version", frame(t, 2, TypeStep, step), ErrVersion, "version 2"},
		{"version 0", frame(t, 0, TypeStep, step), ErrVersion, ""},
		{"unknown field", frame(t, 1, TypeStep, map[string]any{"seq": 1, "tokens": []int32{1}, "evil": 1}), nil, "evil"},
		{"no tokens", frame(t, 1, TypeStep, map[string]any{"seq": 1}), ErrInvalid, "tokens"},
		{"negative token", frame(t, 1, TypeStep, map[string]any{"tokens": []int32{-1}}), ErrInvalid, "-1"},
		{"engram not multiple", frame(t, 1, TypeStep, map[string]any{"tokens": []int32{1, 2}, "engram": []int64{1, 2, 3}}), ErrInvalid, "multiple"},
		{"top_n too big", frame(t, 1, TypeStep, map[string]any{"tokens": []int32{1}, "top_n": 5000}), ErrInvalid, "top_n"},
		{"wrong field type", frame(t, 1, TypeStep, map[string]any{"tokens": "abc"}), nil, ""},
		{"trailing bytes", append(frame(t, 1, TypeCancel, map[string]any{"id": "x"}), 0), nil, "trailing"},
		{"huge array claim", frame(t, 1, TypeStep, msgpack.RawMessage{0x81, 0xa6, 't', 'o', 'k', 'e', 'n', 's', 0xdd, 0xff, 0xff, 0xff, 0xff}), nil, "exceed"},
		{"huge bin claim", []byte{0xc6, 0x7f, 0xff, 0xff, 0xff}, nil, "exceeds"},
		{"deep nesting", bytes.Repeat([]byte{0x91}, 100), nil, "deeper"},
		{"oversize", make([]byte, MaxFrameSize+1), ErrOversize, ""},
		{"bad utf8 prompt", frame(t, 1, TypeGenerate, map[string]any{"id": "a", "prompt": "\xff"}), ErrInvalid, "UTF-8"},
		{"prompt and messages", frame(t, 1, TypeGenerate, map[string]any{"id": "a", "prompt": "x", "messages": []map[string]string{{"role": "user", "content": "y"}}}), ErrInvalid, "exactly one"},
		{"nan temperature", frame(t, 1, TypeGenerate, map[string]any{"id": "a", "prompt": "x", "sampling": map[string]any{"temperature": math.NaN()}}), ErrInvalid, "temperature"},
		{"top_logprobs without logprobs", frame(t, 1, TypeGenerate, map[string]any{"id": "a", "prompt": "x", "sampling": map[string]any{"top_logprobs": 2}}), ErrInvalid, "needs logprobs"},
		{"token half utf8", frame(t, 1, TypeToken, map[string]any{"id": "a", "token": 1, "text": "\xf0\x9f"}), ErrInvalid, "whole UTF-8"},
		{"logits both", frame(t, 1, TypeLogits, map[string]any{"f16": []byte{0, 0}, "top": []map[string]any{{"id": 1, "logit": 1}}}), ErrInvalid, "exactly one"},
		{"logits unsorted", frame(t, 1, TypeLogits, map[string]any{"top": []map[string]any{{"id": 1, "logit": 1}, {"id": 2, "logit": 2}}}), ErrInvalid, "sorted"},
		{"done bad finish", frame(t, 1, TypeDone, map[string]any{"id": "a", "finish": "boom"}), ErrInvalid, "finish"},
		{"negative engram row", frame(t, 1, TypeStep, map[string]any{"tokens": []int32{1}, "engram": []int64{-5}}), ErrInvalid, "negative"},
		{"bad effort", frame(t, 1, TypeGenerate, map[string]any{"id": "a", "prompt": "x", "chat": map[string]any{"effort": "low"}}), ErrInvalid, "effort"},
		{"hello bad mode", frame(t, 1, TypeHello, map[string]any{"min_version": 1, "max_version": 1, "mode": "x"}), ErrInvalid, "mode"},
		{"envelope not a map", []byte{0x93, 1, 2, 3}, nil, ""},
		{"reserved byte", []byte{0xc1}, nil, "reserved"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Decode(tc.frame)
			if err == nil {
				t.Fatalf("Decode accepted %#v", m)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not wrap %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not mention %q", err, tc.text)
			}
		})
	}
}

func TestHelloAtNewerVersion(t *testing.T) {
	// A newer client's Hello must decode so the host can negotiate down.
	b := frame(t, 9, TypeHello, &Hello{MinVersion: 1, MaxVersion: 9, Mode: ModeHosted})
	m, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Negotiate(m.(*Hello))
	if err != nil || v != 1 {
		t.Fatalf("Negotiate = %d, %v; want 1", v, err)
	}
}

func TestNegotiate(t *testing.T) {
	tests := []struct {
		min, max uint16
		want     uint16
		ok       bool
	}{
		{1, 1, 1, true},
		{1, 5, 1, true},
		{2, 5, 0, false},
	}
	for _, tc := range tests {
		v, err := Negotiate(&Hello{MinVersion: tc.min, MaxVersion: tc.max, Mode: ModeSplit})
		if (err == nil) != tc.ok || v != tc.want {
			t.Errorf("Negotiate[%d,%d] = %d, %v; want %d ok=%v", tc.min, tc.max, v, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrVersion) {
			t.Errorf("error %v is not ErrVersion", err)
		}
	}
	if _, err := NewCodec(0); !errors.Is(err, ErrVersion) {
		t.Errorf("NewCodec(0) error = %v", err)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	if _, err := Encode(&Token{ID: "a", Text: "\xff"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Encode error = %v, want ErrInvalid", err)
	}
}

func TestFloat16(t *testing.T) {
	in := []float32{0, 1, -1, 0.5, 65504, 1e6, -1e6, 3.14159}
	want := []float32{0, 1, -1, 0.5, 65504, float32(math.Inf(1)), float32(math.Inf(-1)), 3.140625}
	got := DecodeFloat16(nil, EncodeFloat16(in))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("float16 round trip = %v, want %v", got, want)
	}
}

func TestUnmarshalABI(t *testing.T) {
	b, err := Marshal(&SampleRequest{Handle: 3, F32: make([]byte, 8), History: []int32{1}})
	if err != nil {
		t.Fatal(err)
	}
	var r SampleRequest
	if err := Unmarshal(b, &r); err != nil || r.Handle != 3 || len(r.F32) != 8 {
		t.Fatalf("Unmarshal = %+v, %v", r, err)
	}
	bad, _ := msgpack.Marshal(map[string]any{"handle": 0, "f32": make([]byte, 4)})
	if err := Unmarshal(bad, &r); !errors.Is(err, ErrInvalid) {
		t.Fatalf("handle 0 error = %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages() {
		b, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes must re-encode and decode to the same message.
		b2, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %#v does not re-encode: %v", m, err)
		}
		m2, err := Decode(b2)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		b3, err := Encode(m2)
		if err != nil || !bytes.Equal(b2, b3) {
			t.Fatalf("re-encoding is not stable (%v):\n%x\n%x", err, b2, b3)
		}
	})
}
