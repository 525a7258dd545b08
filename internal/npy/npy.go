// Package npy reads and writes NumPy .npy files of float32 and int32 arrays,
// the format the reference fixtures and `edgeseek logits --out` use.
package npy

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Write stores a C-ordered little-endian float32 array of the given shape.
func Write(w io.Writer, data []float32, shape ...int) error {
	n := 1
	for _, s := range shape {
		n *= s
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, have %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, s := range shape {
		dims[i] = strconv.Itoa(s)
	}
	tuple := strings.Join(dims, ", ")
	if len(shape) == 1 {
		tuple += ","
	}
	hdr := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", tuple)
	// Pad so that magic(6)+version(2)+len(2)+header+'\n' is a multiple of 64.
	pad := 64 - (10+len(hdr)+1)%64
	if pad == 64 {
		pad = 0
	}
	hdr += strings.Repeat(" ", pad) + "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(hdr)))
	b.WriteString(hdr)
	buf := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
	}
	b.Write(buf)
	_, err := w.Write(b.Bytes())
	return err
}

var (
	descrRE = regexp.MustCompile(`'descr':\s*'([<>|][a-z]\d+)'`)
	orderRE = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	shapeRE = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Array is a decoded .npy array, widened to float64 whatever its dtype.
type Array struct {
	Shape []int
	Data  []float64
}

// Read decodes a version 1 or 2 .npy file holding <f4, <f8, <i4 or <i8 values.
func Read(data []byte) (*Array, error) {
	if len(data) < 10 || string(data[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("npy: not a .npy file")
	}
	var hlen, off int
	switch data[6] {
	case 1:
		hlen, off = int(binary.LittleEndian.Uint16(data[8:])), 10
	case 2, 3:
		if len(data) < 12 {
			return nil, fmt.Errorf("npy: truncated header")
		}
		hlen, off = int(binary.LittleEndian.Uint32(data[8:])), 12
	default:
		return nil, fmt.Errorf("npy: unsupported version %d", data[6])
	}
	if off+hlen > len(data) {
		return nil, fmt.Errorf("npy: header of %d bytes runs past the file", hlen)
	}
	hdr := string(data[off : off+hlen])
	body := data[off+hlen:]
	d := descrRE.FindStringSubmatch(hdr)
	o := orderRE.FindStringSubmatch(hdr)
	s := shapeRE.FindStringSubmatch(hdr)
	if d == nil || o == nil || s == nil {
		return nil, fmt.Errorf("npy: malformed header %q", hdr)
	}
	if o[1] == "True" {
		return nil, fmt.Errorf("npy: fortran order not supported")
	}
	a := &Array{}
	n := 1
	for _, f := range strings.Split(s[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("npy: bad shape %q", s[1])
		}
		a.Shape = append(a.Shape, v)
		n *= v
	}
	var size int
	switch d[1] {
	case "<f4", "<i4":
		size = 4
	case "<f8", "<i8":
		size = 8
	default:
		return nil, fmt.Errorf("npy: unsupported dtype %s", d[1])
	}
	if len(body) != n*size {
		return nil, fmt.Errorf("npy: %d data bytes for shape %v of %s", len(body), a.Shape, d[1])
	}
	a.Data = make([]float64, n)
	for i := range a.Data {
		switch d[1] {
		case "<f4":
			a.Data[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(body[4*i:])))
		case "<i4":
			a.Data[i] = float64(int32(binary.LittleEndian.Uint32(body[4*i:])))
		case "<f8":
			a.Data[i] = math.Float64frombits(binary.LittleEndian.Uint64(body[8*i:]))
		case "<i8":
			a.Data[i] = float64(int64(binary.LittleEndian.Uint64(body[8*i:])))
		}
	}
	return a, nil
}
