//go:build wasm

package tokenizer

// cacheSlot is a word cache slot. A WebAssembly module runs on one thread, so goroutines never
// run at the same time and a load or store of an aligned pointer cannot interleave with another;
// entries are immutable, so a loaded pointer stays valid whatever runs next. A plain pointer is
// therefore as safe here as atomic.Pointer is natively, and Go's sync/atomic compiles to two
// nested calls per load in WebAssembly, which cost more than the rest of a cache hit.
type cacheSlot struct{ p *cacheEntry }

func (s *cacheSlot) Load() *cacheEntry   { return s.p }
func (s *cacheSlot) Store(e *cacheEntry) { s.p = e }
