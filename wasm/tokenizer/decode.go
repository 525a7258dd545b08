package tokenizer

import "unicode/utf8"

// validPrefix returns the length of the valid UTF-8 sequence at the start of b (0 if b[0] starts
// an invalid one) and, when invalid, how many bytes Rust's from_utf8_lossy replaces with one
// U+FFFD: the "maximal subpart", i.e. a lead byte plus the continuation bytes that could still
// have completed it. Go's own decoders replace byte by byte, so this follows Rust's table.
// incomplete reports that b ended inside a sequence that more bytes could complete.
func validPrefix(b []byte) (valid, bad int, incomplete bool) {
	c := b[0]
	if c < 0x80 {
		return 1, 0, false
	}
	var w int
	lo, hi := byte(0x80), byte(0xBF) // allowed range of the second byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		w = 2
	case c == 0xE0:
		w, lo = 3, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		w = 3
	case c == 0xED:
		w, hi = 3, 0x9F
	case c == 0xF0:
		w, lo = 4, 0x90
	case c >= 0xF1 && c <= 0xF3:
		w = 4
	case c == 0xF4:
		w, hi = 4, 0x8F
	default:
		return 0, 1, false
	}
	for i := 1; i < w; i++ {
		if i >= len(b) {
			return 0, i, true
		}
		if i == 1 && (b[1] < lo || b[1] > hi) || i > 1 && (b[i] < 0x80 || b[i] > 0xBF) {
			return 0, i, false
		}
	}
	return w, 0, false
}

// appendLossy appends b to dst with each maximal invalid subpart replaced by U+FFFD.
func appendLossy(dst, b []byte) []byte {
	for len(b) > 0 {
		if b[0] < utf8.RuneSelf {
			dst = append(dst, b[0])
			b = b[1:]
			continue
		}
		v, bad, _ := validPrefix(b)
		if v > 0 {
			dst = append(dst, b[:v]...)
			b = b[v:]
			continue
		}
		dst = append(dst, "\uFFFD"...)
		b = b[bad:]
	}
	return dst
}

// Stream turns ids into text incrementally, as a model generates them. Push returns only whole
// characters: bytes of a character split across tokens are held until it is complete. The
// concatenation of all Push results and Flush equals Decode of all ids.
type Stream struct {
	t           *Tokenizer
	pending     []byte
	skipSpecial bool
}

// NewStream starts a streaming detokenizer that keeps special tokens (like Decode(ids, false)).
func NewStream(t *Tokenizer) *Stream { return &Stream{t: t} }

// SkipSpecial makes the stream drop special tokens, like Decode(ids, true).
func (s *Stream) SkipSpecial(skip bool) { s.skipSpecial = skip }

// Push adds one id and returns the text that is now complete (possibly "").
func (s *Stream) Push(id int) (string, error) {
	b, err := s.t.appendToken(s.pending, id, s.skipSpecial)
	if err != nil {
		return "", err
	}
	s.pending = b
	// Emit everything except an incomplete sequence at the very end, which the next token may
	// complete; invalid bytes elsewhere can never become valid and are replaced now.
	var out []byte
	p := s.pending
	for len(p) > 0 {
		if p[0] < utf8.RuneSelf {
			out = append(out, p[0])
			p = p[1:]
			continue
		}
		v, bad, incomplete := validPrefix(p)
		if v > 0 {
			out = append(out, p[:v]...)
			p = p[v:]
			continue
		}
		if incomplete {
			break
		}
		out = append(out, "\uFFFD"...)
		p = p[bad:]
	}
	s.pending = append(s.pending[:0], p...)
	return string(out), nil
}

// Flush returns what is left at the end of generation: an incomplete trailing sequence becomes
// U+FFFD, as Decode would render it.
func (s *Stream) Flush() string {
	out := string(appendLossy(nil, s.pending))
	s.pending = s.pending[:0]
	return out
}
