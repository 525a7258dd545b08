// Package kernels holds the numerical building blocks of the forward pass:
// quantized matrix products, normalisation, rotary embedding, attention with a
// sink, activation fake-quantisation. Nothing here knows about a model; the
// model package composes these operations.
package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Format is the storage format of a weight matrix, as it lies in the checkpoint.
type Format uint8

// Storage formats a Matrix can hold.
const (
	F32  Format = iota // little-endian float32
	BF16               // bfloat16
	F16                // IEEE half
	FP8                // e4m3fn with e8m0 block scales [ceil(Rows/Block), ceil(Cols/Block)]
	FP4                // packed e2m1 (low nibble first) with e8m0 scales [Rows, Cols/32]
)

// String returns the format's short name, as used in logs and benchmark rows.
func (f Format) String() string {
	switch f {
	case F32:
		return "f32"
	case BF16:
		return "bf16"
	case F16:
		return "f16"
	case FP8:
		return "fp8"
	case FP4:
		return "fp4"
	}
	return fmt.Sprintf("format(%d)", uint8(f))
}

// FP4Group is the number of inputs that share one e8m0 scale in an FP4 matrix.
const FP4Group = 32

// Matrix is a read-only weight matrix of Rows outputs by Cols inputs kept in
// its checkpoint encoding; products dequantize in registers, never into a copy.
type Matrix struct {
	Format Format
	Rows   int
	Cols   int
	Data   []byte // row-major payload
	Scales []byte // e8m0 scales (FP8, FP4); nil otherwise
	Block  int    // FP8 square block edge (128 in V4, 32 in V4.1)
}

// Bytes is the number of payload and scale bytes a product must stream.
func (m *Matrix) Bytes() int { return len(m.Data) + len(m.Scales) }

// Validate checks that the payload and scale sizes agree with the shape.
func (m *Matrix) Validate() error {
	var want int
	switch m.Format {
	case F32:
		want = m.Rows * m.Cols * 4
	case BF16, F16:
		want = m.Rows * m.Cols * 2
	case FP8:
		want = m.Rows * m.Cols
		if m.Block <= 0 {
			return fmt.Errorf("fp8 matrix %dx%d: block size %d", m.Rows, m.Cols, m.Block)
		}
		ws := ceilDiv(m.Rows, m.Block) * ceilDiv(m.Cols, m.Block)
		if len(m.Scales) != ws {
			return fmt.Errorf("fp8 matrix %dx%d block %d: %d scale bytes, want %d", m.Rows, m.Cols, m.Block, len(m.Scales), ws)
		}
	case FP4:
		if m.Cols%FP4Group != 0 {
			return fmt.Errorf("fp4 matrix %dx%d: columns not a multiple of %d", m.Rows, m.Cols, FP4Group)
		}
		want = m.Rows * m.Cols / 2
		if ws := m.Rows * m.Cols / FP4Group; len(m.Scales) != ws {
			return fmt.Errorf("fp4 matrix %dx%d: %d scale bytes, want %d", m.Rows, m.Cols, len(m.Scales), ws)
		}
	default:
		return fmt.Errorf("matrix %dx%d: unknown format %v", m.Rows, m.Cols, m.Format)
	}
	if len(m.Data) != want {
		return fmt.Errorf("%v matrix %dx%d: %d payload bytes, want %d", m.Format, m.Rows, m.Cols, len(m.Data), want)
	}
	return nil
}

// At returns the dequantized element (r, c). It is the plain, slow definition
// every fast path is tested against.
func (m *Matrix) At(r, c int) float32 {
	i := r*m.Cols + c
	switch m.Format {
	case F32:
		return math.Float32frombits(binary.LittleEndian.Uint32(m.Data[4*i:]))
	case BF16:
		return BF16ToF32(binary.LittleEndian.Uint16(m.Data[2*i:]))
	case F16:
		return F16ToF32(binary.LittleEndian.Uint16(m.Data[2*i:]))
	case FP8:
		nb := ceilDiv(m.Cols, m.Block)
		s := E8M0ToF32(m.Scales[(r/m.Block)*nb+c/m.Block])
		return E4M3ToF32(m.Data[i]) * s
	case FP4:
		b := m.Data[i/2]
		nib := b & 0xF
		if i%2 == 1 {
			nib = b >> 4
		}
		s := E8M0ToF32(m.Scales[i/FP4Group])
		return fp4Table[nib] * s
	}
	panic("kernels: unknown matrix format")
}

// RowF32 writes the dequantized row r into dst (len Cols).
func (m *Matrix) RowF32(dst []float32, r int) {
	for c := 0; c < m.Cols; c++ {
		dst[c] = m.At(r, c)
	}
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }
