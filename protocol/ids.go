package protocol

import "encoding/binary"

// A tokenize reply is one long []int32. The msgpack library encodes it by
// reflection, element by element, which in the WebAssembly edge took about
// half of every tokenize call (the edge's design notes,
// wasm/tokenizer/DESIGN.md). appendIDsReply writes the same value directly,
// with the smallest integer encoding for each id (most ids take 3 bytes
// instead of 5); any msgpack decoder reads it back to the same IDsReply.

// decodeIDsReply is Unmarshal for an IDsReply without reflection (the
// library decodes a []int32 element by element through reflection, about
// 20 ns per token on the host): it reads a one-entry map "ids" → nil or an
// array of integers that fit int32, and nothing after it. Anything else
// returns false, and Unmarshal's general path decides (and words the
// error), so the two accept exactly the same inputs.
func decodeIDsReply(b []byte) ([]int32, bool) {
	if len(b) < 6 || b[0] != 0x81 || string(b[1:5]) != "\xa3ids" {
		return nil, false
	}
	off := 5
	var n int
	switch c := b[off]; {
	case c == 0xc0:
		return nil, off+1 == len(b)
	case c&0xf0 == 0x90:
		n, off = int(c&0x0f), off+1
	case c == 0xdc && len(b) >= off+3:
		n, off = int(binary.BigEndian.Uint16(b[off+1:])), off+3
	case c == 0xdd && len(b) >= off+5:
		n, off = int(binary.BigEndian.Uint32(b[off+1:])), off+5
	default:
		return nil, false
	}
	if n > len(b)-off { // every id takes at least one byte
		return nil, false
	}
	ids := make([]int32, n)
	for i := range ids {
		if off >= len(b) {
			return nil, false
		}
		c := b[off]
		var v int64
		switch {
		case c < 0x80:
			v, off = int64(c), off+1
		case c >= 0xe0:
			v, off = int64(int8(c)), off+1
		case c == 0xcc && off+2 <= len(b):
			v, off = int64(b[off+1]), off+2
		case c == 0xcd && off+3 <= len(b):
			v, off = int64(binary.BigEndian.Uint16(b[off+1:])), off+3
		case c == 0xce && off+5 <= len(b):
			v, off = int64(binary.BigEndian.Uint32(b[off+1:])), off+5
		case c == 0xd0 && off+2 <= len(b):
			v, off = int64(int8(b[off+1])), off+2
		case c == 0xd1 && off+3 <= len(b):
			v, off = int64(int16(binary.BigEndian.Uint16(b[off+1:]))), off+3
		case c == 0xd2 && off+5 <= len(b):
			v, off = int64(int32(binary.BigEndian.Uint32(b[off+1:]))), off+5
		default:
			return nil, false
		}
		if v > 1<<31-1 {
			return nil, false
		}
		ids[i] = int32(v)
	}
	return ids, off == len(b)
}

// idsReplyBound is the most bytes appendIDsReply writes for n ids.
func idsReplyBound(n int) int { return 5 + 5 + 5*n }

// appendIDsReply appends the msgpack of r to b.
func appendIDsReply(b []byte, r *IDsReply) []byte {
	b = append(b, 0x81, 0xa3, 'i', 'd', 's') // {"ids": ...}
	ids := r.IDs
	if ids == nil {
		return append(b, 0xc0) // nil, as the library encodes a nil slice
	}
	n := len(ids)
	b = appendArrayLen(b, n)
	// Write through an index into spare capacity: in WebAssembly an
	// append per byte costs a capacity check and a branch each.
	at := len(b)
	if cap(b)-at < 5*n {
		nb := make([]byte, at, at+5*n)
		copy(nb, b)
		b = nb
	}
	out := b[at : at+5*n]
	w := 0
	for _, v := range ids {
		switch {
		case uint32(v) < 0x80:
			out[w] = byte(v)
			w++
		case uint32(v) < 0x100:
			out[w], out[w+1] = 0xcc, byte(v)
			w += 2
		case uint32(v) < 0x10000:
			out[w], out[w+1], out[w+2] = 0xcd, byte(v>>8), byte(v)
			w += 3
		default: // larger or negative: int32
			out[w] = 0xd2
			binary.BigEndian.PutUint32(out[w+1:], uint32(v))
			w += 5
		}
	}
	return b[:at+w]
}
