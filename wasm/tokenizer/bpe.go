package tokenizer

// pairTable maps a pair of token ids to the merge's rank and result id. It is an open-addressing
// hash table: one flat slice holding key and value side by side (one memory access per probe), no
// per-entry allocation, and a lookup is a multiply and usually one probe, which matters because
// BPE does a lookup per adjacent pair per merge step.
type pairTable struct {
	kv    []uint64 // kv[2i] = a<<32|b (emptyKey when free), kv[2i+1] = rank<<32|newID
	mask  uint64
	count int
}

const emptyKey = ^uint64(0)

func newPairTable(n int) *pairTable {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	t := &pairTable{kv: make([]uint64, 2*size), mask: uint64(size - 1)}
	for i := 0; i < len(t.kv); i += 2 {
		t.kv[i] = emptyKey
	}
	return t
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func (t *pairTable) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> 20 & t.mask }

// put inserts or overwrites; a later duplicate merge replaces the earlier one, as in HF, whose
// merges end up in a HashMap collected in file order.
func (t *pairTable) put(a, b, rank, newID int32) {
	k := pairKey(a, b)
	v := uint64(uint32(rank))<<32 | uint64(uint32(newID))
	for i := t.slot(k); ; i = (i + 1) & t.mask {
		switch t.kv[2*i] {
		case emptyKey:
			t.kv[2*i], t.kv[2*i+1] = k, v
			t.count++
			return
		case k:
			t.kv[2*i+1] = v
			return
		}
	}
}

// get returns the rank and result id of merging a and b, or ok=false.
func (t *pairTable) get(a, b int32) (rank, newID int32, ok bool) {
	rank, newID = t.lookup(a, b)
	return rank, newID, rank != noRank
}

// lookup returns the rank and result id of merging a and b, or noRank.
func (t *pairTable) lookup(a, b int32) (int32, int32) {
	k := pairKey(a, b)
	kv := t.kv
	for i := t.slot(k); ; i = (i + 1) & t.mask {
		switch kv[2*i] {
		case k:
			v := kv[2*i+1]
			return int32(v >> 32), int32(uint32(v))
		case emptyKey:
			return noRank, 0
		}
	}
}

// noRank marks a pair without a merge. Ranks are merge indexes, so they never reach it.
const noRank = int32(1<<31 - 1)

// smallWord is the length up to which merge keeps the pairs in a small array and scans it for the
// lowest rank, shifting the array after each merge: for a few symbols that is fewer steps than
// maintaining a heap. Longer words use the heap, whose cost grows as n log n (the scan's as n²,
// which made 40-120 byte pieces, CJK runs mostly, the bulk of merging time).
const smallWord = 8

// mergeWord applies merges to ids in place: repeatedly the pair with the lowest rank, leftmost
// first, which is the order HF's priority queue produces. It returns the merged prefix.
func (t *pairTable) mergeWord(ids []int32) []int32 {
	var sc mergeScratch
	return t.merge(ids, &sc)
}

func (t *pairTable) merge(ids []int32, sc *mergeScratch) []int32 {
	n := len(ids)
	if n < 2 {
		return ids
	}
	if n > smallWord {
		return t.heapMerge(ids, sc)
	}
	// rk[i] and rs[i] describe the pair (ids[i], ids[i+1]).
	var rk, rs [smallWord]int32
	for i := 0; i+1 < n; i++ {
		rk[i], rs[i] = t.lookup(ids[i], ids[i+1])
	}
	for {
		best, bestRank := -1, noRank
		for i := 0; i+1 < n; i++ {
			if rk[i] < bestRank {
				best, bestRank = i, rk[i]
			}
		}
		if best < 0 {
			return ids[:n]
		}
		// Replace ids[best], ids[best+1] with the merged id; pair best+1 disappears.
		ids[best] = rs[best]
		n--
		for i := best + 1; i < n; i++ {
			ids[i] = ids[i+1]
			rk[i], rs[i] = rk[i+1], rs[i+1]
		}
		if best > 0 {
			rk[best-1], rs[best-1] = t.lookup(ids[best-1], ids[best])
		}
		if best+1 < n {
			rk[best], rs[best] = t.lookup(ids[best], ids[best+1])
		} else {
			rk[best] = noRank
		}
	}
}

// mergeScratch is the working memory of mergeHeap, kept by the encoder across pieces.
type mergeScratch struct {
	next, prev, rank, res []int32
	heap                  []uint64
}

func grow32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n, n+n/2)
	}
	return s[:n]
}

// mergeHeap is heapMerge with its own scratch memory.
func (t *pairTable) mergeHeap(ids []int32) []int32 {
	var sc mergeScratch
	return t.heapMerge(ids, &sc)
}

// heapMerge is the O(n log n) version for longer words, the algorithm of HF's Word::merge_all:
// symbols form a linked list and a binary heap holds the candidate pairs. A heap entry is
// rank<<32|position, so that one integer comparison orders by rank, then leftmost. rank[p] is
// the current rank of the pair starting at p (noRank once p is merged away), so an entry is stale
// exactly when its rank differs (a pair's span only grows, so a position never returns to an
// earlier pair).
func (t *pairTable) heapMerge(ids []int32, sc *mergeScratch) []int32 {
	n := len(ids)
	if n < 2 {
		return ids
	}
	next, prev := grow32(sc.next, n), grow32(sc.prev, n)
	rank, res := grow32(sc.rank, n), grow32(sc.res, n)
	h := sc.heap[:0]
	for i := 0; i < n; i++ {
		next[i], prev[i] = int32(i+1), int32(i-1)
	}
	for i := 0; i+1 < n; i++ {
		r, id := t.lookup(ids[i], ids[i+1])
		rank[i], res[i] = r, id
		if r != noRank {
			h = append(h, uint64(r)<<32|uint64(i))
		}
	}
	rank[n-1] = noRank
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
	for len(h) > 0 {
		top := h[0]
		if last := len(h) - 1; last > 0 {
			h[0] = h[last]
			h = h[:last]
			siftDown(h, 0)
		} else {
			h = h[:0]
		}
		p := int32(uint32(top))
		if rank[p] != int32(top>>32) {
			continue
		}
		q := next[p]
		ids[p] = res[p]
		rank[q] = noRank
		nq := next[q]
		next[p] = nq
		if int(nq) < n {
			prev[nq] = p
		}
		if l := prev[p]; l >= 0 {
			r, id := t.lookup(ids[l], ids[p])
			rank[l], res[l] = r, id
			if r != noRank {
				h = siftUp(append(h, uint64(r)<<32|uint64(l)))
			}
		}
		if int(nq) < n {
			r, id := t.lookup(ids[p], ids[nq])
			rank[p], res[p] = r, id
			if r != noRank {
				h = siftUp(append(h, uint64(r)<<32|uint64(p)))
			}
		} else {
			rank[p] = noRank
		}
	}
	sc.next, sc.prev, sc.rank, sc.res, sc.heap = next, prev, rank, res, h
	out := ids[:0]
	for i := 0; i < n; i = int(next[i]) {
		out = append(out, ids[i])
	}
	return out
}

// siftDown restores the min-heap order below i.
func siftDown(h []uint64, i int) {
	x := h[i]
	for {
		l := 2*i + 1
		if l >= len(h) {
			break
		}
		m := l
		if r := l + 1; r < len(h) && h[r] < h[l] {
			m = r
		}
		if h[m] >= x {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = x
}

// siftUp restores the min-heap order above the last element and returns h.
func siftUp(h []uint64) []uint64 {
	i := len(h) - 1
	x := h[i]
	for i > 0 {
		p := (i - 1) / 2
		if h[p] <= x {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = x
	return h
}
