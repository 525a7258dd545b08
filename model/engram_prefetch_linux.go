//go:build linux

package model

import (
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

var pageSize = uintptr(os.Getpagesize())

// madvise gives advice on the pages spanning [p, p+n). It takes the address
// as an integer, not as a slice, so it is safe whatever memory holds the
// table (a mapping, or the heap copy of a file that could not be mapped).
// Advice may be ignored: errors are.
func madvise(p uintptr, n int, advice int) {
	lo := p &^ (pageSize - 1)
	hi := (p + uintptr(n) + pageSize - 1) &^ (pageSize - 1)
	unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, uintptr(advice))
}

func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// adviseRandom tells the kernel that the table and its scales are read at
// random, a row at a time: a page fault then reads its page, not the
// read-around window (128 KiB by default, read_ahead_kb; 8 MiB on some
// virtual disks) that suits sequential reading of weights.
func (e *Engram) adviseRandom() {
	for _, b := range [][]byte{e.Table, e.Scales} {
		if len(b) > 0 {
			madvise(addr(b), len(b), unix.MADV_RANDOM)
		}
	}
}

// willNeed asks the kernel to start reading, without waiting, the pages of
// the table rows and scales that gather will read: one request per row, so
// the disk sees them all at once rather than one page fault at a time.
func (e *Engram) willNeed(rows [][]int64, stop *atomic.Bool) {
	if len(e.Table) == 0 || len(e.Scales) == 0 {
		return
	}
	tb, sb := addr(e.Table), addr(e.Scales)
	sw := e.HeadDim / 32
	for t := range rows {
		if stop.Load() {
			return
		}
		for _, r := range rows[t] {
			if r < 0 || r >= int64(e.Rows) || int(r+1)*e.HeadDim > len(e.Table) || int(r+1)*sw > len(e.Scales) {
				continue // gather reports it
			}
			madvise(tb+uintptr(int(r)*e.HeadDim), e.HeadDim, unix.MADV_WILLNEED)
			madvise(sb+uintptr(int(r)*sw), sw, unix.MADV_WILLNEED)
		}
	}
}
