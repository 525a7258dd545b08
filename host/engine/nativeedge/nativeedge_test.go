package nativeedge

import (
	"testing"

	"github.com/edgeseek/edgeseek/host/engine"
)

func TestDetokHoldsIncompleteUTF8(t *testing.T) {
	e := NewBytes(0, 1)
	for _, tc := range []struct {
		name  string
		bytes []byte
		want  []string // piece returned after each byte
		flush string
	}{
		{"ascii", []byte("ab"), []string{"a", "b"}, ""},
		{"emoji over four tokens", []byte("😀"), []string{"", "", "", "😀"}, ""},
		{"cjk then ascii", []byte("世x"), []string{"", "", "世", "x"}, ""},
		{"truncated emoji at the end", []byte("😀")[:3], []string{"", "", ""}, "\uFFFD"},
		{"invalid byte passes as U+FFFD", []byte{0xFF, 'a'}, []string{"\uFFFD", "a"}, ""},
		{"bad continuation", []byte{0xE4, 'a'}, []string{"", "\uFFFDa"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.NewDetok()
			for i, b := range tc.bytes {
				got, err := d.Push(e.Offset + int(b))
				if err != nil {
					t.Fatal(err)
				}
				if got != tc.want[i] {
					t.Fatalf("after byte %d: %q, want %q", i, got, tc.want[i])
				}
			}
			if got := d.Flush(); got != tc.flush {
				t.Fatalf("flush %q, want %q", got, tc.flush)
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	e := NewBytes(0, 1)
	ids, err := e.Encode("héllo 😀")
	if err != nil {
		t.Fatal(err)
	}
	d := e.NewDetok()
	out := ""
	for _, id := range ids {
		p, _ := d.Push(id)
		out += p
	}
	if out != "héllo 😀" {
		t.Fatalf("round trip %q", out)
	}
	chat, err := e.EncodeChat([]engine.Message{{Role: "user", Content: "hi"}}, engine.ChatOptions{})
	if err != nil || chat[0] != 0 || len(chat) != 1+len("user: hi\nassistant: ") {
		t.Fatalf("chat %v %v", chat, err)
	}
	if _, err := e.EncodeChat([]engine.Message{{Role: "wizard"}}, engine.ChatOptions{}); err == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestSamplerSeeded(t *testing.T) {
	logits := make([]float32, 64)
	for i := range logits {
		logits[i] = float32(i%7) / 3
	}
	draw := func(seed uint64) []int {
		s, err := NewSampler(engine.SamplerParams{Temperature: 1, Seed: seed, LogProbs: true, TopLogProbs: 3})
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for i := 0; i < 20; i++ {
			c, err := s.Sample(logits, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Top) != 3 {
				t.Fatalf("%d alternatives", len(c.Top))
			}
			out = append(out, c.ID)
		}
		return out
	}
	a, b := draw(7), draw(7)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different draws: %v %v", a, b)
		}
	}
}
