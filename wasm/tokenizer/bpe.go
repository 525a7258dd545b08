package tokenizer

import (
	"hash/maphash"
	"sync/atomic"
)

// pairTable maps a pair of token ids to the merge's rank and result id. It is an open-addressing
// hash table: one flat slice, no per-entry allocation, and a lookup is a multiply and a probe,
// which matters because BPE does a lookup per adjacent pair per merge step.
type pairTable struct {
	keys  []uint64 // a<<32|b, emptyKey when free
	vals  []uint64 // rank<<32|newID
	mask  uint64
	count int
}

const emptyKey = ^uint64(0)

func newPairTable(n int) *pairTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	t := &pairTable{keys: make([]uint64, size), vals: make([]uint64, size), mask: uint64(size - 1)}
	for i := range t.keys {
		t.keys[i] = emptyKey
	}
	return t
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (t *pairTable) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> 20 & t.mask }

// put inserts or overwrites; a later duplicate merge replaces the earlier one, as in HF, whose
// merges end up in a HashMap collected in file order.
func (t *pairTable) put(a, b, rank, newID int32) {
	k := pairKey(a, b)
	for i := t.slot(k); ; i = (i + 1) & t.mask {
		if t.keys[i] == emptyKey {
			t.keys[i] = k
			t.vals[i] = uint64(uint32(rank))<<32 | uint64(uint32(newID))
			t.count++
			return
		}
		if t.keys[i] == k {
			t.vals[i] = uint64(uint32(rank))<<32 | uint64(uint32(newID))
			return
		}
	}
}

// get returns the rank and result id of merging a and b, or ok=false.
func (t *pairTable) get(a, b int32) (rank, newID int32, ok bool) {
	k := pairKey(a, b)
	for i := t.slot(k); ; i = (i + 1) & t.mask {
		switch t.keys[i] {
		case k:
			v := t.vals[i]
			return int32(v >> 32), int32(uint32(v)), true
		case emptyKey:
			return 0, 0, false
		}
	}
}

// smallWord is the length up to which mergeWord keeps pair ranks in an array and scans it for the
// minimum: each merge then costs two hash lookups plus a scan of plain integers. Longer words
// (runs of spaces, long CJK runs) use the heap, whose cost grows as n log n.
const smallWord = 256

// noRank marks a pair without a merge in the rank array.
const noRank = int32(1<<31 - 1)

// mergeWord applies merges to ids in place: repeatedly the pair with the lowest rank, leftmost
// first, which is the order HF's priority queue produces. It returns the merged prefix.
func (t *pairTable) mergeWord(ids []int32) []int32 {
	n := len(ids)
	if n < 2 {
		return ids
	}
	if n > smallWord {
		return t.mergeHeap(ids)
	}
	// ranks[i] and res[i] describe the pair (ids[i], ids[i+1]).
	var rankBuf, resBuf [smallWord]int32
	ranks, res := rankBuf[:n-1], resBuf[:n-1]
	for i := range ranks {
		ranks[i], res[i] = t.lookup(ids[i], ids[i+1])
	}
	for len(ranks) > 0 {
		best, bestRank := -1, noRank
		for i, r := range ranks {
			if r < bestRank {
				best, bestRank = i, r
			}
		}
		if best < 0 {
			break
		}
		// Replace ids[best], ids[best+1] with the merged id; pair best+1 disappears.
		ids[best] = res[best]
		copy(ids[best+1:], ids[best+2:])
		ids = ids[:len(ids)-1]
		copy(ranks[best:], ranks[best+1:])
		copy(res[best:], res[best+1:])
		ranks, res = ranks[:len(ranks)-1], res[:len(res)-1]
		if best > 0 {
			ranks[best-1], res[best-1] = t.lookup(ids[best-1], ids[best])
		}
		if best < len(ranks) {
			ranks[best], res[best] = t.lookup(ids[best], ids[best+1])
		}
	}
	return ids
}

// lookup is get with noRank for a missing pair.
func (t *pairTable) lookup(a, b int32) (int32, int32) {
	if r, id, ok := t.get(a, b); ok {
		return r, id
	}
	return noRank, 0
}

type mergeItem struct {
	rank, pos, newID int32
}

// mergeQueue is a binary min-heap ordered by (rank, pos), written out instead of using
// container/heap so that items are not boxed into interfaces on every push and pop.
type mergeQueue []mergeItem

func (h mergeQueue) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *mergeQueue) push(x mergeItem) {
	*h = append(*h, x)
	q := *h
	for i := len(q) - 1; i > 0; {
		p := (i - 1) / 2
		if !q.less(i, p) {
			break
		}
		q[i], q[p] = q[p], q[i]
		i = p
	}
}

func (h *mergeQueue) pop() mergeItem {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(q) {
			break
		}
		m := l
		if r := l + 1; r < len(q) && q.less(r, l) {
			m = r
		}
		if !q.less(m, i) {
			break
		}
		q[i], q[m] = q[m], q[i]
		i = m
	}
	*h = q
	return top
}

// mergeHeap is the O(n log n) version for long words: symbols form a linked list and stale queue
// entries are skipped when popped, as in HF's Word::merge_all.
func (t *pairTable) mergeHeap(ids []int32) []int32 {
	n := len(ids)
	prev := make([]int32, n)
	next := make([]int32, n)
	alive := make([]bool, n)
	h := make(mergeQueue, 0, n)
	for i := range n {
		prev[i], next[i], alive[i] = int32(i-1), int32(i+1), true
		if i+1 < n {
			if r, id, ok := t.get(ids[i], ids[i+1]); ok {
				h.push(mergeItem{r, int32(i), id})
			}
		}
	}
	next[n-1] = -1
	for len(h) > 0 {
		m := h.pop()
		p := m.pos
		if !alive[p] || next[p] < 0 {
			continue
		}
		q := next[p]
		if _, id, ok := t.get(ids[p], ids[q]); !ok || id != m.newID {
			continue
		}
		ids[p] = m.newID
		alive[q] = false
		next[p] = next[q]
		if next[p] >= 0 {
			prev[next[p]] = p
		}
		if l := prev[p]; l >= 0 {
			if r, id, ok := t.get(ids[l], ids[p]); ok {
				h.push(mergeItem{r, l, id})
			}
		}
		if rr := next[p]; rr >= 0 {
			if r, id, ok := t.get(ids[p], ids[rr]); ok {
				h.push(mergeItem{r, p, id})
			}
		}
	}
	out := ids[:0]
	for i := 0; i >= 0 && i < n; i = int(next[i]) {
		out = append(out, ids[i])
	}
	return out
}

// wordCache remembers the ids of recent pre-tokens. Natural text repeats a small set of words, so
// most pieces skip merging. It is direct-mapped: a piece's hash picks one slot and a new piece
// replaces whatever was there. That bounds memory without eviction bookkeeping, keeps frequent
// words resident while rare ones churn, and needs no lock: slots hold immutable entries behind
// atomic pointers, so concurrent Encode calls share it safely.
type wordCache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	key string
	ids []int32
}

const (
	cacheSlots  = 1 << 15 // 256 KiB of pointers
	cacheMaxLen = 64      // longer pieces are rare and would only evict useful entries
)

func newWordCache() wordCache {
	return wordCache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cacheEntry], cacheSlots)}
}

func (c *wordCache) slot(k string) *atomic.Pointer[cacheEntry] {
	return &c.slots[maphash.String(c.seed, k)&(cacheSlots-1)]
}

func (c *wordCache) get(k string) ([]int32, bool) {
	if e := c.slot(k).Load(); e != nil && e.key == k {
		return e.ids, true
	}
	return nil, false
}

// put stores ids for k; k must not alias the caller's text (the cache would keep it alive).
func (c *wordCache) put(k string, ids []int32) {
	c.slot(k).Store(&cacheEntry{k, ids})
}
