package tokenizer

import (
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// The pre-tokenizer as it was first written: three stages, one after the other, each classifying
// every code point with slowClass (the unicode package's tables). pretok.go fuses the stages into
// one pass with table lookups; TestPreTokenizeMatchesReference checks the two agree.

// refClassAt decodes the rune at s[i] (s is valid UTF-8) and returns its class bits and width.
func refClassAt(s string, i int) (uint8, int) {
	r, n := utf8.DecodeRuneInString(s[i:])
	return slowClass(r), n
}

// refPreTokenize splits s (valid UTF-8, no added tokens) exactly like DeepSeek's pre-tokenizer
// Sequence: Split \p{N}{1,3}, then Split on CJK/kana runs, then Split on the main alternation, all
// "Isolated" (matches and the gaps between them both become pieces). emit receives byte ranges
// of s in order; together they cover s.
func refPreTokenize(s string, emit func(a, b int)) {
	// Stage 1: runs of \p{N} are cut into chunks of at most three code points. A chunk holds only
	// \p{N}, which neither later pattern can split, so chunks are final pieces.
	gap := 0
	i := 0
	for i < len(s) {
		c, n := refClassAt(s, i)
		if c&cN == 0 {
			i += n
			continue
		}
		if gap < i {
			refSplitCJK(s, gap, i, emit)
		}
		start := i
		cnt := 0
		for i < len(s) {
			c, n = refClassAt(s, i)
			if c&cN == 0 {
				break
			}
			i += n
			cnt++
			if cnt == 3 {
				emit(start, i)
				start, cnt = i, 0
			}
		}
		if start < i {
			emit(start, i)
		}
		gap = i
	}
	if gap < len(s) {
		refSplitCJK(s, gap, len(s), emit)
	}
}

// refSplitCJK is stage 2: runs of CJK/kana become pieces; runs and gaps both go on to stage 3
// because the kana blocks contain punctuation and symbols (゠ ・ ゛) that stage 3 separates.
func refSplitCJK(s string, a, b int, emit func(a, b int)) {
	gap := a
	i := a
	for i < b {
		c, n := refClassAt(s, i)
		if c&cCJK == 0 {
			i += n
			continue
		}
		if gap < i {
			refSplitMain(s, gap, i, emit)
		}
		start := i
		for i < b {
			c, n = refClassAt(s, i)
			if c&cCJK == 0 {
				break
			}
			i += n
		}
		refSplitMain(s, start, i, emit)
		gap = i
	}
	if gap < b {
		refSplitMain(s, gap, b, emit)
	}
}

// refSplitMain is stage 3: leftmost-first search of the main alternation over s[a:b]; matches and
// unmatched gaps become pieces.
func refSplitMain(s string, a, b int, emit func(a, b int)) {
	gap := a
	i := a
	for i < b {
		e, n := refMatchMain(s, i, b)
		if e < 0 {
			i += n
			continue
		}
		if gap < i {
			emit(gap, i)
		}
		emit(i, e)
		i, gap = e, e
	}
	if gap < b {
		emit(gap, b)
	}
}

func refIsASCIIPunct(c byte) bool {
	return c < 128 && asciiClass[c]&(cP|cS) != 0
}

func refIsASCIILetter(c byte) bool {
	return (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

// refSkipClass returns the end of the run of code points starting at i whose class has a bit of mask.
func refSkipClass(s string, i, b int, mask uint8) int {
	for i < b {
		c, n := refClassAt(s, i)
		if c&mask == 0 {
			break
		}
		i += n
	}
	return i
}

// refMatchMain tries the main alternation anchored at i, alternatives in order, as a backtracking
// engine would. It returns the match end, or -1 and the width of the rune at i when nothing matches.
func refMatchMain(s string, i, b int) (int, int) {
	c0, n0 := refClassAt(s, i)
	// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : the class is all 32 ASCII punctuation marks.
	if refIsASCIIPunct(s[i]) && i+1 < b && refIsASCIILetter(s[i+1]) {
		j := i + 2
		for j < b && refIsASCIILetter(s[j]) {
			j++
		}
		return j, n0
	}
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : greedy optional prefix first, then without it.
	if c0&(cCRLF|cL|cP|cS) == 0 && i+n0 < b {
		if c1, _ := refClassAt(s, i+n0); c1&(cL|cM) != 0 {
			return refSkipClass(s, i+n0, b, cL|cM), n0
		}
	}
	if c0&(cL|cM) != 0 {
		return refSkipClass(s, i, b, cL|cM), n0
	}
	// " ?[\p{P}\p{S}]+[\r\n]*" : only U+0020 is the optional space.
	p := i
	if s[i] == ' ' {
		p++
	}
	if p < b {
		if c, _ := refClassAt(s, p); c&(cP|cS) != 0 {
			j := refSkipClass(s, p, b, cP|cS)
			for j < b && (s[j] == '\r' || s[j] == '\n') {
				j++
			}
			return j, n0
		}
	}
	if c0&cSpace == 0 {
		return -1, n0
	}
	// Whitespace run [i, e); last is the start of its final code point, nl one past its last \r|\n.
	e, last, nl := i, i, -1
	for e < b {
		c, n := refClassAt(s, e)
		if c&cSpace == 0 {
			break
		}
		if c&cCRLF != 0 {
			nl = e + 1
		}
		last = e
		e += n
	}
	// \s*[\r\n]+ : \s* backs off to the last newline, and [\r\n]+ then ends right after it.
	if nl >= 0 {
		return nl, n0
	}
	// \s+(?!\S) : the whole run at the end of the piece, else the run minus its last code point.
	if e == b || last == i {
		// \s+ (the run is a single code point followed by non-space).
		return e, n0
	}
	return last, n0
}

// TestClassTable checks the lookup tables against slowClass for every code point they cover.
func TestClassTable(t *testing.T) {
	tab := classTable()
	for r := rune(0); r < tableRunes; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		if got, want := tab[r], slowClass(r); got != want {
			t.Fatalf("U+%04X: table %08b, slowClass %08b", r, got, want)
		}
	}
}

// TestASCIIMasks checks the SWAR class masks of asciiPiece against asciiClass for every byte.
func TestASCIIMasks(t *testing.T) {
	for b := range 256 {
		w := swarOne * uint64(b)
		x, na := w&swarLow, w&swarHi
		lt := inRange8(x|0x2020202020202020, 'a', 'z') &^ na
		dg := inRange8(x, '0', '9') &^ na
		ps := inRange8(x, '!', '~') &^ lt &^ dg &^ na
		sp := (inRange8(x, '\t', '\r') | inRange8(x, ' ', ' ')) &^ na
		crlf := (inRange8(x, '\n', '\n') | inRange8(x, '\r', '\r')) &^ na
		var c uint8
		if b < 0x80 {
			c = asciiClass[b]
		}
		for _, m := range []struct {
			name string
			got  uint64
			want bool
		}{
			{"letter", lt, c&cL != 0}, {"digit", dg, c&cN != 0}, {"punct", ps, c&(cP|cS) != 0},
			{"space", sp, c&cSpace != 0}, {"crlf", crlf, c&cCRLF != 0},
		} {
			want := uint64(0)
			if m.want {
				want = swarHi
			}
			if m.got != want {
				t.Errorf("byte %#x: %s mask %#x, want %#x", b, m.name, m.got, want)
			}
		}
	}
}

// TestPreTokenizeMatchesReference compares the fused scanner with the three-stage reference on
// random strings over an alphabet of code points chosen to sit on every boundary the stages
// care about, and on the corpus.
func TestPreTokenizeMatchesReference(t *testing.T) {
	alphabet := []string{"a", "Z", "é", "ж", "e\u0301", "\u0301", "日", "本", "・", "゠", "゛", "ー", "あ", "\u3040",
		"1", "٣", "½", "²", "〇", " ", "  ", "\t", "\n", "\r", "\u3000", "\u00a0", "\u2028", "\u0085", "!", "(", "'",
		",", "¿", "—", "€", "😀", "🏽", "\u200d", "\x00", "\x01", "\ufeff", "𝔸", "𠀀", "\U000E0001", "abcdefghij",
		"ABCDEFGHIJKLMNOP", "xyz", "_", "@", "`", "[", "{", "~",
		// Around asciiPiece's 8-byte window: runs of each ASCII class of various lengths, so that
		// a run ends inside the window, at its last byte, or beyond it, at ASCII or not.
		"1234567", "12", "   ", "       ", "\n\t\t", "\r\n", "\v", "\f", "\x1f", "\x7f", ");", "...:=",
		"!!!!!!!", "\n\n", "/", "0", "9", "A", "z", "\t\t\t\t\t\t", "wxyzabc", "\u00e9t\u00e9"}
	rng := rand.New(rand.NewPCG(3, 4))
	check := func(s string) {
		var got, want []int
		preTokenize(s, func(a, b int) { got = append(got, a, b) })
		refPreTokenize(s, func(a, b int) { want = append(want, a, b) })
		if !slices.Equal(got, want) {
			t.Fatalf("%q: pieces %q, reference %q", s, cut(s, got), cut(s, want))
		}
	}
	for range 200000 {
		var b strings.Builder
		for range rng.IntN(16) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		check(b.String())
	}
	for _, f := range corpusFiles(t) {
		d, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		check(string(d))
	}
}

func cut(s string, offs []int) []string {
	var out []string
	for i := 0; i+1 < len(offs); i += 2 {
		out = append(out, s[offs[i]:offs[i+1]])
	}
	return out
}
