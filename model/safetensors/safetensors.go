// Package safetensors reads and writes the safetensors container: an 8-byte
// little-endian header length, a JSON header naming each tensor's dtype, shape
// and byte range, then the raw little-endian data. Files are memory-mapped
// read-only and tensors are zero-copy views into the mapping, so a checkpoint
// of any size opens in constant memory. Every header field is validated
// before a byte of data is handed out; errors name the file and the tensor.
package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strings"
)

// MaxHeaderSize bounds the JSON header. Real headers of 46-shard checkpoints
// are a few MB; the bound stops a corrupt length from allocating gigabytes.
const MaxHeaderSize = 100 << 20

// DType is a tensor element type, spelled as in safetensors headers.
type DType string

// Element types accepted in a header.
const (
	BF16    DType = "BF16"
	F16     DType = "F16"
	F32     DType = "F32"
	F64     DType = "F64"
	I64     DType = "I64"
	I32     DType = "I32"
	I16     DType = "I16"
	I8      DType = "I8"
	U8      DType = "U8"
	BOOL    DType = "BOOL"
	F8E4M3  DType = "F8_E4M3"
	F8E5M2  DType = "F8_E5M2"
	F8E8M0  DType = "F8_E8M0"
	Unknown DType = ""
)

var dtypeSizes = map[DType]int{
	BF16: 2, F16: 2, F32: 4, F64: 8, I64: 8, I32: 4, I16: 2,
	I8: 1, U8: 1, BOOL: 1, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1,
}

// Size is the number of bytes per element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypeSizes[d] }

// Valid reports whether d is one of the accepted dtypes.
func (d DType) Valid() bool { return d.Size() > 0 }

// Tensor is one named array. Data aliases the file mapping when read from a
// File: it is read-only and valid until the File is closed.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// NumElements is the product of the shape (1 for a scalar).
func (t *Tensor) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Error is a validation or I/O failure; it names the file and, when one is
// involved, the tensor.
type Error struct {
	File   string
	Tensor string
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("safetensors: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Tensor != "" {
		fmt.Fprintf(&b, "tensor %q: ", e.Tensor)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Entry is one tensor's header record, validated: its data lies at
// [Begin, End) relative to the start of the data section.
type Entry struct {
	Name       string
	DType      DType
	Shape      []int
	Begin, End int64
}

// Header is a parsed and validated header.
type Header struct {
	Metadata map[string]string
	Entries  []Entry // sorted by name
}

type rawEntry struct {
	DType       string          `json:"dtype"`
	Shape       json.RawMessage `json:"shape"`
	DataOffsets json.RawMessage `json:"data_offsets"`
}

// ParseHeader validates a JSON header against a data section of dataLen
// bytes. Errors name the tensor but not the file (the caller wraps them).
func ParseHeader(header []byte, dataLen int64) (*Header, error) {
	if dataLen < 0 {
		return nil, fmt.Errorf("negative data length %d", dataLen)
	}
	// A safetensors header may be padded with trailing spaces to 8 bytes.
	header = bytes.TrimRight(header, " \x00")
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(header, &raw); err != nil {
		return nil, fmt.Errorf("header is not a JSON object: %w", err)
	}
	if raw == nil {
		return nil, errors.New("header is not a JSON object: null")
	}
	h := &Header{}
	if md, ok := raw["__metadata__"]; ok {
		if err := json.Unmarshal(md, &h.Metadata); err != nil {
			return nil, fmt.Errorf("__metadata__ is not a map of strings: %w", err)
		}
		delete(raw, "__metadata__")
	}
	h.Entries = make([]Entry, 0, len(raw))
	for name, msg := range raw {
		e, err := parseEntry(name, msg, dataLen)
		if err != nil {
			return nil, &Error{Tensor: name, Err: err}
		}
		h.Entries = append(h.Entries, e)
	}
	// Overlap check over entries in offset order; empty tensors occupy no
	// bytes and overlap nothing.
	byOff := make([]*Entry, 0, len(h.Entries))
	for i := range h.Entries {
		if h.Entries[i].End > h.Entries[i].Begin {
			byOff = append(byOff, &h.Entries[i])
		}
	}
	sort.Slice(byOff, func(i, j int) bool {
		if byOff[i].Begin != byOff[j].Begin {
			return byOff[i].Begin < byOff[j].Begin
		}
		return byOff[i].Name < byOff[j].Name
	})
	for i := 1; i < len(byOff); i++ {
		p, c := byOff[i-1], byOff[i]
		if c.Begin < p.End {
			return nil, &Error{Tensor: c.Name, Err: fmt.Errorf("data_offsets [%d, %d) overlap tensor %q [%d, %d)", c.Begin, c.End, p.Name, p.Begin, p.End)}
		}
	}
	slices.SortFunc(h.Entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return h, nil
}

func parseEntry(name string, msg json.RawMessage, dataLen int64) (Entry, error) {
	e := Entry{Name: name}
	if name == "" {
		return e, errors.New("empty tensor name")
	}
	var r rawEntry
	if err := json.Unmarshal(msg, &r); err != nil {
		return e, fmt.Errorf("entry is not an object with dtype, shape, data_offsets: %w", err)
	}
	e.DType = DType(r.DType)
	if !e.DType.Valid() {
		return e, fmt.Errorf("unknown dtype %q", r.DType)
	}
	var shape []int64
	if len(r.Shape) == 0 {
		return e, errors.New("missing shape")
	}
	if err := json.Unmarshal(r.Shape, &shape); err != nil || shape == nil {
		return e, fmt.Errorf("shape %s is not a list of integers", r.Shape)
	}
	var offs []int64
	if len(r.DataOffsets) == 0 {
		return e, errors.New("missing data_offsets")
	}
	if err := json.Unmarshal(r.DataOffsets, &offs); err != nil || len(offs) != 2 {
		return e, fmt.Errorf("data_offsets %s is not a pair of integers", r.DataOffsets)
	}
	// Element count, saturating once it exceeds the data section (which is
	// then an error anyway), so no shape can overflow the arithmetic.
	n := uint64(1)
	e.Shape = make([]int, len(shape))
	for i, d := range shape {
		if d < 0 {
			return e, fmt.Errorf("negative dimension %d in shape %v", d, shape)
		}
		e.Shape[i] = int(d)
		hi, lo := bits.Mul64(n, uint64(d))
		if hi != 0 || lo > uint64(dataLen)+1 {
			lo = uint64(dataLen) + 1
		}
		n = lo
	}
	if slices.Contains(shape, 0) {
		n = 0
	}
	hi, size := bits.Mul64(n, uint64(e.DType.Size()))
	b, end := offs[0], offs[1]
	if b < 0 || end < b {
		return e, fmt.Errorf("data_offsets [%d, %d) are not an increasing pair", b, end)
	}
	if end > dataLen {
		return e, fmt.Errorf("data_offsets [%d, %d) run past the data section (%d bytes)", b, end, dataLen)
	}
	if hi != 0 || size != uint64(end-b) {
		return e, fmt.Errorf("shape %v of %s needs a different byte count than data_offsets [%d, %d) (%d bytes)", shape, e.DType, b, end, end-b)
	}
	e.Begin, e.End = b, end
	return e, nil
}
