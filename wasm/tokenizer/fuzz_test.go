package tokenizer

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzEncode: Encode never panics, rejects invalid UTF-8, and for valid text the tiny
// tokenizer's ids decode (in one go and streamed) back to exactly the input.
func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "hello world", "  \n\t\r\n ", "12345678", "日本語・カタカナ", "👨‍👩‍👧👍🏽",
		"<｜User｜>hi<think>x</think>", "<｜begin▁of▁sentence", "e\u0301\u200d\u3000\u2028x"} {
		f.Add(s)
	}
	tk := loadTiny(f)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := tk.Encode(s)
		if !utf8.ValidString(s) {
			if err == nil {
				t.Fatal("invalid UTF-8 accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		dec, err := tk.Decode(ids, false)
		if err != nil || dec != s {
			t.Fatalf("Decode(Encode(%q)) = %q, %v", s, dec, err)
		}
		st := NewStream(tk)
		var b strings.Builder
		for _, id := range ids {
			out, err := st.Push(id)
			if err != nil {
				t.Fatal(err)
			}
			b.WriteString(out)
		}
		b.WriteString(st.Flush())
		if b.String() != s {
			t.Fatalf("stream of %q = %q", s, b.String())
		}
	})
}

// FuzzLoad: malformed tokenizer.json yields an error, never a panic; whatever loads can encode
// and decode.
func FuzzLoad(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}}`))
	f.Add([]byte(`{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "decoder": {"type": "ByteLevel"},
		"pre_tokenizer": {"type": "Sequence", "pretokenizers": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tk, err := Load(data)
		if err != nil {
			return
		}
		ids, err := tk.Encode("héllo <｜User｜> 123 世界\n")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tk.Decode(ids, true); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzPreTokenize compares the fused scanner with the three-stage reference (see
// TestPreTokenizeMatchesReference) on arbitrary valid UTF-8.
func FuzzPreTokenize(f *testing.F) {
	for _, s := range []string{"hello world", "\tfunc (z *scanner) next(ends []int) []int {\n\t\ts := z.s",
		"  \n\t\r\n 12345678 x", "Ж слово, é́ 日本語・カタカナ", "a.b:=c;\r\n\r\n   \u3000 ½²"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		var got, want []int
		preTokenize(s, func(a, b int) { got = append(got, a, b) })
		refPreTokenize(s, func(a, b int) { want = append(want, a, b) })
		if !slices.Equal(got, want) {
			t.Fatalf("%q: pieces %q, reference %q", s, cut(s, got), cut(s, want))
		}
	})
}
