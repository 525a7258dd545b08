package engine

import "container/list"

// prefixCache keeps the caches of recently finished sequences, bounded in
// bytes, least recently used first out.
type prefixCache struct {
	max   int64
	bytes int64
	lru   *list.List // of *prefixEntry, front = most recent
}

type prefixEntry struct {
	tokens []int // exactly the tokens seq has consumed
	seq    Sequence
	bytes  int64
}

func newPrefixCache(max int64) *prefixCache {
	return &prefixCache{max: max, lru: list.New()}
}

// put keeps seq for reuse, evicting older entries to stay within max.
func (c *prefixCache) put(tokens []int, seq Sequence) {
	b := int64(seq.Bytes())
	if c.max <= 0 || b > c.max || len(tokens) == 0 {
		return
	}
	c.lru.PushFront(&prefixEntry{tokens: tokens, seq: seq, bytes: b})
	c.bytes += b
	for c.bytes > c.max {
		c.evictOldest()
	}
}

// take removes and returns the longest entry whose tokens are a strict
// prefix of tokens (at least one token must remain to compute logits).
func (c *prefixCache) take(tokens []int) *prefixEntry {
	var best *list.Element
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*prefixEntry)
		if len(e.tokens) >= len(tokens) || (best != nil && len(e.tokens) <= len(best.Value.(*prefixEntry).tokens)) {
			continue
		}
		if isPrefix(e.tokens, tokens) {
			best = el
		}
	}
	if best == nil {
		return nil
	}
	e := c.lru.Remove(best).(*prefixEntry)
	c.bytes -= e.bytes
	return e
}

// evictOldest drops the least recently used entry; false when empty.
func (c *prefixCache) evictOldest() bool {
	el := c.lru.Back()
	if el == nil {
		return false
	}
	e := c.lru.Remove(el).(*prefixEntry)
	c.bytes -= e.bytes
	return true
}

func isPrefix(p, s []int) bool {
	if len(p) > len(s) {
		return false
	}
	for i, v := range p {
		if s[i] != v {
			return false
		}
	}
	return true
}
