package tokenizer

import "sort"

// addedTrie finds added tokens in text with leftmost-longest semantics, like the Aho-Corasick
// automaton (MatchKind::LeftmostLongest) HF builds: at the first position where any token
// starts, the longest token starting there wins.
type addedTrie struct {
	first [256]bool // quick reject: can a token start with this byte?
	nodes []trieNode
	// only is the byte all tokens start with, if they share one (DeepSeek's all start with
	// '<'), else -1: split then skips eight bytes per step.
	only int
}

type trieNode struct {
	edges []trieEdge // sorted by byte
	id    int32      // token ending here, or -1
}

type trieEdge struct {
	b    byte
	next int32
}

func newAddedTrie() *addedTrie {
	return &addedTrie{nodes: []trieNode{{id: -1}}, only: -1}
}

func (t *addedTrie) add(s string, id int) {
	if t.empty() {
		t.only = int(s[0])
	} else if t.only != int(s[0]) {
		t.only = -1
	}
	t.first[s[0]] = true
	n := int32(0)
	for i := 0; i < len(s); i++ {
		e := t.nodes[n].edges
		k := sort.Search(len(e), func(j int) bool { return e[j].b >= s[i] })
		if k < len(e) && e[k].b == s[i] {
			n = e[k].next
			continue
		}
		t.nodes = append(t.nodes, trieNode{id: -1})
		nn := int32(len(t.nodes) - 1)
		e = append(e, trieEdge{})
		copy(e[k+1:], e[k:])
		e[k] = trieEdge{s[i], nn}
		t.nodes[n].edges = e
		n = nn
	}
	t.nodes[n].id = int32(id)
}

func (t *addedTrie) empty() bool { return len(t.nodes) == 1 }

// longestAt returns the id and end of the longest token starting at s[i], or id -1.
func (t *addedTrie) longestAt(s string, i int) (int32, int) {
	if !t.first[s[i]] {
		return -1, 0
	}
	n := int32(0)
	bestID, bestEnd := int32(-1), 0
	for j := i; j < len(s); j++ {
		e := t.nodes[n].edges
		lo, hi := 0, len(e)
		for lo < hi {
			m := int(uint(lo+hi) >> 1)
			if e[m].b < s[j] {
				lo = m + 1
			} else {
				hi = m
			}
		}
		if lo == len(e) || e[lo].b != s[j] {
			break
		}
		n = e[lo].next
		if id := t.nodes[n].id; id >= 0 {
			bestID, bestEnd = id, j+1
		}
	}
	return bestID, bestEnd
}

// split calls plain for text between tokens and tok for each token found in s[a:b].
func (t *addedTrie) split(s string, a, b int, plain func(a, b int) error, tok func(id int32)) error {
	if t.empty() {
		if a < b {
			return plain(a, b)
		}
		return nil
	}
	sub := s[:b]
	gap := a
	first := &t.first
	for i := a; i < b; {
		// Skip bytes that start no token without a call per byte (calls
		// are costly in WebAssembly), eight at a time when all tokens start with the same
		// byte: a word of the text XOR that byte repeated has a zero byte where it occurs.
		if t.only >= 0 {
			pat := swarOne * uint64(t.only)
			for i+8 <= b {
				if x := load64(sub, i) ^ pat; (x-swarOne)&^x&swarHi != 0 {
					break
				}
				i += 8
			}
		}
		for i+4 <= b {
			w := sub[i : i+4]
			if first[w[0]] || first[w[1]] || first[w[2]] || first[w[3]] {
				break
			}
			i += 4
		}
		for i < b && !first[sub[i]] {
			i++
		}
		if i == b {
			break
		}
		id, end := t.longestAt(sub, i)
		if id < 0 {
			i++
			continue
		}
		if gap < i {
			if err := plain(gap, i); err != nil {
				return err
			}
		}
		tok(id)
		i, gap = end, end
	}
	if gap < b {
		return plain(gap, b)
	}
	return nil
}
