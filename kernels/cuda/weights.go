package cuda

import (
	"fmt"
	"unsafe"

	"github.com/edgeseek/edgeseek/kernels"
)

// weightKey identifies a weight matrix by its payload slice: views that share
// a Data pointer but differ in shape (wo_a groups) get separate entries.
type weightKey struct {
	data   *byte
	n      int
	format kernels.Format
	rows   int
	cols   int
}

// devMatrix is a resident copy of a kernels.Matrix in its checkpoint encoding.
type devMatrix struct {
	data, scales uint64
	bytes        int
}

func (m *devMatrix) free(d *driver) error {
	var err error
	if m.data != 0 {
		err = d.check("cuMemFree", d.memFree(m.data))
	}
	if m.scales != 0 {
		if e := d.check("cuMemFree", d.memFree(m.scales)); err == nil {
			err = e
		}
	}
	return err
}

func keyOf(w *kernels.Matrix) weightKey {
	return weightKey{unsafe.SliceData(w.Data), len(w.Data), w.Format, w.Rows, w.Cols}
}

// resident returns the device copy of w, uploading it on first use. The
// caller must not modify w.Data afterwards.
func (b *Backend) resident(w *kernels.Matrix) (*devMatrix, error) {
	k := keyOf(w)
	if m := b.weights[k]; m != nil {
		return m, nil
	}
	if err := w.Validate(); err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	m := &devMatrix{bytes: w.Bytes()}
	up := func(dst *uint64, src []byte) error {
		if len(src) == 0 {
			return nil
		}
		if err := b.d.check(fmt.Sprintf("cuMemAlloc(%d bytes)", len(src)), b.d.memAlloc(dst, uint64(len(src)))); err != nil {
			return err
		}
		return b.d.check("cuMemcpyHtoDAsync", b.d.htodAsync(*dst, unsafe.Pointer(&src[0]), uint64(len(src)), b.stream))
	}
	if err := up(&m.data, w.Data); err != nil {
		m.free(b.d)
		return nil, err
	}
	if err := up(&m.scales, w.Scales); err != nil {
		m.free(b.d)
		return nil, err
	}
	b.weights[k] = m
	return m, nil
}

// Upload makes w resident on the device now (MatMul does it on first use).
// Weights must be resident before a decode step is captured into a graph.
func (b *Backend) Upload(w *kernels.Matrix) error {
	return b.do(func() error {
		_, err := b.resident(w)
		if err != nil {
			return err
		}
		return b.d.check("cuStreamSynchronize", b.d.streamSync(b.stream))
	})
}

// Release frees the device copy of w, if any.
func (b *Backend) Release(w *kernels.Matrix) error {
	return b.do(func() error {
		k := keyOf(w)
		m := b.weights[k]
		if m == nil {
			return nil
		}
		delete(b.weights, k)
		if err := b.d.check("cuStreamSynchronize", b.d.streamSync(b.stream)); err != nil {
			return err
		}
		return m.free(b.d)
	})
}

// ResidentBytes is the total size of the weights held on the device.
func (b *Backend) ResidentBytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var n int64
	for _, m := range b.weights {
		n += int64(m.bytes)
	}
	return n
}
