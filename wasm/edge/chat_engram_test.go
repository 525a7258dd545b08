package edge

import (
	"reflect"
	"testing"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/chat"
	"github.com/edgeseek/edgeseek/wasm/engram"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
)

func TestChatEncode(t *testing.T) {
	e := New()
	info := must[*protocol.SessionInfo](t)(call[protocol.SessionInfo](t, e, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t)}))
	tok, _ := tokenizer.Load(testTokenizer(t))
	tests := []struct {
		msgs []protocol.ChatMessage
		opts protocol.ChatOptions
	}{
		{[]protocol.ChatMessage{{Role: "user", Content: "hello"}}, protocol.ChatOptions{}},
		{[]protocol.ChatMessage{{Role: "system", Content: "be brief"}, {Role: "user", Content: "hi"}, {Role: "assistant", Content: "yo", Reasoning: "greet"}, {Role: "user", Content: "again"}},
			protocol.ChatOptions{Thinking: true, Effort: "max"}},
	}
	for i, tc := range tests {
		got := must[*protocol.ChatReply](t)(call[protocol.ChatReply](t, e, protocol.FnChatEncode, &protocol.ChatRequest{Handle: info.Handle, Messages: tc.msgs, Options: tc.opts, Tokenize: true}))
		var msgs []chat.Message
		for _, m := range tc.msgs {
			msgs = append(msgs, chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.Reasoning})
		}
		want, err := chat.Encode(msgs, chat.Options{Thinking: tc.opts.Thinking, ReasoningEffort: tc.opts.Effort})
		if err != nil {
			t.Fatal(err)
		}
		ids, _ := tok.Encode(want)
		if got.Text != want || !reflect.DeepEqual(toInt(got.IDs), ids) {
			t.Fatalf("case %d: got %q %v, want %q %v", i, got.Text, got.IDs, want, ids)
		}
	}
}

func TestEngramMatchesAddresser(t *testing.T) {
	tok, _ := tokenizer.Load(testTokenizer(t))
	canon, n, err := engram.CanonicalMap(tok)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &protocol.EngramConfig{LayerIDs: []int32{1, 3}, MaxNgram: 3, Heads: 2, VocabSize: 1000, CompressedVocab: int64(n), PadID: 0}
	e := New()
	info := must[*protocol.SessionInfo](t)(call[protocol.SessionInfo](t, e, protocol.FnSessionNew, &protocol.SessionNew{Tokenizer: testTokenizer(t), Engram: cfg}))
	seq := must[*protocol.HandleReply](t)(call[protocol.HandleReply](t, e, protocol.FnEngramNew, &protocol.HandleRequest{Handle: info.Handle}))
	a, err := engram.NewAddresser(engramConfig(cfg), canon)
	if err != nil {
		t.Fatal(err)
	}
	st := a.NewState()
	ids := []int32{5, 77, 260, 3, 3, 120}
	var want []int64
	for _, id := range ids {
		rows, err := st.Push(int(id), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			want = append(want, r...)
		}
	}
	// Chunked as a prefill of 4 and two decode steps.
	var got []int64
	for _, chunk := range [][]int32{ids[:4], ids[4:5], ids[5:]} {
		rep := must[*protocol.AddrReply](t)(call[protocol.AddrReply](t, e, protocol.FnEngram, &protocol.IDsRequest{Handle: seq.Handle, IDs: chunk}))
		if rep.PerToken != 8 {
			t.Fatalf("per token = %d, want 2 layers × 2 orders × 2 heads = 8", rep.PerToken)
		}
		got = append(got, rep.Rows...)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows = %v, want %v", got, want)
	}
}
