package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"golang.org/x/sys/unix"
)

// File is an open safetensors file. Its tensors alias a read-only mapping of
// the file (or an in-memory copy where mmap is unavailable).
type File struct {
	Path     string
	Metadata map[string]string

	tensors map[string]*Tensor
	names   []string // sorted
	buf     []byte   // whole file
	mapped  bool
}

// Open maps path read-only and validates its header.
func Open(path string) (*File, error) {
	fail := func(err error) (*File, error) { return nil, &Error{File: path, Err: err} }
	fd, err := os.Open(path)
	if err != nil {
		return fail(err)
	}
	defer fd.Close()
	st, err := fd.Stat()
	if err != nil {
		return fail(err)
	}
	if !st.Mode().IsRegular() {
		return fail(errors.New("not a regular file"))
	}
	size := st.Size()
	if size < 8 {
		return fail(fmt.Errorf("truncated: %d bytes, need at least 8 for the header length", size))
	}
	f := &File{Path: path}
	if size <= int64(int(^uint(0)>>1)) {
		if b, err := unix.Mmap(int(fd.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED); err == nil {
			f.buf, f.mapped = b, true
		}
	}
	if !f.mapped {
		// Some filesystems (FUSE, 9p) refuse mmap; reading keeps them usable.
		b := make([]byte, size)
		if _, err := io.ReadFull(fd, b); err != nil {
			return fail(err)
		}
		f.buf = b
	}
	if err := f.parse(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// parse validates the header and builds the tensor views.
func (f *File) parse() error {
	size := int64(len(f.buf))
	n := binary.LittleEndian.Uint64(f.buf[:8])
	if n > MaxHeaderSize {
		return &Error{File: f.Path, Err: fmt.Errorf("header length %d exceeds the %d-byte limit", n, MaxHeaderSize)}
	}
	if int64(n) > size-8 {
		return &Error{File: f.Path, Err: fmt.Errorf("truncated: header length %d but only %d bytes follow", n, size-8)}
	}
	h, err := ParseHeader(f.buf[8:8+n], size-8-int64(n))
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.File = f.Path
			return e
		}
		return &Error{File: f.Path, Err: err}
	}
	data := f.buf[8+n:]
	f.Metadata = h.Metadata
	f.tensors = make(map[string]*Tensor, len(h.Entries))
	f.names = make([]string, 0, len(h.Entries))
	for _, e := range h.Entries {
		f.tensors[e.Name] = &Tensor{Name: e.Name, DType: e.DType, Shape: e.Shape, Data: data[e.Begin:e.End:e.End]}
		f.names = append(f.names, e.Name)
	}
	return nil
}

// Names lists the tensor names in sorted order.
func (f *File) Names() []string { return f.names }

// Tensor returns the named tensor, or nil and false.
func (f *File) Tensor(name string) (*Tensor, bool) {
	t, ok := f.tensors[name]
	return t, ok
}

// Len is the number of tensors.
func (f *File) Len() int { return len(f.names) }

// Mapped reports whether the tensors alias a memory mapping (false when the
// file was read into memory because mmap failed).
func (f *File) Mapped() bool { return f.mapped }

// Close releases the mapping; tensors obtained from f become invalid.
func (f *File) Close() error {
	if f == nil || f.buf == nil {
		return nil
	}
	var err error
	if f.mapped {
		err = unix.Munmap(f.buf)
	}
	f.buf, f.tensors, f.names = nil, nil, nil
	if err != nil {
		return &Error{File: f.Path, Err: err}
	}
	return nil
}

// sortedNames returns the keys of m in order.
func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
