package edge

import (
	"encoding/binary"

	"github.com/edgeseek/edgeseek/protocol"
)

// sampleHandler is edge_sample's handler. A sampling step carries the whole
// logit vector (517 KB for 129,280 f32 logits); protocol.Unmarshal would
// allocate and copy it every step, which in WebAssembly cost about as much
// as sampling. decodeSampleRequest reads the common encoding in place; any
// other request goes through protocol.Unmarshal, so errors and strictness
// are those of every other handler.
func sampleHandler(e *Edge, b []byte) (any, error) {
	if r, ok := decodeSampleRequest(b); ok && r.Validate() == nil {
		return e.Sample(r)
	}
	r := new(protocol.SampleRequest)
	if err := protocol.Unmarshal(b, r); err != nil {
		return nil, err
	}
	return e.Sample(r)
}

// decodeSampleRequest decodes b when it is a msgpack fixmap of distinct
// SampleRequest fields with unsigned integers (handle, history) and bin
// values (f32, f16), and nothing after it; otherwise it returns false.
// F32 and F16 point into b.
func decodeSampleRequest(b []byte) (*protocol.SampleRequest, bool) {
	if len(b) == 0 || len(b) > protocol.MaxFrameSize || b[0]&0xf0 != 0x80 {
		return nil, false
	}
	r := new(protocol.SampleRequest)
	off, n := 1, int(b[0]&0x0f)
	var seen [4]bool
	for range n {
		if off >= len(b) || b[off]&0xe0 != 0xa0 {
			return nil, false
		}
		kl := int(b[off] & 0x1f)
		off++
		if kl > len(b)-off {
			return nil, false
		}
		key := string(b[off : off+kl]) // no allocation: compared only
		off += kl
		field := -1
		switch key {
		case "handle":
			field = 0
		case "f32":
			field = 1
		case "f16":
			field = 2
		case "history":
			field = 3
		}
		if field < 0 || seen[field] {
			return nil, false
		}
		seen[field] = true
		var ok bool
		switch field {
		case 0:
			var h uint64
			if h, off, ok = readUint(b, off); !ok || h > 1<<32-1 {
				return nil, false
			}
			r.Handle = protocol.Handle(h)
		case 1, 2:
			var v []byte
			if v, off, ok = readBin(b, off); !ok {
				return nil, false
			}
			if field == 1 {
				r.F32 = v
			} else {
				r.F16 = v
			}
		case 3:
			if r.History, off, ok = readIDs(b, off); !ok {
				return nil, false
			}
		}
	}
	return r, off == len(b)
}

// readUint reads a msgpack positive fixint, uint8, uint16 or uint32.
func readUint(b []byte, off int) (uint64, int, bool) {
	if off >= len(b) {
		return 0, 0, false
	}
	c := b[off]
	off++
	if c <= 0x7f {
		return uint64(c), off, true
	}
	var w int
	switch c {
	case 0xcc:
		w = 1
	case 0xcd:
		w = 2
	case 0xce:
		w = 4
	default:
		return 0, 0, false
	}
	if w > len(b)-off {
		return 0, 0, false
	}
	var v uint64
	for _, d := range b[off : off+w] {
		v = v<<8 | uint64(d)
	}
	return v, off + w, true
}

// readBin reads a msgpack bin8, bin16 or bin32 and returns its bytes in b.
func readBin(b []byte, off int) ([]byte, int, bool) {
	if off >= len(b) {
		return nil, 0, false
	}
	var n, w int
	switch b[off] {
	case 0xc4:
		w = 1
	case 0xc5:
		w = 2
	case 0xc6:
		w = 4
	default:
		return nil, 0, false
	}
	off++
	if w > len(b)-off {
		return nil, 0, false
	}
	for _, d := range b[off : off+w] {
		n = n<<8 | int(d)
	}
	off += w
	if n > len(b)-off {
		return nil, 0, false
	}
	return b[off : off+n : off+n], off + n, true
}

// readIDs reads a msgpack array of unsigned integers below 2^31.
func readIDs(b []byte, off int) ([]int32, int, bool) {
	if off >= len(b) {
		return nil, 0, false
	}
	var n int
	switch c := b[off]; {
	case c&0xf0 == 0x90:
		n, off = int(c&0x0f), off+1
	case c == 0xdc && len(b)-off >= 3:
		n, off = int(binary.BigEndian.Uint16(b[off+1:])), off+3
	case c == 0xdd && len(b)-off >= 5:
		n, off = int(binary.BigEndian.Uint32(b[off+1:])), off+5
	default:
		return nil, 0, false
	}
	if n > len(b)-off { // every element takes at least one byte
		return nil, 0, false
	}
	ids := make([]int32, n)
	for i := range ids {
		v, next, ok := readUint(b, off)
		if !ok || v > 1<<31-1 {
			return nil, 0, false
		}
		ids[i], off = int32(v), next
	}
	return ids, off, true
}
