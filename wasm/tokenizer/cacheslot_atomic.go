//go:build !wasm

package tokenizer

import "sync/atomic"

// cacheSlot is a word cache slot: an atomic pointer, so that concurrent Encode calls share the
// cache without a lock (see cacheslot_wasm.go for WebAssembly).
type cacheSlot = atomic.Pointer[cacheEntry]
