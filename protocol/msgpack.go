package protocol

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// maxDepth bounds the nesting of msgpack containers accepted by the
// decoder; no message defined here nests deeper than a few levels.
const maxDepth = 16

// errMalformed is wrapped by every structural decoding error.
var errMalformed = errors.New("malformed msgpack")

// checkWellFormed walks b as exactly one msgpack value and rejects it when
// it is truncated, nests deeper than maxDepth, has trailing bytes, or
// declares a container or string longer than the bytes that remain.
//
// The last check matters: msgpack/v5 preallocates slices to their declared
// length, so a five-byte frame declaring a 2^32-element array would
// otherwise make the decoder allocate gigabytes before failing.
func checkWellFormed(b []byte) error {
	n, err := skipValue(b, 0, 0)
	if err != nil {
		return err
	}
	if n != len(b) {
		return fmt.Errorf("%w: %d trailing bytes", errMalformed, len(b)-n)
	}
	return nil
}

// skipValue returns the offset just past the msgpack value starting at off.
func skipValue(b []byte, off, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("%w: nested deeper than %d", errMalformed, maxDepth)
	}
	if off >= len(b) {
		return 0, fmt.Errorf("%w: truncated at byte %d", errMalformed, off)
	}
	c := b[off]
	off++
	// need returns the big-endian unsigned integer of size n at off.
	need := func(n int) (int, error) {
		if len(b)-off < n {
			return 0, fmt.Errorf("%w: truncated at byte %d", errMalformed, off)
		}
		v := 0
		for i := 0; i < n; i++ {
			v = v<<8 | int(b[off+i])
		}
		off += n
		return v, nil
	}
	// blob skips n raw bytes.
	blob := func(n int) (int, error) {
		if n < 0 || n > len(b)-off {
			return 0, fmt.Errorf("%w: length %d exceeds the %d bytes left", errMalformed, n, len(b)-off)
		}
		return off + n, nil
	}
	// items skips n values (2n for maps).
	items := func(n int) (int, error) {
		if n < 0 || n > len(b)-off {
			return 0, fmt.Errorf("%w: %d elements exceed the %d bytes left", errMalformed, n, len(b)-off)
		}
		var err error
		for i := 0; i < n; i++ {
			if off, err = skipValue(b, off, depth+1); err != nil {
				return 0, err
			}
		}
		return off, nil
	}
	switch {
	case c <= 0x7f || c >= 0xe0: // fixint
		return off, nil
	case c >= 0x80 && c <= 0x8f: // fixmap
		return items(2 * int(c&0x0f))
	case c >= 0x90 && c <= 0x9f: // fixarray
		return items(int(c & 0x0f))
	case c >= 0xa0 && c <= 0xbf: // fixstr
		return blob(int(c & 0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		return off, nil
	case 0xc4, 0xd9: // bin8, str8
		n, err := need(1)
		if err != nil {
			return 0, err
		}
		return blob(n)
	case 0xc5, 0xda: // bin16, str16
		n, err := need(2)
		if err != nil {
			return 0, err
		}
		return blob(n)
	case 0xc6, 0xdb: // bin32, str32
		n, err := need(4)
		if err != nil {
			return 0, err
		}
		return blob(n)
	case 0xc7, 0xc8, 0xc9: // ext8/16/32: length, type, data
		n, err := need(1 << (c - 0xc7))
		if err != nil {
			return 0, err
		}
		return blob(n + 1)
	case 0xca, 0xce, 0xd2: // float32, uint32, int32
		return blob(4)
	case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
		return blob(8)
	case 0xcc, 0xd0: // uint8, int8
		return blob(1)
	case 0xcd, 0xd1: // uint16, int16
		return blob(2)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1..16 plus type byte
		return blob(1 + 1<<(c-0xd4))
	case 0xdc: // array16
		n, err := need(2)
		if err != nil {
			return 0, err
		}
		return items(n)
	case 0xdd: // array32
		n, err := need(4)
		if err != nil {
			return 0, err
		}
		return items(n)
	case 0xde: // map16
		n, err := need(2)
		if err != nil {
			return 0, err
		}
		return items(2 * n)
	case 0xdf: // map32
		n, err := need(4)
		if err != nil {
			return 0, err
		}
		return items(2 * n)
	}
	return 0, fmt.Errorf("%w: reserved byte 0x%02x at %d", errMalformed, c, off-1)
}

// Validator is implemented by messages that check their own fields after
// decoding.
type Validator interface {
	Validate() error
}

// Unmarshal decodes b, which must hold exactly one well-formed msgpack
// value of at most MaxFrameSize bytes, into v, rejecting fields that v does
// not declare. When v implements Validator its Validate method runs last.
// Unmarshal never panics on hostile input.
func Unmarshal(b []byte, v any) (err error) {
	if len(b) > MaxFrameSize {
		return fmt.Errorf("protocol: %d bytes exceed the %d-byte frame limit: %w", len(b), MaxFrameSize, ErrOversize)
	}
	if r, ok := v.(*IDsReply); ok {
		if ids, ok := decodeIDsReply(b); ok {
			r.IDs = ids
			return nil
		}
	}
	if err := checkWellFormed(b); err != nil {
		return fmt.Errorf("protocol: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("protocol: %w: decoder panicked: %v", errMalformed, r)
		}
	}()
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields(true)
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("protocol: %w: %v", errMalformed, err)
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return fmt.Errorf("protocol: %w", err)
		}
	}
	return nil
}

// Raw is a message already encoded as msgpack (for example by
// AppendSampleRequestF32): Marshal returns it as it is, so a hot path can
// encode once, directly, and pass the bytes wherever a message goes.
type Raw []byte

// Marshal encodes v as msgpack. Values that implement Validator are
// validated first so that a peer never receives a frame it must reject. A
// Raw is returned unchanged (after the size check).
func Marshal(v any) ([]byte, error) {
	if r, ok := v.(Raw); ok {
		if len(r) > MaxFrameSize {
			return nil, fmt.Errorf("protocol: raw message of %d bytes, over the %d-byte limit: %w", len(r), MaxFrameSize, ErrOversize)
		}
		return r, nil
	}
	if val, ok := v.(Validator); ok {
		if err := val.Validate(); err != nil {
			return nil, fmt.Errorf("protocol: refusing to encode: %w", err)
		}
	}
	var b []byte
	if r, ok := v.(*IDsReply); ok {
		b = appendIDsReply(make([]byte, 0, idsReplyBound(len(r.IDs))), r)
	} else {
		var err error
		if b, err = msgpack.Marshal(v); err != nil {
			return nil, fmt.Errorf("protocol: encode %T: %w", v, err)
		}
	}
	if len(b) > MaxFrameSize {
		return nil, fmt.Errorf("protocol: %T encodes to %d bytes, over the %d-byte limit: %w", v, len(b), MaxFrameSize, ErrOversize)
	}
	return b, nil
}
