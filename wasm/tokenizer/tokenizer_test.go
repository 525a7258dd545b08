package tokenizer

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"unicode"
)

// TestClassesMatchOniguruma compares the scanner's character classes with the ones the regex
// engine of HF tokenizers uses, for every code point.
func TestClassesMatchOniguruma(t *testing.T) {
	b, err := os.ReadFile(testdata(t, "onig_classes.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string][][2]rune
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	bits := map[string]uint8{"L": cL, "M": cM, "N": cN, "P": cP, "S": cS, "s": cSpace}
	for name, bit := range bits {
		in := make([]bool, unicode.MaxRune+1)
		for _, r := range m[name] {
			for c := r[0]; c <= r[1]; c++ {
				in[c] = true
			}
		}
		bad := 0
		for c := rune(0); c <= unicode.MaxRune; c++ {
			if c >= 0xD800 && c <= 0xDFFF {
				continue
			}
			got := slowClass(c)&bit != 0
			if c < 128 {
				got = asciiClass[c]&bit != 0
			}
			if got != in[c] {
				if bad++; bad < 5 {
					t.Errorf("\\p{%s} U+%04X: ours %v, Oniguruma %v", name, c, got, in[c])
				}
			}
		}
	}
}

func pieces(s string) []string {
	var out []string
	preTokenize(s, func(a, b int) { out = append(out, s[a:b]) })
	return out
}

func TestPreTokenize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"12345", []string{"123", "45"}},
		{"abc123def", []string{"abc", "123", "def"}},
		{"(hello)", []string{"(hello", ")"}},
		{"  hello", []string{" ", " hello"}},
		{"a  \n  b", []string{"a", "  \n", " ", " b"}},
		{"x   ", []string{"x", "   "}},
		{"\thello", []string{"\thello"}},
		{"\nhello", []string{"\n", "hello"}},
		{"日本・東京", []string{"日本", "・", "東京"}},
		{"中文abc", []string{"中文", "abc"}},
		{"a, b!!\n\nc", []string{"a", ",", " b", "!!\n\n", "c"}},
		{"👍🏽👨‍👩‍👧", []string{"👍🏽👨", "\u200d", "👩", "\u200d", "👧"}},
		{"½²³4", []string{"½²³", "4"}},
		{"don't", []string{"don", "'t"}},
		{"", nil},
	} {
		got := pieces(c.in)
		if strings.Join(got, "|") != strings.Join(c.want, "|") || len(got) != len(c.want) {
			t.Errorf("preTokenize(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestLossyMatchesRust(t *testing.T) {
	// Expected strings are what Rust's String::from_utf8_lossy returns.
	for _, c := range []struct{ in, want string }{
		{"abc", "abc"},
		{"\xff", "\uFFFD"},
		{"\xe2\x82", "\uFFFD"},
		{"\xe2\x82x", "\uFFFDx"},
		{"\xf0\x9f\x98", "\uFFFD"},
		{"\xf0\x9f\x98\x80", "😀"},
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: ED allows only 80..9F next
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD"}, // overlong
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xc0\xaf", "\uFFFD\uFFFD"},
		{"\xf0\x9f\x98x\xf0", "\uFFFDx\uFFFD"},
	} {
		if got := string(appendLossy(nil, []byte(c.in))); got != c.want {
			t.Errorf("lossy(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestStreamHoldsPartialCharacters(t *testing.T) {
	tk := loadTiny(t)
	text := "héllo 👨‍👩‍👧 世界"
	ids, err := tk.Encode(text)
	if err != nil {
		t.Fatal(err)
	}
	st := NewStream(tk)
	var out strings.Builder
	for _, id := range ids {
		s, err := st.Push(id)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(s, unicode.ReplacementChar) {
			t.Fatalf("Push emitted a replacement character: %q", s)
		}
		out.WriteString(s)
	}
	if rest := st.Flush(); rest != "" {
		t.Fatalf("Flush = %q, want empty", rest)
	}
	if out.String() != text {
		t.Fatalf("stream = %q, want %q", out.String(), text)
	}
	// Cut the emoji in half: the first bytes stay pending and Flush turns them into U+FFFD.
	st = NewStream(tk)
	emoji, _ := tk.Encode("😀")
	if len(emoji) < 2 {
		t.Fatalf("tiny tokenizer encodes 😀 in %d tokens; the test needs a split", len(emoji))
	}
	for _, id := range emoji[:len(emoji)-1] {
		if s, _ := st.Push(id); s != "" {
			t.Fatalf("partial emoji produced %q", s)
		}
	}
	if got := st.Flush(); got != "\uFFFD" {
		t.Fatalf("Flush of a partial emoji = %q", got)
	}
	if _, err := st.Push(1 << 30); err == nil {
		t.Fatal("Push of an unknown id succeeded")
	}
}

func TestEncodeDecodeAPI(t *testing.T) {
	tk := loadTiny(t)
	if _, err := tk.Encode("ok\xff"); err != ErrInvalidUTF8 {
		t.Fatalf("Encode of invalid UTF-8: %v", err)
	}
	if _, err := tk.Decode([]int{-1}, false); err == nil {
		t.Fatal("Decode of -1 succeeded")
	}
	if _, err := tk.Decode([]int{tk.IDLimit()}, false); err == nil {
		t.Fatal("Decode of IDLimit succeeded")
	}
	ids, _ := tk.Encode("<｜User｜>hi<think>x</think>")
	user, _ := tk.SpecialID("<｜User｜>")
	if ids[0] != user {
		t.Fatalf("ids %v do not start with <｜User｜> %d", ids, user)
	}
	if s, _ := tk.Decode(ids, true); s != "hix" {
		t.Fatalf("Decode(skip) = %q", s)
	}
	if tok, ok := tk.IDToToken(int(' ')); !ok || tok != "Ġ" {
		t.Fatalf("IDToToken(32) = %q, %v", tok, ok)
	}
	if id, ok := tk.TokenToID("<think>"); !ok || id != 517 {
		t.Fatalf("TokenToID(<think>) = %d, %v", id, ok)
	}
	if _, ok := tk.SpecialID("hi"); ok {
		t.Fatal("SpecialID of a plain word")
	}
	if !tk.IsSpecial(user) || tk.IsSpecial(int('a')) {
		t.Fatal("IsSpecial")
	}
}

// TestMergeHeapMatchesScan checks both merge loops against the plain definition (lowest rank,
// leftmost) on random words.
func TestMergeHeapMatchesScan(t *testing.T) {
	tk := loadTiny(t)
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("aeinost \n\t{}()")
	for n := range 3000 {
		w := make([]int32, 1+rng.IntN(400))
		for i := range w {
			w[i] = tk.byteID[alphabet[rng.IntN(len(alphabet))]]
		}
		if n%3 == 0 {
			for i := range w {
				w[i] = tk.byteID[' ']
			}
		}
		a := tk.pairs.mergeHeap(append([]int32(nil), w...))
		b := append([]int32(nil), w...)
		for len(b) > 1 { // the quadratic loop without the size switch
			best, bestRank, bestID := -1, int32(0), int32(0)
			for i := 0; i+1 < len(b); i++ {
				if r, id, ok := tk.pairs.get(b[i], b[i+1]); ok && (best < 0 || r < bestRank) {
					best, bestRank, bestID = i, r, id
				}
			}
			if best < 0 {
				break
			}
			b[best] = bestID
			b = append(b[:best+1], b[best+2:]...)
		}
		c := tk.pairs.mergeWord(append([]int32(nil), w...))
		if !equal32(a, b) || !equal32(c, b) {
			t.Fatalf("word %v: heap %v, rank array %v, scan %v", w, a, c, b)
		}
	}
}

func equal32(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoadRejectsUnsupported(t *testing.T) {
	base, err := os.ReadFile(testdata(t, "tiny.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ from, to, field string }{
		{`"normalizer": null`, `"normalizer": {"type": "NFC"}`, "normalizer"},
		{`"truncation": null`, `"truncation": {"max_length": 5}`, "truncation"},
		{`"behavior": "Isolated"`, `"behavior": "Removed"`, "behavior"},
		{`{"Regex": "\\p{N}{1,3}"}`, `{"Regex": "\\p{N}{1,4}"}`, "pattern"},
		{`"add_prefix_space": false`, `"add_prefix_space": true`, "add_prefix_space"},
		{`"byte_fallback": false`, `"byte_fallback": true`, "byte_fallback"},
		{`"dropout": null`, `"dropout": 0.1`, "dropout"},
		{`"type": "BPE"`, `"type": "WordPiece"`, "model.type"},
		{`"lstrip": false`, `"lstrip": true`, "lstrip"},
		{`"decoder": {"type": "ByteLevel"`, `"decoder": {"type": "WordPiece"`, "decoder"},
		{`"id": 512,`, `"id": 600,`, "added_tokens[0].id"},
		{`"version": "1.0",`, `"version": "1.0", "extra": 1,`, "extra"},
	} {
		if !strings.Contains(string(base), c.from) {
			t.Fatalf("tiny.json has no %q", c.from)
		}
		_, err := Load([]byte(strings.Replace(string(base), c.from, c.to, 1)))
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: Load error %v, want one naming %q", c.to, err, c.field)
		}
	}
	// Both merge forms load to the same tokenizer.
	var f map[string]any
	if err := json.Unmarshal(base, &f); err != nil {
		t.Fatal(err)
	}
	model := f["model"].(map[string]any)
	var strs []string
	for _, m := range model["merges"].([]any) {
		p := m.([]any)
		strs = append(strs, p[0].(string)+" "+p[1].(string))
	}
	model["merges"] = strs
	alt, _ := json.Marshal(f)
	tk2, err := Load(alt)
	if err != nil {
		t.Fatal(err)
	}
	tk := loadTiny(t)
	text := "func main() { fmt.Println(\"héllo, 世界\") }"
	a, _ := tk.Encode(text)
	b, _ := tk2.Encode(text)
	if !equalInts(a, b) {
		t.Fatalf("string-form merges: %v vs %v", b, a)
	}
}

func TestConcurrentEncode(t *testing.T) {
	tk := loadTiny(t)
	texts := []string{"hello world, 世界 123456", "func f() {}\n\n\t", "👨‍👩‍👧 <think>x</think>"}
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i], _ = tk.Encode(s)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for n := range 200 {
				i := (g + n) % len(texts)
				got, err := tk.Encode(texts[i])
				if err == nil && !equalInts(got, want[i]) {
					err = os.ErrInvalid
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
