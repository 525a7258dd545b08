package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names of a checkpoint directory.
const (
	SingleFile = "model.safetensors"
	IndexFile  = "model.safetensors.index.json"
)

// Set is every tensor of a checkpoint directory, single-file or sharded.
type Set struct {
	Dir       string
	TotalSize int64 // index metadata total_size (0 when absent or single file)
	files     []*File
	where     map[string]*File
	names     []string
}

type indexJSON struct {
	Metadata  map[string]any    `json:"metadata"`
	WeightMap map[string]string `json:"weight_map"`
}

// OpenIndex opens the checkpoint in dir: model.safetensors.index.json when
// present (every mapped tensor must exist in its shard), else
// model.safetensors, else every *.safetensors file of the directory (a tensor
// name may then appear only once).
func OpenIndex(dir string) (*Set, error) {
	s := &Set{Dir: dir, where: map[string]*File{}}
	idx := filepath.Join(dir, IndexFile)
	switch b, err := os.ReadFile(idx); {
	case err == nil:
		if err := s.openSharded(idx, b); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, &Error{File: idx, Err: err}
	}
	paths := []string{filepath.Join(dir, SingleFile)}
	if _, err := os.Stat(paths[0]); err != nil {
		paths, _ = filepath.Glob(filepath.Join(dir, "*.safetensors"))
		if len(paths) == 0 {
			return nil, &Error{File: dir, Err: fmt.Errorf("no %s, %s or *.safetensors file", IndexFile, SingleFile)}
		}
	}
	for _, p := range paths {
		f, err := Open(p)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.files = append(s.files, f)
		for _, n := range f.Names() {
			if o, dup := s.where[n]; dup {
				s.Close()
				return nil, &Error{File: p, Tensor: n, Err: fmt.Errorf("also in %s", o.Path)}
			}
			s.where[n] = f
		}
	}
	s.names = sortedNames(s.where)
	return s, nil
}

func (s *Set) openSharded(idx string, b []byte) error {
	var ix indexJSON
	if err := json.Unmarshal(b, &ix); err != nil {
		return &Error{File: idx, Err: fmt.Errorf("index is not valid JSON: %w", err)}
	}
	if ix.WeightMap == nil {
		return &Error{File: idx, Err: errors.New("index has no weight_map")}
	}
	if v, ok := ix.Metadata["total_size"]; ok {
		f, ok := v.(float64)
		if !ok || f < 0 {
			return &Error{File: idx, Err: fmt.Errorf("metadata.total_size %v is not a non-negative number", v)}
		}
		s.TotalSize = int64(f)
	}
	shards := map[string]*File{}
	for _, name := range sortedNames(ix.WeightMap) {
		shard := ix.WeightMap[name]
		// Shard names are plain file names; anything else could escape dir.
		if shard == "" || shard != filepath.Base(shard) || strings.ContainsAny(shard, `/\`) || shard == ".." || shard == "." {
			return &Error{File: idx, Tensor: name, Err: fmt.Errorf("shard %q is not a file name in the checkpoint directory", shard)}
		}
		f, ok := shards[shard]
		if !ok {
			var err error
			f, err = Open(filepath.Join(s.Dir, shard))
			if err != nil {
				return &Error{File: idx, Tensor: name, Err: err}
			}
			shards[shard] = f
			s.files = append(s.files, f)
		}
		if _, ok := f.Tensor(name); !ok {
			return &Error{File: f.Path, Tensor: name, Err: fmt.Errorf("listed in %s but not in the shard", IndexFile)}
		}
		s.where[name] = f
	}
	s.names = sortedNames(s.where)
	return nil
}

// Names lists every tensor name in sorted order.
func (s *Set) Names() []string { return s.names }

// Len is the number of tensors.
func (s *Set) Len() int { return len(s.names) }

// Files lists the open files.
func (s *Set) Files() []*File { return s.files }

// Tensor returns the named tensor and the path of the file holding it.
func (s *Set) Tensor(name string) (t *Tensor, path string, ok bool) {
	f, ok := s.where[name]
	if !ok {
		return nil, "", false
	}
	t, ok = f.Tensor(name)
	return t, f.Path, ok
}

// Close releases every file; the first error is returned.
func (s *Set) Close() error {
	var first error
	for _, f := range s.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	s.files, s.where, s.names = nil, nil, nil
	return first
}
