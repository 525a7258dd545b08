package tokenizer

import (
	"math/bits"
	"sync"
	"unicode"
)

// The three Split patterns of DeepSeek's pre-tokenizer, byte for byte as they appear in
// tokenizer.json. Load accepts exactly this sequence; the scanners below implement it.
const (
	patDigits = `\p{N}{1,3}`
	patCJK    = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
	patMain   = "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"
)

// Character class bits as Oniguruma sees them (see classes_extra.go for the Unicode version gap).
const (
	cL     uint8 = 1 << iota // \p{L}
	cM                       // \p{M}
	cN                       // \p{N}
	cP                       // \p{P}
	cS                       // \p{S}
	cSpace                   // \s (Unicode White_Space, same set as unicode.IsSpace)
	cCRLF                    // \r or \n
	cCJK                     // [一-龥぀-ゟ゠-ヿ]
)

// asciiClass is precomputed because almost all source code and much prose is ASCII.
var asciiClass = func() (t [128]uint8) {
	for r := rune(0); r < 128; r++ {
		t[r] = slowClass(r)
	}
	return t
}()

// slowClass is the definition of the class bits; the tables below are built to agree with it
// (TestClassTable).
func slowClass(r rune) uint8 {
	var c uint8
	switch {
	case unicode.IsLetter(r) || unicode.Is(extraL, r):
		c |= cL
	case unicode.IsMark(r) || unicode.Is(extraM, r):
		c |= cM
	case unicode.IsNumber(r) || unicode.Is(extraN, r):
		c |= cN
	case unicode.IsPunct(r) || unicode.Is(extraP, r):
		c |= cP
	case unicode.IsSymbol(r) || unicode.Is(extraS, r):
		c |= cS
	}
	if unicode.IsSpace(r) {
		c |= cSpace
	}
	if r == '\r' || r == '\n' {
		c |= cCRLF
	}
	if (r >= 0x4E00 && r <= 0x9FA5) || (r >= 0x3040 && r <= 0x30FF) {
		c |= cCJK
	}
	return c
}

// tableRunes is how many code points the class table covers: the Basic Multilingual Plane and
// the Supplementary Multilingual Plane (emoji, historic scripts), 128 KiB.
const tableRunes = 0x20000

// The class table is built on first use from the unicode package's range tables, a loop over
// ranges rather than a binary search per code point (which took tens of milliseconds in
// WebAssembly for the 64 KiB table this replaced).
var (
	classOnce sync.Once
	classTab  *[tableRunes]uint8
)

func classTable() *[tableRunes]uint8 {
	classOnce.Do(func() { classTab = buildClassTable() })
	return classTab
}

func buildClassTable() *[tableRunes]uint8 {
	t := new([tableRunes]uint8)
	for _, c := range []struct {
		tabs []*unicode.RangeTable
		bit  uint8
	}{
		{[]*unicode.RangeTable{unicode.L, extraL}, cL},
		{[]*unicode.RangeTable{unicode.M, extraM}, cM},
		{[]*unicode.RangeTable{unicode.N, extraN}, cN},
		{[]*unicode.RangeTable{unicode.P, extraP}, cP},
		{[]*unicode.RangeTable{unicode.S, extraS}, cS},
		{[]*unicode.RangeTable{unicode.White_Space}, cSpace},
	} {
		for _, rt := range c.tabs {
			for _, r := range rt.R16 {
				for x := int(r.Lo); x <= int(r.Hi) && x < tableRunes; x += int(r.Stride) {
					t[x] |= c.bit
				}
			}
			for _, r := range rt.R32 {
				for x := int(r.Lo); x <= int(r.Hi) && x < tableRunes; x += int(r.Stride) {
					t[x] |= c.bit
				}
			}
		}
	}
	const cats = cL | cM | cN | cP | cS
	for x := range t {
		// slowClass's switch keeps the first category in the order L M N P S, the lowest bit.
		if c := t[x] & cats; c&(c-1) != 0 {
			t[x] = t[x]&^cats | c&-c
		}
	}
	for x := 0x3040; x <= 0x30FF; x++ {
		t[x] |= cCJK
	}
	for x := 0x4E00; x <= 0x9FA5; x++ {
		t[x] |= cCJK
	}
	copy(t[:128], asciiClass[:])
	return t
}

// classAt returns the class bits and width of the code point at s[i] (s is valid UTF-8). The
// ASCII case is small enough to be inlined into the scanning loops.
func classAt(s string, i int) (uint8, int) {
	if b := s[i]; b < 0x80 {
		return asciiClass[b], 1
	}
	return classMB(s, i)
}

// classMB is classAt for a multi-byte code point, decoded without validation (Encode has checked
// the text) and without a loop.
func classMB(s string, i int) (uint8, int) {
	b := s[i]
	var r rune
	var n int
	switch {
	case b < 0xE0:
		r, n = rune(b&0x1F)<<6|rune(s[i+1]&0x3F), 2
	case b < 0xF0:
		r, n = rune(b&0x0F)<<12|rune(s[i+1]&0x3F)<<6|rune(s[i+2]&0x3F), 3
	default:
		r, n = rune(b&0x07)<<18|rune(s[i+1]&0x3F)<<12|rune(s[i+2]&0x3F)<<6|rune(s[i+3]&0x3F), 4
	}
	if r < tableRunes {
		return classTable()[r], n
	}
	return slowClass(r), n
}

// load64 reads s[i:i+8] little-endian; the compiler makes it one load (also in WebAssembly).
func load64(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// asciiLetters8 returns how many of the 8 bytes of w (little-endian) are ASCII letters before the
// first one that is not: eight bytes per loop iteration instead of one (SWAR).
func asciiLetters8(w uint64) int {
	const (
		hi  = 0x8080808080808080
		low = 0x7F7F7F7F7F7F7F7F
	)
	x := (w | 0x2020202020202020) & low // lower case, high bits cleared so the adds cannot carry
	ge := x + 0x1F1F1F1F1F1F1F1F        // high bit: byte >= 'a'
	gt := x + 0x0505050505050505        // high bit: byte > 'z'
	ok := ge &^ gt &^ w & hi
	return bits.TrailingZeros64(^ok&hi) >> 3
}

func isASCIILetter(c byte) bool {
	return (c|0x20) >= 'a' && (c|0x20) <= 'z'
}

// preTokenize splits s (valid UTF-8, no added tokens) exactly like DeepSeek's pre-tokenizer
// Sequence and calls emit with the byte range of each piece in order; together they cover s.
// Encode uses the scanner directly.
func preTokenize(s string, emit func(a, b int)) {
	z := scanner{s: s}
	var buf [64]int
	a := 0
	for {
		ends := z.next(buf[:0])
		if len(ends) == 0 {
			return
		}
		for _, b := range ends {
			emit(a, b)
			a = b
		}
	}
}

// scanner is DeepSeek's pre-tokenizer Sequence in one pass: Split \p{N}{1,3}, then Split on
// CJK/kana runs, then Split on the main alternation, all "Isolated" (matches and the gaps between
// them both become pieces).
//
// The stages nest: stage 1 cuts the text into \p{N} chunks (final pieces) and gaps; stage 2 cuts
// each gap into CJK runs and non-CJK runs; stage 3 matches the main alternation inside each of
// those segments, never across their ends. Run separately, every code point was classified three
// times. Fused, each position is classified once: a segment is the run of code points that are
// not \p{N} and have the same CJK bit, so "inside the segment" is a test on the class bits of the
// code point at hand, and the end of a segment is where that test fails.
type scanner struct {
	s    string
	i    int   // next position to scan
	gap  int   // start of the pending run of unmatched code points (gap == i: none)
	kind uint8 // cCJK or 0: the segment kind of the pending gap
}

// next appends the end offsets of the following pieces to ends, as many as fit in its capacity
// (at least 3), and returns it; it returns no pieces only at the end of s.
func (z *scanner) next(ends []int) []int {
	s := z.s
	i, gap, gk := z.i, z.gap, z.kind
	for i < len(s) && len(ends)+3 <= cap(ends) {
		var c uint8
		n := 1
		if b0 := s[i]; b0 < 0x80 {
			c = asciiClass[b0]
			if gap == i && i+8 <= len(s) && s[i+1] < 0x80 {
				// Most pieces are ASCII and short: decide them from one 8-byte load (not
				// worth trying before a non-ASCII byte, as in " слово").
				e := asciiPiece(load64(s, i), c)
				if e > 0 {
					i += e
					ends = append(ends, i)
					gap = i
					continue
				}
				if e < 0 {
					// A longer word, or one that goes on with non-ASCII letters.
					i = skipLetters(s, i-e, 0)
					ends = append(ends, i)
					gap = i
					continue
				}
			}
		} else {
			c, n = classMB(s, i)
		}
		if c&cN != 0 {
			// Stage 1: a chunk of up to three \p{N}; a longer run continues at the next step.
			if gap < i {
				ends = append(ends, i)
			}
			j := i + n
			for cnt := 1; cnt < 3 && j < len(s); cnt++ {
				cj, nj := asciiClass[s[j]&0x7F], 1
				if s[j] >= 0x80 {
					cj, nj = classMB(s, j)
				}
				if cj&cN == 0 {
					break
				}
				j += nj
			}
			ends = append(ends, j)
			i, gap = j, j
			continue
		}
		k := c & cCJK
		if gap < i && k != gk {
			// A gap ends with its segment.
			ends = append(ends, i)
			gap = i
		}
		var e int
		switch b := s[i]; {
		case isASCIILetter(b):
			// "word" and " word" where asciiPiece was not tried (the last 8 bytes of s, before a
			// non-ASCII byte, after a gap), without matchMain's other tests.
			e = skipLetters(s, i+1, 0)
		case b == ' ' && i+1 < len(s) && isASCIILetter(s[i+1]):
			e = skipLetters(s, i+2, 0)
		case b == ' ' && i+1 < len(s) && s[i+1] >= 0x80:
			// " слово"; if no letter follows, the general alternation.
			if e = skipLetters(s, i+1, 0); e == i+1 {
				e = matchMain(s, i, c, n, k)
			}
		default:
			e = matchMain(s, i, c, n, k)
		}
		if e < 0 {
			if gap == i {
				gk = k
			}
			i += n
			continue
		}
		if gap < i {
			ends = append(ends, i)
		}
		ends = append(ends, e)
		i, gap = e, e
	}
	if i == len(s) && gap < i {
		ends = append(ends, i)
		gap = i
	}
	z.i, z.gap, z.kind = i, gap, gk
	return ends
}

// inSeg reports whether a code point of class c belongs to a segment of kind k (see scanner).
func inSeg(c, k uint8) bool { return c&(cN|cCJK) == k }

// matchMain tries the main alternation anchored at i, alternatives in order, as a backtracking
// engine would, within the segment of kind k that the code point at i (class c0, width n0)
// belongs to. It returns the end of the match, or -1 when nothing matches.
func matchMain(s string, i int, c0 uint8, n0 int, k uint8) int {
	// [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+ : the class is all 32 ASCII punctuation marks.
	if c0&(cP|cS) != 0 && s[i] < 0x80 && i+1 < len(s) && isASCIILetter(s[i+1]) {
		return skipASCIILetters(s, i+2)
	}
	// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ : greedy optional prefix first, then without it.
	if c0&(cCRLF|cL|cP|cS) == 0 && i+n0 < len(s) {
		if c1, _ := classAt(s, i+n0); c1&(cL|cM) != 0 && inSeg(c1, k) {
			return skipLetters(s, i+n0, k)
		}
	}
	if c0&(cL|cM) != 0 {
		return skipLetters(s, i, k)
	}
	// " ?[\p{P}\p{S}]+[\r\n]*" : only U+0020 is the optional space.
	p := i
	if s[i] == ' ' {
		p++
	}
	if p < len(s) {
		if c, _ := classAt(s, p); c&(cP|cS) != 0 && inSeg(c, k) {
			j := p
			for j < len(s) {
				c, n := asciiClass[s[j]&0x7F], 1
				if s[j] >= 0x80 {
					c, n = classMB(s, j)
				}
				if c&(cP|cS) == 0 || !inSeg(c, k) {
					break
				}
				j += n
			}
			if k == 0 { // \r and \n are never in a CJK segment
				for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
					j++
				}
			}
			return j
		}
	}
	if c0&cSpace == 0 {
		return -1
	}
	// White space is never \p{N} or CJK, so the segment is a non-CJK one (k == 0).
	// Whitespace run [i, e); last is the start of its final code point, nl one past its last \r|\n.
	e, last, nl := i, i, -1
	var cEnd uint8 // class of the code point after the run
	for e < len(s) {
		c, n := asciiClass[s[e]&0x7F], 1
		if s[e] >= 0x80 {
			c, n = classMB(s, e)
		}
		cEnd = c
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
		return nl
	}
	// \s+(?!\S) : the whole run at the end of the segment, else the run minus its last code
	// point; \s+ when the run is a single code point followed by non-space.
	if e == len(s) || !inSeg(cEnd, 0) || last == i {
		return e
	}
	return last
}

// skipASCIILetters returns the end of the run of ASCII letters starting at j.
func skipASCIILetters(s string, j int) int {
	for j+8 <= len(s) {
		n := asciiLetters8(load64(s, j))
		j += n
		if n < 8 {
			return j
		}
	}
	for j < len(s) && isASCIILetter(s[j]) {
		j++
	}
	return j
}

// skipLetters returns the end of the run of \p{L} and \p{M} of the segment of kind k starting at
// j. ASCII letters are skipped eight at a time; two- and three-byte code points (Cyrillic, Arabic,
// Hangul, CJK, ...) are decoded here rather than by a call of classMB per code point.
func skipLetters(s string, j int, k uint8) int {
	var tab *[tableRunes]uint8
	for j < len(s) {
		b := s[j]
		if b < 0x80 {
			if k != 0 { // ASCII is never CJK
				return j
			}
			if j+8 <= len(s) {
				n := asciiLetters8(load64(s, j))
				j += n
				if n < 8 && s[j] < 0x80 {
					return j
				}
				continue
			}
			if !isASCIILetter(b) {
				return j
			}
			j++
			continue
		}
		if tab == nil {
			tab = classTable()
		}
		// Non-ASCII letters are decoded here rather than by a call of classMB each, with a
		// loop of its own for each common length, as a script keeps one length (an iteration
		// of the outer loop costs more branches). s is valid UTF-8: the continuation bytes are
		// there. An inner loop returns at the end of the run and breaks at a code point of
		// another length.
		switch {
		case b < 0xE0: // Cyrillic, Greek, Arabic, Hebrew, accented Latin
			for {
				if !wordIn[tab[rune(b&0x1F)<<6|rune(s[j+1]&0x3F)]^k] {
					return j
				}
				if j += 2; j == len(s) {
					return j
				}
				if b = s[j]; b < 0xC0 || b >= 0xE0 {
					break
				}
			}
		case b < 0xF0: // Hangul, kana, CJK, Indic scripts
			for {
				if !wordIn[tab[rune(b&0x0F)<<12|rune(s[j+1]&0x3F)<<6|rune(s[j+2]&0x3F)]^k] {
					return j
				}
				if j += 3; j == len(s) {
					return j
				}
				if b = s[j]; b < 0xE0 || b >= 0xF0 {
					break
				}
			}
		default:
			c, n := classMB(s, j)
			if !wordIn[c^k] {
				return j
			}
			j += n
		}
	}
	return j
}

// wordIn[c^k] reports whether a code point of class c continues a run of letters and marks in a
// segment of kind k (cCJK or 0): one table load instead of two tests and branches.
var wordIn = func() (t [256]bool) {
	for x := range t {
		t[x] = x&int(cL|cM) != 0 && x&int(cN|cCJK) == 0
	}
	return t
}()

// SWAR constants: the high bit and the low seven bits of each byte, and 1 in each byte.
const (
	swarHi  = 0x8080808080808080
	swarLow = 0x7F7F7F7F7F7F7F7F
	swarOne = 0x0101010101010101
)

// inRange8 sets the high bit of each byte of x (whose high bits are clear) that lies in
// [lo, hi]. Each byte is compared by adding a constant that carries into its high bit exactly
// when it is >= lo (resp. > hi); a byte below 0x80 plus a constant below 0x80 cannot carry into
// the next byte.
func inRange8(x uint64, lo, hi byte) uint64 {
	return (x + swarOne*uint64(0x80-lo)) &^ (x + swarOne*uint64(0x7F-hi)) & swarHi
}

// span returns how many leading bytes of a word have their high bit set in m, and whether the
// byte that ends the run lies inside the word and is ASCII (its high bit is clear in na, the
// word's non-ASCII bytes). Only then is the run's end known from this word alone: a non-ASCII
// byte may continue a run of letters, numbers, punctuation or white space.
func span(m, na uint64) (int, bool) {
	stop := ^m & swarHi
	stop &= -stop // the first byte outside the run, or 0
	return bits.TrailingZeros64(stop) >> 3, stop&^na != 0
}

// lowBytes returns a mask of the low n bytes of a word, 0 <= n < 8 (the shift count is masked so
// that Go need not handle counts of 64 and more, a branch in WebAssembly).
func lowBytes(n int) uint64 { return 1<<(uint(8*n)&63) - 1 }

// asciiPiece returns the length of the piece that starts with the 8 bytes of w (little-endian),
// whose first byte is ASCII of class c and starts no pending gap, or 0 when these 8 bytes do not
// decide it (a run reaches a non-ASCII byte or the end of the word, or a shape this function
// leaves to the general code). A negative -n means that the piece is a word whose run of
// letters reaches a non-ASCII byte or the end of the 8 bytes: it goes on as a run of letters and
// marks (skipLetters) from n. It covers the common shapes "word", " word", "\tword", "123",
// ".", " {", ");\n", "\n\t\t", "  " with bit masks and no loop: per the WebAssembly cost model
// (DESIGN.md), arithmetic over 8 bytes costs less than a few taken branches.
//
// Inside one word everything is ASCII up to the first non-ASCII byte, and ASCII is never CJK,
// so the whole decided piece lies in one non-CJK segment, and a run only ends the segment at a
// digit (\p{N}).
func asciiPiece(w uint64, c uint8) int {
	x := w & swarLow
	na := w & swarHi
	lt := inRange8(x|0x2020202020202020, 'a', 'z') &^ na // ASCII letters
	dg := inRange8(x, '0', '9') &^ na
	var n int
	var ok, word bool
	switch {
	case c&cL != 0:
		// [\p{L}\p{M}]+ : a non-ASCII byte may continue the word.
		n, ok = span(lt, na)
		word = !ok
	case c&cN != 0:
		// \p{N}{1,3}: unless three digits came first, a non-ASCII byte may be a number too.
		n, ok = span(dg, na)
		if n >= 3 {
			n, ok = 3, true
		}
	case c&(cP|cS) != 0 && lt&0x8000 != 0:
		// [!-/:-@[-`{-~][A-Za-z]+ : ASCII letters only, so any byte inside the word ends it.
		n, _ = span(lt|0x80, 0)
		ok = n < 8
	case c&cCRLF == 0 && c&(cP|cS) == 0 && (lt|na)&0x8000 != 0:
		// [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+ with its prefix (" word", "\tword"), if the
		// next byte is a letter; a non-ASCII one is left to the general code.
		n, ok = span(lt|0x80, na)
		word = !ok && n > 1
	case c == 0:
		// A control character that prefixes no word matches nothing: the general code makes
		// it a gap.
	case c&(cP|cS) != 0 || byte(w) == ' ' && inRange8(x, '!', '~')&^lt&^dg&0x8000 != 0:
		//  ?[\p{P}\p{S}]+[\r\n]* : only U+0020 is the optional space.
		ps := inRange8(x, '!', '~') &^ lt &^ dg &^ na // ASCII \p{P} and \p{S}
		if n, ok = span(ps|0x80, na); ok {
			// [\r\n]* after it: any byte but \r and \n ends it, including a non-ASCII one.
			crlf := (inRange8(x, '\n', '\n') | inRange8(x, '\r', '\r')) &^ na
			n, _ = span(crlf|lowBytes(n)&swarHi, 0)
			ok = n < 8
		}
	default:
		// White space, [\t-\r ] in ASCII. The run must end inside the word at an ASCII byte.
		sp := (inRange8(x, '\t', '\r') | inRange8(x, ' ', ' ')) &^ na
		if n, ok = span(sp, na); !ok {
			break
		}
		// \s*[\r\n]+ : up to and including the run's last \r or \n.
		if nl := (inRange8(x, '\n', '\n') | inRange8(x, '\r', '\r')) & lowBytes(n); nl != 0 {
			return (63-bits.LeadingZeros64(nl))>>3 + 1
		}
		// \s+(?!\S) : the whole run where the segment ends (at a digit), else all but its
		// last space, which prefixes the next piece; \s+ : a single space.
		if dg>>(uint(8*n)&63)&0x80 == 0 && n > 1 {
			n--
		}
	}
	switch {
	case ok:
		return n
	case word:
		return -n
	}
	return 0
}
