package protocol

import (
	"encoding/binary"
	"math"
	"slices"
	"unsafe"
)

// A sampling step sends the whole logit vector (517 KB for 129,280 float32
// logits) to the edge. Converting it to bytes one float at a time and then
// encoding it through the msgpack library cost more host time per step than
// the C sampler's own work on model-like logits. AppendSampleRequestF32
// writes the request in one pass, the floats with one copy on
// little-endian machines; Unmarshal, and the edge's in-place decoder, read
// it back to the same SampleRequest.

// littleEndian reports whether float32 memory is already the wire order.
var littleEndian = func() bool {
	x := uint32(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// AppendSampleRequestF32 appends the msgpack of SampleRequest{Handle: h,
// F32: logits as little-endian bytes, History: history} to b. Token ids in
// history are non-negative. It does not validate (Validate the decoded
// request for that); len(logits) must be at most MaxFrameSize/4.
func AppendSampleRequestF32(b []byte, h Handle, logits []float32, history []int32) []byte {
	n := byte(0x82) // fixmap: handle, f32
	if len(history) > 0 {
		n = 0x83
	}
	b = append(b, n)
	b = appendStr(b, "handle")
	b = appendUint(b, uint64(h))
	b = appendStr(b, "f32")
	size := 4 * len(logits)
	switch {
	case size < 1<<8:
		b = append(b, 0xc4, byte(size))
	case size < 1<<16:
		b = append(b, 0xc5, byte(size>>8), byte(size))
	default:
		b = append(b, 0xc6)
		b = binary.BigEndian.AppendUint32(b, uint32(size))
	}
	at := len(b)
	// Grow without zeroing what the copy below overwrites anyway (a
	// reused buffer is not cleared; a new one is, by the allocator).
	b = slices.Grow(b, size)[:at+size]
	out := b[at:]
	if littleEndian && size > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(&logits[0])), size))
	} else {
		for i, v := range logits {
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
		}
	}
	if len(history) > 0 {
		b = appendStr(b, "history")
		b = appendArrayLen(b, len(history))
		for _, id := range history {
			if id < 0 {
				b = append(b, 0xd2)
				b = binary.BigEndian.AppendUint32(b, uint32(id))
				continue
			}
			b = appendUint(b, uint64(id))
		}
	}
	return b
}

// appendArrayLen appends the header of a msgpack array of n elements.
func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n < 1<<16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// appendStr appends a msgpack fixstr (len(s) < 32).
func appendStr(b []byte, s string) []byte {
	return append(append(b, 0xa0|byte(len(s))), s...)
}

// appendUint appends v in the shortest msgpack unsigned encoding up to 32
// bits, uint64 above.
func appendUint(b []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(b, byte(v))
	case v < 1<<8:
		return append(b, 0xcc, byte(v))
	case v < 1<<16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v < 1<<32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}
