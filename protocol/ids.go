package protocol

import "encoding/binary"

// A tokenize reply is one long []int32. The msgpack library encodes it by
// reflection, element by element, which in the WebAssembly edge took about
// half of every tokenize call (the edge's design notes,
// wasm/tokenizer/DESIGN.md). appendIDsReply writes the same value directly,
// with the smallest integer encoding for each id (most ids take 3 bytes
// instead of 5); any msgpack decoder reads it back to the same IDsReply.

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
	switch {
	case n < 16:
		b = append(b, 0x90|byte(n))
	case n < 1<<16:
		b = append(b, 0xdc, byte(n>>8), byte(n))
	default:
		b = append(b, 0xdd)
		b = binary.BigEndian.AppendUint32(b, uint32(n))
	}
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
