package tokenizer

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonScan is a small single-pass JSON reader for the two big parts of tokenizer.json, the
// vocabulary object and the merges array (about 7 MB of DeepSeek's 7.5 MB). encoding/json needs
// several passes over them and made Load several times slower, which matters in a browser.
// Everything else in the file is small and goes through encoding/json.
type jsonScan struct {
	b   []byte
	i   int
	buf []byte // scratch for strings with escapes
}

var errJSONEnd = errors.New("unexpected end of JSON")

func (s *jsonScan) fail(what string) error {
	if s.i >= len(s.b) {
		return errJSONEnd
	}
	return fmt.Errorf("invalid JSON at byte %d: %s", s.i, what)
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
			// Indentation comes in runs of spaces: eight at a time.
			for s.i+8 <= len(s.b) && load64g(s.b[s.i:]) == 0x2020202020202020 {
				s.i += 8
			}
		default:
			return
		}
	}
}

// peek skips white space and returns the next byte, or 0 at the end.
func (s *jsonScan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScan) expect(c byte) error {
	if s.peek() != c {
		return s.fail(fmt.Sprintf("want %q", c))
	}
	s.i++
	return nil
}

// str reads a string. Without escapes it is one allocation; invalid UTF-8 is refused.
func (s *jsonScan) str() (string, error) {
	b, err := s.strBytes()
	return string(b), err
}

// specialByte returns a word with the high bit set in each byte of w (little-endian) that ends
// or interrupts a JSON string's plain run: '"', '\\' or a control character. Only the lowest
// flagged byte is exact (the borrow can flag bytes above it), which is the one wanted.
func specialByte(w uint64) uint64 {
	const (
		ones = 0x0101010101010101
		hi   = 0x8080808080808080
	)
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	return ((q-ones)&^q | (bs-ones)&^bs | (w-ones*0x20)&^w) & hi
}

// strBytes reads a string and returns its bytes: a slice of the input when it has no escapes,
// else of the scanner's scratch buffer, valid until the next call. Plain runs are scanned eight
// bytes per step.
func (s *jsonScan) strBytes() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i+8 <= len(s.b) {
		if m := specialByte(load64g(s.b[s.i:])); m != 0 {
			s.i += bits.TrailingZeros64(m) >> 3
			break
		}
		s.i += 8
	}
	for s.i < len(s.b) {
		c := s.b[s.i]
		if c == '"' {
			raw := s.b[start:s.i]
			s.i++
			if !utf8.Valid(raw) {
				return nil, s.fail("string is not valid UTF-8")
			}
			return raw, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		s.i++
	}
	s.buf = append(s.buf[:0], s.b[start:s.i]...)
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !utf8.Valid(s.buf) {
				return nil, s.fail("string is not valid UTF-8")
			}
			return s.buf, nil
		case c < 0x20:
			return nil, s.fail("control character in string")
		case c != '\\':
			s.buf = append(s.buf, c)
			s.i++
			continue
		}
		if s.i+1 >= len(s.b) {
			return nil, errJSONEnd
		}
		e := s.b[s.i+1]
		s.i += 2
		switch e {
		case '"', '\\', '/':
			s.buf = append(s.buf, e)
		case 'b':
			s.buf = append(s.buf, '\b')
		case 'f':
			s.buf = append(s.buf, '\f')
		case 'n':
			s.buf = append(s.buf, '\n')
		case 'r':
			s.buf = append(s.buf, '\r')
		case 't':
			s.buf = append(s.buf, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, s.fail("bad \\u escape")
			}
			// A surrogate pair spells one code point; a lone surrogate becomes U+FFFD as in
			// encoding/json.
			if utf16.IsSurrogate(r) {
				save := s.i
				if s.i+1 < len(s.b) && s.b[s.i] == '\\' && s.b[s.i+1] == 'u' {
					s.i += 2
					if r2, ok := s.hex4(); ok {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							s.buf = utf8.AppendRune(s.buf, d)
							continue
						}
					}
				}
				s.i = save
				r = utf8.RuneError
			}
			s.buf = utf8.AppendRune(s.buf, r)
		default:
			return nil, s.fail("bad escape")
		}
	}
	return nil, errJSONEnd
}

func (s *jsonScan) hex4() (rune, bool) {
	if s.i+4 > len(s.b) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(s.b[s.i:s.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	s.i += 4
	return rune(v), true
}

// integer reads a JSON number that must be an integer fitting in an int.
func (s *jsonScan) integer() (int, error) {
	s.ws()
	start := s.i
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	v := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int(s.b[s.i]-'0')
		s.i++
	}
	if s.i < len(s.b) {
		if c := s.b[s.i]; c == '.' || c == 'e' || c == 'E' {
			return 0, s.fail("id is not an integer")
		}
	}
	digits := s.i - start
	if neg {
		digits--
		v = -v
	}
	if digits == 0 || digits > 18 {
		return 0, s.fail("bad integer")
	}
	return v, nil
}

// skip passes over any value and returns its bytes, for encoding/json to decode.
func (s *jsonScan) skip(depth int) ([]byte, error) {
	if depth > 64 {
		return nil, s.fail("nested too deeply")
	}
	c := s.peek()
	start := s.i
	switch {
	case c == '"':
		if _, err := s.str(); err != nil {
			return nil, err
		}
	case c == '{' || c == '[':
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		s.i++
		if s.peek() == close {
			s.i++
			break
		}
		for {
			if c == '{' {
				if _, err := s.str(); err != nil {
					return nil, err
				}
				if err := s.expect(':'); err != nil {
					return nil, err
				}
			}
			if _, err := s.skip(depth + 1); err != nil {
				return nil, err
			}
			if s.peek() == ',' {
				s.i++
				continue
			}
			if err := s.expect(close); err != nil {
				return nil, err
			}
			break
		}
	case c == 0:
		return nil, errJSONEnd
	default: // number, true, false, null: encoding/json validates the literal later
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return s.b[start:s.i], nil
			}
			s.i++
		}
	}
	return s.b[start:s.i], nil
}

// object calls field for each key of an object; field must consume the value.
func (s *jsonScan) object(field func(key string) error) error {
	if err := s.expect('{'); err != nil {
		return err
	}
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(k); err != nil {
			return err
		}
		if s.peek() == ',' {
			s.i++
			continue
		}
		return s.expect('}')
	}
}

// array calls elem for each element of an array; elem must consume it.
func (s *jsonScan) array(elem func(i int) error) error {
	if err := s.expect('['); err != nil {
		return err
	}
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		if s.peek() == ',' {
			s.i++
			continue
		}
		return s.expect(']')
	}
}

// rawObject splits an object into its fields' raw values (a repeated key keeps the last value,
// as encoding/json does).
func (s *jsonScan) rawObject() (map[string][]byte, error) {
	out := map[string][]byte{}
	err := s.object(func(k string) error {
		v, err := s.skip(0)
		out[k] = v
		return err
	})
	return out, err
}

// end checks that only white space follows.
func (s *jsonScan) end() error {
	if s.peek() != 0 {
		return s.fail("data after the value")
	}
	return nil
}
