package engine

import (
	"fmt"
	"time"
)

// EventKind tells what an Event carries.
type EventKind uint8

const (
	// EventPrefill reports prompt progress (Prefilled of PromptTokens).
	EventPrefill EventKind = iota + 1
	// EventToken carries one generated token.
	EventToken
	// EventDone ends the stream; Result is set. The channel is closed
	// right after it.
	EventDone
)

// Event is one thing that happened to a request, in order.
type Event struct {
	Kind EventKind
	// Prefill progress (EventPrefill).
	Prefilled, PromptTokens int
	// Token is the generated token (EventToken).
	Token Choice
	// Text is the output text released with this event: whole UTF-8
	// characters only, with stop sequences removed. It may be empty (held
	// back), hold text of earlier tokens, or, on EventDone, the tail.
	Text string
	// Result is set on EventDone.
	Result *Result
}

// Finish reasons.
const (
	FinishStop      = "stop"      // end-of-sequence token, stop token or stop sequence
	FinishLength    = "length"    // max tokens or context limit reached
	FinishCancelled = "cancelled" // the caller's context ended
	FinishError     = "error"     // the model or the edge failed; see Err
)

// Result ends a request.
type Result struct {
	Finish       string
	StopSequence string // the stop sequence that ended generation, if any
	Err          error  // set for FinishCancelled and FinishError
	Usage        Usage
	Timings      Timings
}

// Usage counts tokens.
type Usage struct {
	PromptTokens     int
	CachedTokens     int // prompt tokens taken from the prefix cache
	CompletionTokens int
}

// Timings measure one request. Rates count only the tokens this request
// computed.
type Timings struct {
	Queued  time.Duration // from Submit to admission
	Prefill time.Duration // wall time from admission to the first token
	Decode  time.Duration // wall time from the first token to the end
	// PrefillTokensPerSec is computed prompt tokens over Prefill.
	PrefillTokensPerSec float64
	// DecodeTokensPerSec is generated tokens after the first over Decode.
	DecodeTokensPerSec float64
}

// AdmissionError refuses a request that can never fit, with the numbers.
type AdmissionError struct {
	Reason       string // "context" or "memory"
	PromptTokens int
	MaxTokens    int
	ContextLimit int
	NeedBytes    int64
	BudgetBytes  int64
}

// Error says what the request needs and what the limit is.
func (e *AdmissionError) Error() string {
	if e.Reason == "context" {
		return fmt.Sprintf("request needs %d tokens (prompt %d + max_tokens %d) but the context limit is %d",
			e.PromptTokens+e.MaxTokens, e.PromptTokens, e.MaxTokens, e.ContextLimit)
	}
	return fmt.Sprintf("request needs %d bytes of cache (prompt %d + max_tokens %d tokens) but the cache budget is %d bytes",
		e.NeedBytes, e.PromptTokens, e.MaxTokens, e.BudgetBytes)
}
