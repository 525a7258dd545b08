package engine

import "strings"

// stopMatcher finds stop sequences in streamed text, holding back any tail
// that could still become one.
type stopMatcher struct {
	stops   []string
	pending string
}

func newStopMatcher(stops []string) *stopMatcher {
	m := &stopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// push adds text; it returns what is safe to emit, and the stop sequence
// found (emit then ends right before it).
func (m *stopMatcher) push(text string) (emit, stop string) {
	buf := m.pending + text
	at := -1
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (at < 0 || i < at) {
			at, stop = i, s
		}
	}
	if at >= 0 {
		m.pending = ""
		return buf[:at], stop
	}
	hold := 0
	for _, s := range m.stops {
		for k := min(len(s)-1, len(buf)); k > hold; k-- {
			if strings.HasSuffix(buf, s[:k]) {
				hold = k
				break
			}
		}
	}
	m.pending = buf[len(buf)-hold:]
	return buf[:len(buf)-hold], ""
}

// flush returns the held-back text.
func (m *stopMatcher) flush() string {
	out := m.pending
	m.pending = ""
	return out
}
