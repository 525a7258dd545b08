package sampler

import "strings"

// StopMatcher finds stop sequences in streamed text. Feed it each decoded
// piece with Push; it returns the text that is safe to show now and holds
// back any tail that could still grow into a stop sequence. The zero value
// (no sequences) passes text straight through.
type StopMatcher struct {
	stops   []string
	pending string
	done    bool
}

// NewStopMatcher returns a matcher for the given stop sequences; empty
// strings are ignored.
func NewStopMatcher(stops []string) *StopMatcher {
	m := &StopMatcher{}
	for _, s := range stops {
		if s != "" {
			m.stops = append(m.stops, s)
		}
	}
	return m
}

// Push adds a piece of generated text. It returns the text safe to emit
// and whether a stop sequence has ended generation; on a stop, emit is the
// text before the earliest stop sequence and the sequence itself is never
// emitted (OpenAI behaviour). After a stop, Push returns ("", true).
func (m *StopMatcher) Push(piece string) (emit string, stopped bool) {
	if m.done {
		return "", true
	}
	buf := m.pending + piece
	// The earliest complete match wins; among matches at the same offset
	// any is fine because the emitted prefix is the same.
	first := -1
	for _, s := range m.stops {
		if i := strings.Index(buf, s); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	if first >= 0 {
		m.done = true
		m.pending = ""
		return buf[:first], true
	}
	hold := 0
	for _, s := range m.stops {
		if h := partialSuffix(buf, s); h > hold {
			hold = h
		}
	}
	m.pending = buf[len(buf)-hold:]
	return buf[:len(buf)-hold], false
}

// Flush returns the held-back text when generation ends for another
// reason (EOS, max tokens); a held tail that never completed a stop
// sequence is ordinary output.
func (m *StopMatcher) Flush() string {
	if m.done {
		return ""
	}
	out := m.pending
	m.pending = ""
	return out
}

// Stopped reports whether a stop sequence has been seen.
func (m *StopMatcher) Stopped() bool { return m.done }

// partialSuffix returns the length of the longest proper prefix of s that
// is a suffix of buf.
func partialSuffix(buf, s string) int {
	n := min(len(s)-1, len(buf))
	for k := n; k > 0; k-- {
		if strings.HasSuffix(buf, s[:k]) {
			return k
		}
	}
	return 0
}
