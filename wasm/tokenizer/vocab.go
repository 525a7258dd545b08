package tokenizer

import "math/bits"

// vocabIndex maps token strings to ids: an open-addressing hash table over entries whose keys
// are ranges of one key arena. Load appends every vocabulary key to the arena instead of
// allocating a string per key and inserting it into a Go map: in WebAssembly a map operation is
// several loops (hashing included), and 128k keys plus 3 lookups for each of 127k merges made up
// most of Load's time. Keys are byte slices of the arena while loading and substrings of one
// string afterwards.
type vocabIndex struct {
	slots []uint64 // hash>>32<<32 | entry+1, 0 when free: most mismatches are rejected here
	span  []uint64 // entry -> key end<<32 | key start in the arena
	ids   []int32
	hash  []uint64 // entry -> key hash, for growing
}

func newVocabIndex(n int) *vocabIndex {
	size := 1024
	for size < 2*n && size < maxIDs*2 {
		size <<= 1
	}
	return &vocabIndex{slots: make([]uint64, size)}
}

// hashKey is the hash of the word cache without the seed: it reads eight bytes at a time.
func hashKey[K ~string | ~[]byte](k K) uint64 {
	const m = 0x9E3779B97F4A7C15
	n := len(k)
	h := uint64(n) * m
	for len(k) > 8 {
		h = (h ^ load64g(k)) * m
		h ^= h >> 32
		k = k[8:]
	}
	switch n := len(k); {
	case n == 8:
		h ^= load64g(k)
	case n >= 4:
		h ^= uint64(load32g(k))<<32 | uint64(load32g(k[n-4:]))
	case n > 0:
		h ^= uint64(k[0])<<16 | uint64(k[n>>1])<<8 | uint64(k[n-1])
	}
	h *= m
	h ^= h >> 29
	return h * m
}

func load64g[K ~string | ~[]byte](k K) uint64 {
	k = k[:8]
	return uint64(k[0]) | uint64(k[1])<<8 | uint64(k[2])<<16 | uint64(k[3])<<24 |
		uint64(k[4])<<32 | uint64(k[5])<<40 | uint64(k[6])<<48 | uint64(k[7])<<56
}

func load32g[K ~string | ~[]byte](k K) uint32 {
	k = k[:4]
	return uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
}

// equalKey is a == b eight bytes at a time (runtime string comparison loops over single bytes
// in WebAssembly).
func equalKey[K ~string | ~[]byte](a, b K) bool {
	if len(a) != len(b) {
		return false
	}
	for len(a) >= 8 {
		if load64g(a) != load64g(b) {
			return false
		}
		a, b = a[8:], b[8:]
	}
	for i := range len(a) {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (v *vocabIndex) slot(h uint64) uint64 {
	return h >> (64 - bits.TrailingZeros(uint(len(v.slots))))
}

// find returns the entry whose key (in arena) is k, or -1.
func find[K ~string | ~[]byte](v *vocabIndex, arena, k K, h uint64) int {
	mask := uint64(len(v.slots) - 1)
	for i := v.slot(h); ; i = (i + 1) & mask {
		x := v.slots[i]
		if x == 0 {
			return -1
		}
		if x>>32 == h>>32 {
			e := int(uint32(x)) - 1
			if sp := v.span[e]; equalKey(arena[uint32(sp):sp>>32], k) {
				return e
			}
		}
	}
}

// get returns the id of token k once loading is done (keys is the arena as a string).
func (v *vocabIndex) get(keys, k string) (int, bool) {
	if v == nil {
		return 0, false
	}
	if e := find(v, keys, k, hashKey(k)); e >= 0 {
		return int(v.ids[e]), true
	}
	return 0, false
}

// set makes arena[off:end] map to id: a new entry, or, for a key seen before, a new id for the
// old entry (the later value wins, as in encoding/json and HF). It reports whether the key was
// new; if not, the caller drops the copy it appended to the arena.
func (v *vocabIndex) set(arena []byte, off, end int, id int32) bool {
	k := arena[off:end]
	h := hashKey(k)
	if e := find(v, arena, k, h); e >= 0 {
		v.ids[e] = id
		return false
	}
	if 2*(len(v.ids)+1) > len(v.slots) {
		v.grow()
	}
	v.span = append(v.span, uint64(end)<<32|uint64(off))
	v.ids = append(v.ids, id)
	v.hash = append(v.hash, h)
	v.insert(len(v.ids)-1, h)
	return true
}

func (v *vocabIndex) insert(e int, h uint64) {
	mask := uint64(len(v.slots) - 1)
	i := v.slot(h)
	for v.slots[i] != 0 {
		i = (i + 1) & mask
	}
	v.slots[i] = h>>32<<32 | uint64(e+1)
}

func (v *vocabIndex) grow() {
	v.slots = make([]uint64, 2*len(v.slots))
	for e, h := range v.hash {
		v.insert(e, h)
	}
}

// len is the number of distinct keys.
func (v *vocabIndex) len() int { return len(v.ids) }
