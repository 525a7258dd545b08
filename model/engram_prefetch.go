package model

import (
	"errors"
	"sync/atomic"
)

// Engram prefetch. An Engram layer's table rows depend only on the tokens
// (the edge hashed them), never on activations, so the rows of every Engram
// layer of a forward call are known once newBatch has checked them. The
// tables are memory-mapped and, on a real V4.1 checkpoint, far larger than
// memory (2 × ~94 GiB): the first touch of a row is a page fault that may
// read the disk. Rather than take those faults in the middle of the forward
// pass, newBatch starts one goroutine per call that gathers and dequantizes
// the rows of each Engram layer in turn, in layer order, into that layer's
// embedding buffer, while the main goroutine runs the embedding and the
// layers before the first Engram layer (and then those between the Engram
// layers). The Engram layer waits only for its own buffer, and only if the
// fetch has not finished it yet. Before gathering, the goroutine asks the
// kernel for every page the call will read (willNeed, MADV_WILLNEED on
// Linux), so that the disk serves them all at once rather than one page
// fault at a time. Both paths run Engram.gather, so the values are the same
// bits whether prefetch is on or off.
//
// It is a plain goroutine, not the kernels worker pool: the pool runs
// synchronous data-parallel operations whose caller waits for them, while
// this fetch must run beside the caller; and a worker stuck in a page fault
// would hold up the matrix products that share the pool.
//
// The goroutine never outlives the call: ForwardBatch joins it on every
// return (defer), telling it first to stop, which it notices between tokens.

// errFetchStopped is what gather returns when the call that started the
// fetch returned before the rows were needed; no caller ever sees it.
var errFetchStopped = errors.New("engram: fetch stopped")

// WithEngramPrefetch turns the Engram row prefetch on (the default) or off.
// Off, each Engram layer gathers its rows when it runs; the logits are the
// same either way.
func WithEngramPrefetch(on bool) LoadOption {
	return func(o *loadOptions) { o.engramSync = !on }
}

// engramFetch delivers one forward call's gathered Engram rows, per Engram
// layer: prefetched by a goroutine (async), or gathered when asked (prefetch
// off).
type engramFetch struct {
	eng   []*Engram       // the model's Engram layers, in order
	rows  [][][]int64     // [Engram layer][batch row] table rows, checked
	async bool            // a goroutine is filling emb
	emb   [][]float32     // [Engram layer] [R, Cols, HeadDim]; set before ready[l] closes
	err   []error         // [Engram layer]; set before ready[l] closes
	ready []chan struct{} // [Engram layer] closed once emb[l] and err[l] are final
	stop  atomic.Bool     // the call is returning: give up
	done  chan struct{}   // closed when the goroutine has returned
	// panicked holds what the goroutine panicked with (set before the ready
	// channels close); the layer that waits for it panics with it in turn.
	panicked any
}

// startEngramFetch starts fetching the rows of every Engram layer for one
// call (rows[l][r]: the Cols table rows of batch row r for Engram layer l),
// unless prefetch is off or the model has no Engram layers. The rows must
// have been checked.
func (m *Model) startEngramFetch(eng []*Engram, rows [][][]int64) *engramFetch {
	f := &engramFetch{eng: eng, rows: rows, async: len(eng) > 0 && !m.engramSync}
	if !f.async {
		return f
	}
	f.emb = make([][]float32, len(eng))
	f.err = make([]error, len(eng))
	f.ready = make([]chan struct{}, len(eng))
	for l := range f.ready {
		f.ready[l] = make(chan struct{})
	}
	f.done = make(chan struct{})
	go f.run()
	return f
}

func (f *engramFetch) run() {
	l := 0
	defer func() {
		if p := recover(); p != nil {
			f.panicked = p
		}
		for ; l < len(f.eng); l++ { // layers not delivered: stopped or panicked
			if f.err[l] == nil {
				f.err[l] = errFetchStopped
			}
			close(f.ready[l])
		}
		close(f.done)
	}()
	// Ask for every page first, so that the disk reads them all at once,
	// then gather in layer order.
	for k, e := range f.eng {
		e.willNeed(f.rows[k], &f.stop)
	}
	for ; l < len(f.eng); l++ {
		e := f.eng[l]
		emb := make([]float32, len(f.rows[l])*e.Cols*e.HeadDim)
		if err := e.gather(emb, f.rows[l], &f.stop); err != nil {
			f.err[l] = err
		} else {
			f.emb[l] = emb
		}
		close(f.ready[l])
	}
}

// layer returns the gathered rows of Engram layer l, [R, Cols, HeadDim],
// waiting for the fetch if it has not got that far. Each layer is asked for
// once: the fetch lets go of the buffer.
func (f *engramFetch) layer(l int) ([]float32, error) {
	if !f.async {
		e := f.eng[l]
		emb := make([]float32, len(f.rows[l])*e.Cols*e.HeadDim)
		if err := e.gather(emb, f.rows[l], nil); err != nil {
			return nil, err
		}
		return emb, nil
	}
	<-f.ready[l]
	if f.panicked != nil {
		panic(f.panicked)
	}
	emb := f.emb[l]
	f.emb[l] = nil
	return emb, f.err[l]
}

// join stops the fetch if it is still running and waits for its goroutine to
// return. ForwardBatch defers it, so no fetch outlives its call, whether the
// call returns normally, with an error, or by a panic.
func (f *engramFetch) join() {
	if f == nil || !f.async {
		return
	}
	f.stop.Store(true)
	<-f.done
}
