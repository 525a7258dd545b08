package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Write stores tensors in a new safetensors file at path (written to a
// temporary name, then renamed, so a crash never leaves a half file). Names
// are sorted, data is laid out in name order, and the header is padded with
// spaces to a multiple of 8 bytes so every tensor starts 8-aligned when
// element sizes allow.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	fail := func(name string, err error) error { return &Error{File: path, Tensor: name, Err: err} }
	ts := slices.Clone(tensors)
	slices.SortFunc(ts, func(a, b Tensor) int { return strings.Compare(a.Name, b.Name) })
	var hdr strings.Builder
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		md, err := json.Marshal(metadata)
		if err != nil {
			return fail("", err)
		}
		hdr.WriteString(`"__metadata__":`)
		hdr.Write(md)
	}
	var off int64
	for i, t := range ts {
		if t.Name == "" || t.Name == "__metadata__" {
			return fail(t.Name, fmt.Errorf("invalid tensor name"))
		}
		if i > 0 && ts[i-1].Name == t.Name {
			return fail(t.Name, fmt.Errorf("duplicate tensor name"))
		}
		if !t.DType.Valid() {
			return fail(t.Name, fmt.Errorf("unknown dtype %q", t.DType))
		}
		n := 1
		for _, d := range t.Shape {
			if d < 0 {
				return fail(t.Name, fmt.Errorf("negative dimension in shape %v", t.Shape))
			}
			n *= d
		}
		if n*t.DType.Size() != len(t.Data) {
			return fail(t.Name, fmt.Errorf("shape %v of %s needs %d bytes, have %d", t.Shape, t.DType, n*t.DType.Size(), len(t.Data)))
		}
		name, _ := json.Marshal(t.Name)
		shape, _ := json.Marshal(t.Shape)
		if t.Shape == nil {
			shape = []byte("[]")
		}
		if hdr.Len() > 1 {
			hdr.WriteByte(',')
		}
		fmt.Fprintf(&hdr, `%s:{"dtype":"%s","shape":%s,"data_offsets":[%d,%d]}`, name, t.DType, shape, off, off+int64(len(t.Data)))
		off += int64(len(t.Data))
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fail("", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fail("", err)
	}
	w := bufio.NewWriterSize(tmp, 1<<20)
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(hdr.Len()))
	w.Write(lenBuf[:])
	w.WriteString(hdr.String())
	for _, t := range ts {
		w.Write(t.Data)
	}
	if err := w.Flush(); err != nil {
		tmp.Close()
		return fail("", err)
	}
	if err := tmp.Close(); err != nil {
		return fail("", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fail("", err)
	}
	return nil
}

// WriteIndex writes a model.safetensors.index.json into dir mapping each
// tensor name to its shard file name.
func WriteIndex(dir string, weightMap map[string]string, totalSize int64) error {
	b, err := json.MarshalIndent(struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}{map[string]int64{"total_size": totalSize}, weightMap}, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(dir, IndexFile)
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return &Error{File: p, Err: err}
	}
	return nil
}
