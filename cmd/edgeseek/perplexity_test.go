package main

import (
	"strings"
	"testing"
)

// TestPerplexityRejectsBadWindows: a window that cannot advance, or one that
// would skip tokens, is an error naming both flags, not a hang or a panic.
func TestPerplexityRejectsBadWindows(t *testing.T) {
	for _, c := range []struct{ ctx, stride int }{{0, 0}, {-1, 0}, {4, 8}, {4, -1}} {
		_, err := perplexity(nil, "", nil, "package x", c.ctx, c.stride)
		if err == nil || !strings.Contains(err.Error(), "--stride") {
			t.Errorf("ctx %d stride %d: error %v, want one naming --ctx and --stride", c.ctx, c.stride, err)
		}
	}
}
