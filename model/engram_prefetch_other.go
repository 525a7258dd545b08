//go:build !linux

package model

import "sync/atomic"

// Outside Linux the tables get no paging advice; the prefetch still gathers
// the rows beside the layers that come first.
func (e *Engram) adviseRandom() {}

func (e *Engram) willNeed(rows [][]int64, stop *atomic.Bool) {}
