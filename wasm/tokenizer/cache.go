package tokenizer

import "hash/maphash"

// wordCache remembers the ids of recent pre-tokens. Natural text repeats a small set of words, so
// most pieces skip merging. It is four-way set-associative: a piece's hash picks a set of four
// slots kept in order of use; a new piece goes first and the last entry drops out, and a hit
// moves its entry first. That bounds memory without eviction bookkeeping, keeps frequent words
// resident while rare ones churn, and, unlike the direct-mapped cache this replaced, does not
// keep evicting one of two frequent words that share a slot: on the 1.1 MB corpus, whose 17k
// distinct short pieces fill half the slots, a repeated pass merged about 40k pieces
// direct-mapped, 5k two-way and 2.9k four-way. Pieces up to 255 bytes are cached, HF's limit:
// with 64, the thousand 65-255 byte pieces of the corpus (CJK runs mostly) were merged again on
// every pass, a third of a warm Encode's time in WebAssembly. It needs no lock: slots hold
// immutable entries behind atomic pointers (plain ones in WebAssembly, see cacheSlot), so
// concurrent Encode calls share it safely (a concurrent move can at worst make a lookup miss or
// leave an entry twice in its set).
//
// A key is compared and hashed as two 64-bit words, its first 16 bytes zero-padded, plus its
// length; only the rare longer keys compare and hash the rest. Nearly all pieces are shorter
// (4.9 bytes on average on the corpus), so a lookup is a few loads and multiplies without a loop
// or a call, which is what costs in WebAssembly (see DESIGN.md). The encoder computes the words
// with two 8-byte loads from the text.
type wordCache struct {
	seed  uint64
	slots []cacheSlot
}

type cacheEntry struct {
	w0, w1 uint64  // keyWords(key)
	key    string  // the whole key; key[16:] is compared when it is longer than 16 bytes
	ids    []int32 // capacity at least 4, see encoder.plain
}

const (
	cacheWays   = 4 // slots per set
	cacheBits   = 15
	cacheSlots  = 1 << cacheBits // 256 KiB of pointers
	cacheMaxLen = 255            // as HF, which caches pieces shorter than 256 bytes
)

// noEntry fills the empty slots: its key is empty, and no piece is, so it never matches, and a
// lookup needs no nil check.
var noEntry = &cacheEntry{}

func newWordCache() wordCache {
	c := wordCache{seed: maphash.String(maphash.MakeSeed(), "wordCache") | 1, slots: make([]cacheSlot, cacheSlots)}
	for i := range c.slots {
		c.slots[i].Store(noEntry)
	}
	return c
}

// byteMask returns a mask of the low k bytes of a word, 0 <= k <= 8 (a shift by 64 is 0 in Go).
func byteMask(k int) uint64 { return ^uint64(0) >> uint(64-8*k) }

// keyMask[n] holds the masks of the two key words of an n-byte key, n <= 16, for the encoder's
// inline lookup: a table load instead of min, max and a shift, which compile to branches in
// WebAssembly.
var keyMask = func() (t [17][2]uint64) {
	for n := range t {
		t[n] = [2]uint64{byteMask(min(n, 8)), byteMask(max(n-8, 0))}
	}
	return t
}()

// keyWords returns the first 16 bytes of k as two little-endian words, zero-padded, with
// overlapping loads instead of a loop over the bytes.
func keyWords(k string) (w0, w1 uint64) {
	switch n := len(k); {
	case n >= 16:
		return load64(k, 0), load64(k, 8)
	case n > 8:
		// load64(k, n-8) holds bytes n-8 .. n-1; bytes 8 .. n-1 are its top n-8.
		return load64(k, 0), load64(k, n-8) >> (8 * uint(16-n))
	case n == 8:
		return load64(k, 0), 0
	case n >= 4:
		// Bytes 0 .. 3 and n-4 .. n-1, each in its place (the overlap is the same bytes).
		return uint64(load32(k, 0)) | uint64(load32(k, n-4))<<(8*uint(n-4)), 0
	case n > 0:
		return uint64(k[0]) | uint64(k[n>>1])<<(8*uint(n>>1)) | uint64(k[n-1])<<(8*uint(n-1)), 0
	}
	return 0, 0
}

// set returns the first slot of the set of the key with words w0, w1 and length n; longer keys
// than 16 bytes pass the hash of the rest in w1 (tailHash).
func (c *wordCache) set(w0, w1 uint64, n int) uint64 {
	const m = 0x9E3779B97F4A7C15
	h := (w0 ^ c.seed) * m
	h = (h ^ h>>32 ^ w1) * m
	h = (h ^ h>>29 ^ uint64(n)) * m
	return h >> (64 - cacheBits) &^ (cacheWays - 1)
}

// tailHash mixes the bytes of k after the first 16 eight at a time (k is longer than 16).
func tailHash(k string) uint64 {
	const m = 0x9E3779B97F4A7C15
	n := len(k)
	h := uint64(0)
	for i := 16; i+8 < n; i += 8 {
		h = (h ^ load64(k, i)) * m
		h ^= h >> 32
	}
	return (h ^ load64(k, n-8)) * m
}

// lookup returns the entry of piece p (at most cacheMaxLen bytes) in set h, whose key words are
// w0 and w1, or nil. The encoder checks the first slot itself and calls second.
func (c *wordCache) lookup(h, w0, w1 uint64, p string) *cacheEntry {
	if ce := c.slots[h].Load(); ce.is(w0, w1, p) {
		return ce
	}
	return c.second(h, w0, w1, p)
}

// second looks p up in the other slots of set h; a hit moves the entry first.
func (c *wordCache) second(h, w0, w1 uint64, p string) *cacheEntry {
	for i := uint64(1); i < cacheWays; i++ {
		if ce := c.slots[h+i].Load(); ce.is(w0, w1, p) {
			// Keep the set in order of use.
			for ; i > 0; i-- {
				c.slots[h+i].Store(c.slots[h+i-1].Load())
			}
			c.slots[h].Store(ce)
			return ce
		}
	}
	return nil
}

// is reports whether e is the entry of p, whose key words are w0 and w1.
func (e *cacheEntry) is(w0, w1 uint64, p string) bool {
	n := len(p)
	return e.w0 == w0 && e.w1 == w1 && len(e.key) == n && (n <= 16 || sameKey(e.key[16:], p[16:]))
}

// slotOf returns the set and key words of k (at most cacheMaxLen bytes), as the encoder
// computes them.
func (c *wordCache) slotOf(k string) (h, w0, w1 uint64) {
	w0, w1 = keyWords(k)
	x := w1
	if len(k) > 16 {
		x ^= tailHash(k)
	}
	return c.set(w0, x, len(k)), w0, w1
}

// put stores e first in set h, dropping the set's least recently used entry.
func (c *wordCache) put(h uint64, e *cacheEntry) {
	for i := uint64(cacheWays - 1); i > 0; i-- {
		c.slots[h+i].Store(c.slots[h+i-1].Load())
	}
	c.slots[h].Store(e)
}

// get returns the cached ids of k.
func (c *wordCache) get(k string) ([]int32, bool) {
	if len(k) > cacheMaxLen {
		return nil, false
	}
	h, w0, w1 := c.slotOf(k)
	if e := c.lookup(h, w0, w1, k); e != nil {
		return e.ids, true
	}
	return nil, false
}

// sameKey is a == b eight bytes at a time.
func sameKey(a, b string) bool {
	n := len(a)
	if n != len(b) {
		return false
	}
	switch {
	case n >= 8:
		for i := 0; i+8 < n; i += 8 {
			if load64(a, i) != load64(b, i) {
				return false
			}
		}
		return load64(a, n-8) == load64(b, n-8)
	case n >= 4:
		return load32(a, 0) == load32(b, 0) && load32(a, n-4) == load32(b, n-4)
	case n > 0:
		return a[0] == b[0] && a[n>>1] == b[n>>1] && a[n-1] == b[n-1]
	}
	return true
}

func load32(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}
