package reftest

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

// store reads tensors by native name from a checkpoint and decodes them to
// float64 with its own decoders (spec attention-and-formats.md §2.1, §7),
// caching each decoded tensor.
type store struct {
	ck    *checkpoint.Checkpoint
	cfg   *checkpoint.Config
	mats  map[string]*mat
	vecs  map[string][]float64
	table map[string]*safetensors.Tensor
}

// mat is a dequantized [rows, cols] weight matrix. quant reports an FP8 or
// FP4 weight, before whose products the reference rounds activations to FP8.
type mat struct {
	rows, cols int
	w          []float64
	quant      bool
}

func newStore(ck *checkpoint.Checkpoint) *store {
	return &store{ck: ck, cfg: ck.Config, mats: map[string]*mat{}, vecs: map[string][]float64{}, table: map[string]*safetensors.Tensor{}}
}

func (s *store) has(name string) bool { return s.ck.Has(name) }

func (s *store) tensor(name string) (*safetensors.Tensor, error) {
	t, _, err := s.ck.Tensor(name)
	return t, err
}

// decodeE4M3 is the value of a float8 e4m3fn byte: sign, 4 exponent bits
// (bias 7), 3 mantissa bits, subnormals for exponent 0, NaN for S.1111.111.
func decodeE4M3(b byte) float64 {
	sign := 1.0
	if b&0x80 != 0 {
		sign = -1
	}
	e, m := int(b>>3&0xF), float64(b&7)
	switch {
	case e == 15 && m == 7:
		return math.NaN()
	case e == 0:
		return sign * m / 8 * math.Ldexp(1, -6)
	}
	return sign * (1 + m/8) * math.Ldexp(1, e-7)
}

// decodeE8M0 is the value of an e8m0 scale byte, 2^(b−127); 255 is NaN.
func decodeE8M0(b byte) float64 {
	if b == 255 {
		return math.NaN()
	}
	return math.Ldexp(1, int(b)-127)
}

// decodeE2M1 is the value of an FP4 nibble; bit 3 is the sign.
func decodeE2M1(n byte) float64 {
	v := e2m1Mags[n&7]
	if n&8 != 0 {
		return -v
	}
	return v
}

// floats decodes a BF16, F16 or F32 tensor.
func floats(t *safetensors.Tensor) ([]float64, error) {
	n := t.NumElements()
	out := make([]float64, n)
	switch t.DType {
	case safetensors.F32:
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
		}
	case safetensors.BF16:
		for i := range out {
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16))
		}
	default:
		return nil, fmt.Errorf("reftest: %s: dtype %s is not a float vector", t.Name, t.DType)
	}
	return out, nil
}

// vec returns a float tensor (any shape) flattened.
func (s *store) vec(name string) ([]float64, error) {
	if v, ok := s.vecs[name]; ok {
		return v, nil
	}
	t, err := s.tensor(name)
	if err != nil {
		return nil, err
	}
	v, err := floats(t)
	if err != nil {
		return nil, err
	}
	s.vecs[name] = v
	return v, nil
}

// ints returns an integer tensor (I64 or I32) flattened.
func (s *store) ints(name string) ([]int64, error) {
	t, err := s.tensor(name)
	if err != nil {
		return nil, err
	}
	out := make([]int64, t.NumElements())
	for i := range out {
		switch t.DType {
		case safetensors.I64:
			out[i] = int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
		case safetensors.I32:
			out[i] = int64(int32(binary.LittleEndian.Uint32(t.Data[4*i:])))
		default:
			return nil, fmt.Errorf("reftest: %s: dtype %s is not an integer tensor", name, t.DType)
		}
	}
	return out, nil
}

// matrix returns the dequantized `<base>.weight`:
//   - BF16/F32: as stored;
//   - F8_E4M3 [R, C] with `.scale` F8_E8M0 [ceil(R/b), ceil(C/b)], b the
//     config's FP8 block: W = e4m3 · 2^(scale[r/b][c/b] − 127);
//   - I8 [R, C/2] (packed FP4, low nibble = even column) with `.scale`
//     F8_E8M0 [R, C/32]: W = e2m1 · 2^(scale[r][c/32] − 127).
func (s *store) matrix(base string) (*mat, error) {
	return s.matrixNamed(base, base+".weight")
}

// matrixNamed is matrix for a weight stored under name (the mHC projections
// have no ".weight" suffix), with scales under `<base>.scale`.
func (s *store) matrixNamed(base, name string) (*mat, error) {
	if m, ok := s.mats[name]; ok {
		return m, nil
	}
	t, err := s.tensor(name)
	if err != nil {
		return nil, err
	}
	if len(t.Shape) != 2 {
		return nil, fmt.Errorf("reftest: %s: shape %v is not a matrix", name, t.Shape)
	}
	m := &mat{rows: t.Shape[0], cols: t.Shape[1]}
	switch t.DType {
	case safetensors.BF16, safetensors.F32:
		if m.w, err = floats(t); err != nil {
			return nil, err
		}
	case safetensors.F8E4M3:
		sc, err := s.tensor(base + ".scale")
		if err != nil {
			return nil, err
		}
		b := s.cfg.FP8Block
		nb := (m.cols + b - 1) / b
		if len(sc.Shape) != 2 || sc.Shape[0] != (m.rows+b-1)/b || sc.Shape[1] != nb {
			return nil, fmt.Errorf("reftest: %s.scale: shape %v, want [%d %d]", base, sc.Shape, (m.rows+b-1)/b, nb)
		}
		m.quant = true
		m.w = make([]float64, m.rows*m.cols)
		for r := 0; r < m.rows; r++ {
			for c := 0; c < m.cols; c++ {
				m.w[r*m.cols+c] = decodeE4M3(t.Data[r*m.cols+c]) * decodeE8M0(sc.Data[(r/b)*nb+c/b])
			}
		}
	case safetensors.I8:
		sc, err := s.tensor(base + ".scale")
		if err != nil {
			return nil, err
		}
		m.cols *= 2
		if len(sc.Shape) != 2 || sc.Shape[0] != m.rows || sc.Shape[1]*32 != m.cols {
			return nil, fmt.Errorf("reftest: %s.scale: shape %v, want [%d %d]", base, sc.Shape, m.rows, m.cols/32)
		}
		m.quant = true
		m.w = make([]float64, m.rows*m.cols)
		for r := 0; r < m.rows; r++ {
			for c := 0; c < m.cols; c++ {
				i := r*m.cols + c
				nib := t.Data[i/2] >> (4 * (i % 2)) & 0xF
				m.w[i] = decodeE2M1(nib) * decodeE8M0(sc.Data[r*(m.cols/32)+c/32])
			}
		}
	default:
		return nil, fmt.Errorf("reftest: %s: unsupported dtype %s", name, t.DType)
	}
	s.mats[name] = m
	return m, nil
}

// tableRow returns row r of an Engram table `<base>.weight` (F8_E4M3
// [rows, width]) dequantized with its per-row scales `<base>.scale`
// (F8_E8M0 [rows, width/32]), spec mhc-moe-engram-encoding.md §4.4.
func (s *store) tableRow(base string, r int64) ([]float64, error) {
	t, err := s.tensor(base + ".weight")
	if err != nil {
		return nil, err
	}
	sc, err := s.tensor(base + ".scale")
	if err != nil {
		return nil, err
	}
	rows, width := t.Shape[0], t.Shape[1]
	if r < 0 || r >= int64(rows) {
		return nil, fmt.Errorf("reftest: %s: row %d outside [0, %d)", base, r, rows)
	}
	if sc.Shape[0] != rows || sc.Shape[1]*32 != width {
		return nil, fmt.Errorf("reftest: %s.scale: shape %v, want [%d %d]", base, sc.Shape, rows, width/32)
	}
	out := make([]float64, width)
	for c := range out {
		out[c] = decodeE4M3(t.Data[int(r)*width+c]) * decodeE8M0(sc.Data[int(r)*(width/32)+c/32])
	}
	return out, nil
}

// mul is W·x.
func (m *mat) mul(x []float64) []float64 {
	if len(x) != m.cols {
		panic(fmt.Sprintf("reftest: product of a %dx%d matrix with a vector of %d", m.rows, m.cols, len(x)))
	}
	y := make([]float64, m.rows)
	for r := range y {
		row := m.w[r*m.cols : (r+1)*m.cols]
		acc := 0.0
		for c, v := range row {
			acc += v * x[c]
		}
		y[r] = acc
	}
	return y
}
