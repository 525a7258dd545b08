package model

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
)

// memEngram is an Engram layer whose table is random bytes in memory (only
// the table matters to the fetch).
func memEngram(rows, headDim, cols int) *Engram {
	rng := rand.New(rand.NewPCG(5, 6))
	e := &Engram{Rows: rows, HeadDim: headDim, Cols: cols,
		Table: make([]byte, rows*headDim), Scales: make([]byte, rows*headDim/32)}
	for i := range e.Table {
		e.Table[i] = byte(1 + rng.IntN(0x7e)) // finite, non-zero e4m3
	}
	for i := range e.Scales {
		e.Scales[i] = byte(120 + rng.IntN(10))
	}
	return e
}

func tableRows(T, cols, rows int, seed uint64) [][]int64 {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([][]int64, T)
	for t := range out {
		out[t] = make([]int64, cols)
		for c := range out[t] {
			out[t][c] = rng.Int64N(int64(rows))
		}
	}
	return out
}

// The fetch delivers what gather computes, layer by layer, and a synchronous
// fetch (prefetch off) the same values.
func TestEngramFetchDeliversGather(t *testing.T) {
	e0, e1 := memEngram(1000, 64, 3), memEngram(777, 64, 5)
	rows := [][][]int64{tableRows(50, 3, 1000, 1), tableRows(50, 5, 777, 2)}
	for _, sync := range []bool{false, true} {
		m := &Model{engramSync: sync}
		f := m.startEngramFetch([]*Engram{e0, e1}, rows)
		if f.async == sync {
			t.Fatalf("engramSync %v gave an async fetch %v", sync, f.async)
		}
		for l, e := range []*Engram{e0, e1} {
			got, err := f.layer(l)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, 50*e.Cols*e.HeadDim)
			for tk, r := range rows[l] {
				for c, x := range r {
					e.Row(want[(tk*e.Cols+c)*e.HeadDim:], x)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("layer %d: %d values, want %d", l, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] || want[i] == 0 {
					t.Fatalf("sync %v layer %d value %d: %v, want %v (non-zero)", sync, l, i, got[i], want[i])
				}
			}
		}
		f.join()
	}
}

// join stops a fetch that is still running and waits for it: the layers it
// did not reach report errFetchStopped.
func TestEngramFetchJoinStops(t *testing.T) {
	e := memEngram(1024, 32, 4)
	rows := tableRows(200000, 4, 1024, 3) // about 100 ms of gathering per layer
	m := &Model{}
	f := m.startEngramFetch([]*Engram{e, e}, [][][]int64{rows, rows})
	f.join()
	select {
	case <-f.done:
	default:
		t.Fatal("join returned before the fetch goroutine")
	}
	if _, err := f.layer(1); err != errFetchStopped {
		t.Errorf("last layer after join: %v, want %v", err, errFetchStopped)
	}
	f.join() // a second join is harmless
}

// A row that slipped past newBatch is still refused before the table is
// read, and a panic in the fetch goroutine reaches the layer that waits.
func TestEngramFetchErrorsAndPanics(t *testing.T) {
	e := memEngram(1024, 32, 2)
	bad := [][]int64{{1, 2}, {3, 5000}}
	for _, sync := range []bool{false, true} {
		f := (&Model{engramSync: sync}).startEngramFetch([]*Engram{e}, [][][]int64{bad})
		_, err := f.layer(0)
		if err == nil || err.Error() != "engram: token 1 row 5000 out of range [0,1024)" {
			t.Errorf("sync %v: error %v", sync, err)
		}
		f.join()
	}
	short := *e
	short.Table = short.Table[: 100*32 : 100*32] // rows 100… lie outside the bytes
	f := (&Model{}).startEngramFetch([]*Engram{&short}, [][][]int64{{{1, 500}}})
	defer f.join()
	defer func() {
		if p := recover(); p == nil || !strings.Contains(fmt.Sprint(p), "out of range") {
			t.Errorf("panic %v, want the fetch's index out of range", p)
		}
	}()
	f.layer(0)
	t.Error("layer returned after the fetch panicked")
}

// coldEngram is a small V4.1 model whose Engram tables are a memory-mapped
// file that evict drops from the page cache.
type coldEngram struct {
	m     *Model
	eng   []*Engram
	rows  int
	table []byte
	evict func()
}

// newColdEngram loads a V4.1 model with real V4.1 Engram shapes (24 rows of
// 256 per token and layer) around a small trunk (dim 512, 8 layers, Engram
// at layers 1 and 4), and points both Engram layers at one table of 2^20
// rows (264 MiB with its scales) in a file of its own, mapped as
// safetensors.Open maps a checkpoint and advised as loadEngram advises.
func newColdEngram(b *testing.B) *coldEngram {
	cfg := synth.TinyConfig(checkpoint.ArchV41)
	cfg.Dim, cfg.MoEInter = 512, 512
	cfg.EngramHeads, cfg.EngramHeadDim, cfg.EngramMaxNgram = 8, 256, 4
	cfg.EngramRows = synth.EngramRows(cfg.EngramVocab, len(cfg.EngramLayers), cfg.EngramMaxNgram, cfg.EngramHeads)
	dir := b.TempDir()
	if err := synth.Write(dir, cfg, 1, synth.Options{}); err != nil {
		b.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ck.Close() })
	m, err := Load(*ck.Config, ck, kernels.NewCPU(runtime.GOMAXPROCS(0)), ReferenceNumerics)
	if err != nil {
		b.Fatal(err)
	}
	const rows, headDim = 1 << 20, 256
	table, fd := coldTable(b, filepath.Join(dir, "engram-table.bin"), rows, headDim)
	c := &coldEngram{m: m, rows: rows, table: table}
	for _, ly := range m.layers {
		if e := ly.Engram; e != nil {
			e.Table, e.Scales, e.Rows = table[:rows*headDim], table[rows*headDim:], rows
			e.adviseRandom()
			c.eng = append(c.eng, e)
		}
	}
	c.evict = func() {
		// Drop the mapping's page-table entries, then the page cache.
		if err := unix.Madvise(table, unix.MADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
		if err := unix.Fadvise(fd, 0, 0, unix.FADV_DONTNEED); err != nil {
			b.Fatal(err)
		}
	}
	c.evict()
	if n := residentPages(b, table); n > 16 {
		b.Fatalf("%d pages of the table still resident after eviction", n)
	}
	return c
}

// rowsFor gives T tokens random rows in every Engram layer.
func (c *coldEngram) rowsFor(T int) Input {
	in := Input{Tokens: make([]int, T), Engram: make([][][]int64, T)}
	for l, e := range c.eng {
		r := tableRows(T, e.Cols, c.rows, uint64(10+l))
		for t := range T {
			in.Tokens[t] = (7 * t) % c.m.Config.VocabSize
			in.Engram[t] = append(in.Engram[t], r[t])
		}
	}
	return in
}

// BenchmarkEngramColdRows times forward steps of T tokens (one sequence) of
// the newColdEngram model. "cold" drops the table file from the page cache
// before each step (timer stopped), so that every row is read from the disk;
// "hot" reads the step's rows once before it. "sync" gathers each Engram
// layer's rows when the layer runs (WithEngramPrefetch(false)); "prefetch"
// starts fetching them at the start of the step.
func BenchmarkEngramColdRows(b *testing.B) {
	c := newColdEngram(b)
	for _, cache := range []string{"cold", "hot"} {
		for _, T := range []int{1, 16} {
			in := c.rowsFor(T)
			for _, mode := range []string{"sync", "prefetch"} {
				b.Run(fmt.Sprintf("%s/T=%d/%s", cache, T, mode), func(b *testing.B) {
					c.m.engramSync = mode == "sync"
					defer func() { c.m.engramSync = false }()
					for b.Loop() {
						b.StopTimer()
						st := c.m.NewState()
						if cache == "cold" {
							c.evict()
						} else if _, err := c.m.Forward(c.m.NewState(), in, Options{}); err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
						if _, err := c.m.Forward(st, in, Options{}); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		}
	}
}

// BenchmarkEngramColdGather times the fetch alone: gathering the rows of T
// tokens for both Engram layers of the newColdEngram model, from a cold or
// hot table, by page faults alone ("faults", what the synchronous path
// does) or after asking for every page first ("hinted", what the prefetch
// goroutine does).
func BenchmarkEngramColdGather(b *testing.B) {
	c := newColdEngram(b)
	for _, cache := range []string{"cold", "hot"} {
		for _, T := range []int{1, 16} {
			in := c.rowsFor(T)
			rows := make([][][]int64, len(c.eng))
			for _, r := range in.Engram {
				for l := range c.eng {
					rows[l] = append(rows[l], r[l])
				}
			}
			for _, mode := range []string{"faults", "hinted"} {
				b.Run(fmt.Sprintf("%s/T=%d/%s", cache, T, mode), func(b *testing.B) {
					var stop atomic.Bool
					for b.Loop() {
						b.StopTimer()
						if cache == "cold" {
							c.evict()
						}
						b.StartTimer()
						if mode == "hinted" {
							for l, e := range c.eng {
								e.willNeed(rows[l], &stop)
							}
						}
						for l, e := range c.eng {
							if err := e.gather(make([]float32, T*e.Cols*e.HeadDim), rows[l], &stop); err != nil {
								b.Fatal(err)
							}
						}
					}
				})
			}
		}
	}
}

// coldTable writes a random Engram table (e4m3 values, then e8m0 scales) to
// path, syncs it so that its pages can be dropped, and maps it as
// safetensors.Open does.
func coldTable(b *testing.B, path string, rows, headDim int) ([]byte, int) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, rows*headDim+rows*headDim/32)
	for i := 0; i < rows*headDim; i++ {
		buf[i] = byte(rng.IntN(0x7f)) | byte(rng.IntN(2))<<7 // finite e4m3
	}
	for i := rows * headDim; i < len(buf); i++ {
		buf[i] = byte(122 + rng.IntN(8))
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	if _, err := f.Write(buf); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	mp, err := unix.Mmap(int(f.Fd()), 0, len(buf), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { unix.Munmap(mp) })
	return mp, int(f.Fd())
}

// residentPages counts the pages of a mapping that are in memory.
func residentPages(b *testing.B, mp []byte) int {
	vec := make([]byte, (len(mp)+os.Getpagesize()-1)/os.Getpagesize())
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&mp[0])), uintptr(len(mp)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		b.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}
