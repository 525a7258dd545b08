// Package checkpoint opens a DeepSeek-V4 / V4.1 checkpoint directory: it
// normalises config.json into Config and resolves tensors by their
// DeepSeek-native names, whichever spelling (native or transformers) the
// files use, handing out weights as zero-copy kernels.Matrix values.
package checkpoint

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/safetensors"
)

// Checkpoint is an open checkpoint: its config and its tensors. Tensor data
// aliases read-only file mappings and is valid until Close.
type Checkpoint struct {
	Dir    string
	Config *Config

	set    *safetensors.Set
	native map[string]string // native name -> stored name
	names  []string          // native names, sorted
}

// Open reads the config (config.json or inference/config.json) and maps the
// safetensors files of dir (single file or sharded with an index).
func Open(dir string) (*Checkpoint, error) {
	cfg, err := LoadConfig(dir)
	if err != nil {
		return nil, err
	}
	set, err := safetensors.OpenIndex(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	ck := &Checkpoint{Dir: dir, Config: cfg, set: set, native: make(map[string]string, set.Len())}
	for _, stored := range set.Names() {
		n := NativeName(stored)
		if prev, dup := ck.native[n]; dup {
			set.Close()
			return nil, fmt.Errorf("checkpoint: %s: tensors %q and %q both resolve to %q", dir, prev, stored, n)
		}
		ck.native[n] = stored
		ck.names = append(ck.names, n)
	}
	sort.Strings(ck.names)
	return ck, nil
}

// Close releases the file mappings.
func (ck *Checkpoint) Close() error {
	if ck.set == nil {
		return nil
	}
	err := ck.set.Close()
	ck.set, ck.native = nil, nil
	return err
}

// Names lists every tensor by its native name, sorted.
func (ck *Checkpoint) Names() []string { return ck.names }

// Has reports whether the tensor (native name) exists.
func (ck *Checkpoint) Has(name string) bool {
	_, ok := ck.native[name]
	return ok
}

// TensorError names the file and tensor a failure concerns.
type TensorError struct {
	File   string // file holding the tensor ("" when the tensor is missing)
	Tensor string // stored name
	Err    error
}

func (e *TensorError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("checkpoint: tensor %q: %v", e.Tensor, e.Err)
	}
	return fmt.Sprintf("checkpoint: %s: tensor %q: %v", e.File, e.Tensor, e.Err)
}

func (e *TensorError) Unwrap() error { return e.Err }

// Tensor returns the raw tensor under a native name, with the path of the
// file holding it.
func (ck *Checkpoint) Tensor(name string) (*safetensors.Tensor, string, error) {
	stored, ok := ck.native[name]
	if !ok {
		return nil, "", &TensorError{File: ck.Dir, Tensor: name, Err: fmt.Errorf("not in the checkpoint")}
	}
	t, path, ok := ck.set.Tensor(stored)
	if !ok {
		return nil, "", &TensorError{File: ck.Dir, Tensor: stored, Err: fmt.Errorf("not in the checkpoint")}
	}
	return t, path, nil
}

func shapeIs(t *safetensors.Tensor, want ...int) bool {
	if len(t.Shape) != len(want) {
		return false
	}
	for i := range want {
		if t.Shape[i] != want[i] {
			return false
		}
	}
	return true
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Matrix builds the rows×cols weight <base>.weight (+ <base>.scale), base
// being a native module name such as "layers.3.attn.wq_a". The dtype decides
// the format: F8_E4M3 with F8_E8M0 block scales [ceil(rows/B), ceil(cols/B)]
// (B = Config.FP8Block) is FP8; I8/U8 [rows, cols/2] with scales
// [rows, cols/32] is packed FP4; BF16, F16 and F32 are plain. The result
// aliases the file mapping.
func (ck *Checkpoint) Matrix(base string, rows, cols int) (*kernels.Matrix, error) {
	if !ck.Has(base + ".weight") {
		if m, ok, err := ck.fusedExpert(base, rows, cols); ok {
			return m, err
		}
	}
	w, wpath, err := ck.Tensor(base + ".weight")
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return &TensorError{File: wpath, Tensor: ck.native[base+".weight"], Err: fmt.Errorf(format, args...)}
	}
	var s *safetensors.Tensor
	var spath string
	if ck.Has(base + ".scale") {
		if s, spath, err = ck.Tensor(base + ".scale"); err != nil {
			return nil, err
		}
	}
	m := &kernels.Matrix{Rows: rows, Cols: cols, Data: w.Data}
	switch w.DType {
	case safetensors.F32, safetensors.BF16, safetensors.F16:
		m.Format = map[safetensors.DType]kernels.Format{safetensors.F32: kernels.F32, safetensors.BF16: kernels.BF16, safetensors.F16: kernels.F16}[w.DType]
		if !shapeIs(w, rows, cols) {
			return nil, fail("shape %v, want [%d %d]", w.Shape, rows, cols)
		}
		if s != nil {
			return nil, fail("%s weight has an unexpected scale tensor", w.DType)
		}
	case safetensors.F8E4M3:
		m.Format, m.Block = kernels.FP8, ck.Config.FP8Block
		if !shapeIs(w, rows, cols) {
			return nil, fail("shape %v, want [%d %d]", w.Shape, rows, cols)
		}
		if s == nil {
			return nil, fail("FP8 weight without a scale tensor")
		}
		sr, sc := ceilDiv(rows, m.Block), ceilDiv(cols, m.Block)
		if !shapeIs(s, sr, sc) {
			return nil, &TensorError{File: spath, Tensor: ck.native[base+".scale"], Err: fmt.Errorf("scale shape %v, want [%d %d] for %d×%d blocks of %d", s.Shape, sr, sc, rows, cols, m.Block)}
		}
		if m.Scales, err = e8m0Scales(s); err != nil {
			return nil, &TensorError{File: spath, Tensor: ck.native[base+".scale"], Err: err}
		}
	case safetensors.I8, safetensors.U8:
		m.Format = kernels.FP4
		if cols%kernels.FP4Group != 0 {
			return nil, fail("FP4 width %d is not a multiple of %d", cols, kernels.FP4Group)
		}
		if !shapeIs(w, rows, cols/2) {
			return nil, fail("packed FP4 shape %v, want [%d %d] (logical %d×%d)", w.Shape, rows, cols/2, rows, cols)
		}
		if s == nil {
			return nil, fail("FP4 weight without a scale tensor")
		}
		if !shapeIs(s, rows, cols/kernels.FP4Group) {
			return nil, &TensorError{File: spath, Tensor: ck.native[base+".scale"], Err: fmt.Errorf("scale shape %v, want [%d %d]", s.Shape, rows, cols/kernels.FP4Group)}
		}
		if m.Scales, err = e8m0Scales(s); err != nil {
			return nil, &TensorError{File: spath, Tensor: ck.native[base+".scale"], Err: err}
		}
	default:
		return nil, fail("dtype %s is not a weight format", w.DType)
	}
	if err := m.Validate(); err != nil {
		return nil, fail("%v", err)
	}
	return m, nil
}

// e8m0Scales returns scale bytes as e8m0. F8_E8M0 is used as is (zero
// copy); F32 scales, which some converters write as weight_scale_inv, are
// accepted when every value is a power of two and converted.
func e8m0Scales(s *safetensors.Tensor) ([]byte, error) {
	switch s.DType {
	case safetensors.F8E8M0, safetensors.U8:
		return s.Data, nil
	case safetensors.F32:
		out := make([]byte, len(s.Data)/4)
		for i := range out {
			b := binary.LittleEndian.Uint32(s.Data[4*i:])
			exp := b >> 23 & 0xFF
			if b&0x807FFFFF != 0 || exp == 0 || exp == 255 {
				return nil, fmt.Errorf("F32 scale element %d (%g) is not a positive power of two", i, math.Float32frombits(b))
			}
			out[i] = byte(exp)
		}
		return out, nil
	}
	return nil, fmt.Errorf("scale dtype %s, want F8_E8M0", s.DType)
}

// Floats converts a small BF16, F16 or F32 tensor (norm weights, hc_*, ape,
// attn_sink, gate bias) to float32, checking its shape when one is given.
func (ck *Checkpoint) Floats(name string, shape ...int) ([]float32, error) {
	t, path, err := ck.Tensor(name)
	if err != nil {
		return nil, err
	}
	if len(shape) > 0 && !shapeIs(t, shape...) {
		return nil, &TensorError{File: path, Tensor: ck.native[name], Err: fmt.Errorf("shape %v, want %v", t.Shape, shape)}
	}
	n := t.NumElements()
	out := make([]float32, n)
	switch t.DType {
	case safetensors.F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case safetensors.BF16:
		for i := range out {
			out[i] = kernels.BF16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case safetensors.F16:
		for i := range out {
			out[i] = kernels.F16ToF32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	default:
		return nil, &TensorError{File: path, Tensor: ck.native[name], Err: fmt.Errorf("dtype %s, want BF16, F16 or F32", t.DType)}
	}
	return out, nil
}

// Ints converts an I64 or I32 tensor (tid2eid) to int32, checking its shape
// when one is given and that every value fits.
func (ck *Checkpoint) Ints(name string, shape ...int) ([]int32, error) {
	t, path, err := ck.Tensor(name)
	if err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) error {
		return &TensorError{File: path, Tensor: ck.native[name], Err: fmt.Errorf(format, args...)}
	}
	if len(shape) > 0 && !shapeIs(t, shape...) {
		return nil, fail("shape %v, want %v", t.Shape, shape)
	}
	out := make([]int32, t.NumElements())
	switch t.DType {
	case safetensors.I64:
		for i := range out {
			v := int64(binary.LittleEndian.Uint64(t.Data[8*i:]))
			if v < math.MinInt32 || v > math.MaxInt32 {
				return nil, fail("element %d (%d) does not fit int32", i, v)
			}
			out[i] = int32(v)
		}
	case safetensors.I32:
		for i := range out {
			out[i] = int32(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	default:
		return nil, fail("dtype %s, want I64 or I32", t.DType)
	}
	return out, nil
}

// DTypeStat counts the tensors and bytes of one dtype.
type DTypeStat struct {
	Tensors int
	Bytes   int64
}

// Summary describes a checkpoint's storage for `edgeseek info`.
type Summary struct {
	Files   int
	Tensors int
	Bytes   int64
	ByDType map[safetensors.DType]DTypeStat
}

// String renders the summary, one dtype per line, largest first.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d files, %d tensors, %d bytes\n", s.Files, s.Tensors, s.Bytes)
	dts := make([]safetensors.DType, 0, len(s.ByDType))
	for d := range s.ByDType {
		dts = append(dts, d)
	}
	sort.Slice(dts, func(i, j int) bool {
		if s.ByDType[dts[i]].Bytes != s.ByDType[dts[j]].Bytes {
			return s.ByDType[dts[i]].Bytes > s.ByDType[dts[j]].Bytes
		}
		return dts[i] < dts[j]
	})
	for _, d := range dts {
		fmt.Fprintf(&b, "  %-8s %8d tensors %14d bytes\n", d, s.ByDType[d].Tensors, s.ByDType[d].Bytes)
	}
	return b.String()
}

// Summary counts tensors and bytes per dtype.
func (ck *Checkpoint) Summary() Summary {
	s := Summary{Files: len(ck.set.Files()), ByDType: map[safetensors.DType]DTypeStat{}}
	for _, n := range ck.set.Names() {
		t, _, _ := ck.set.Tensor(n)
		st := s.ByDType[t.DType]
		st.Tensors++
		st.Bytes += int64(len(t.Data))
		s.ByDType[t.DType] = st
		s.Tensors++
		s.Bytes += int64(len(t.Data))
	}
	return s
}

// fusedExpert serves one routed expert's w1, w3 or w2 from the fused tensors
// transformers saves (mlp.experts.gate_up_proj [E, 2I, D] holding w1 then w3
// for each expert, mlp.experts.down_proj [E, D, I]), as a zero-copy view.
// ok is false when base is not an expert projection or nothing is fused.
func (ck *Checkpoint) fusedExpert(base string, rows, cols int) (m *kernels.Matrix, ok bool, err error) {
	i := strings.Index(base, ".ffn.experts.")
	if i < 0 {
		return nil, false, nil
	}
	rest := base[i+len(".ffn.experts."):]
	dot := strings.IndexByte(rest, '.')
	if dot < 0 {
		return nil, false, nil
	}
	e, perr := strconv.Atoi(rest[:dot])
	proj := rest[dot+1:]
	if perr != nil || e < 0 {
		return nil, false, nil
	}
	fused, half := base[:i]+".ffn.experts.gate_up_proj", 0
	switch proj {
	case "w1":
	case "w3":
		half = 1
	case "w2":
		fused = base[:i] + ".ffn.experts.down_proj"
	default:
		return nil, false, nil
	}
	if !ck.Has(fused) {
		return nil, false, nil
	}
	t, path, err := ck.Tensor(fused)
	if err != nil {
		return nil, true, err
	}
	fail := func(format string, args ...any) error {
		return &TensorError{File: path, Tensor: ck.native[fused], Err: fmt.Errorf(format, args...)}
	}
	formats := map[safetensors.DType]kernels.Format{safetensors.F32: kernels.F32, safetensors.BF16: kernels.BF16, safetensors.F16: kernels.F16}
	f, plain := formats[t.DType]
	if !plain {
		return nil, true, fail("fused expert tensor of dtype %s (want BF16, F16 or F32)", t.DType)
	}
	stacked := rows
	if proj != "w2" {
		stacked = 2 * rows
	}
	if len(t.Shape) != 3 || t.Shape[1] != stacked || t.Shape[2] != cols || e >= t.Shape[0] {
		return nil, true, fail("shape %v cannot hold expert %d's %s [%d %d]", t.Shape, e, proj, rows, cols)
	}
	es := t.DType.Size()
	off := ((e*stacked + half*rows) * cols) * es
	m = &kernels.Matrix{Format: f, Rows: rows, Cols: cols, Data: t.Data[off : off+rows*cols*es]}
	return m, true, nil
}
