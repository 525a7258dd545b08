package protocol

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/x448/float16"
)

// Hello is the client's first frame: the versions it speaks and the mode
// it wants.
type Hello struct {
	// MinVersion is the oldest version the client speaks.
	MinVersion uint16 `msgpack:"min_version"`
	// MaxVersion is the newest version the client speaks.
	MaxVersion uint16 `msgpack:"max_version"`
	// Mode is the connection mode.
	Mode Mode `msgpack:"mode"`
	// Client names the client for logs ("edgeseek-web/0.1").
	Client string `msgpack:"client,omitempty"`
	// Model optionally names the model the client expects.
	Model string `msgpack:"model,omitempty"`
}

// Type implements Message.
func (*Hello) Type() Type { return TypeHello }

// Validate implements Validator.
func (m *Hello) Validate() error {
	switch {
	case m.MinVersion == 0 || m.MaxVersion < m.MinVersion:
		return invalid("hello", "versions", "[%d, %d] is empty", m.MinVersion, m.MaxVersion)
	case m.Mode != ModeSplit && m.Mode != ModeHosted:
		return invalid("hello", "mode", "%q is not split or hosted", truncate(string(m.Mode), 32))
	case len(m.Client) > 256 || len(m.Model) > 256:
		return invalid("hello", "client", "or model longer than 256 bytes")
	}
	return nil
}

// Welcome is the host's answer to Hello.
type Welcome struct {
	// Version is the negotiated version; every later frame carries it.
	Version uint16 `msgpack:"version"`
	// Mode echoes the accepted mode.
	Mode Mode `msgpack:"mode"`
	// Model names the loaded model ("DeepSeek-V4-Flash").
	Model string `msgpack:"model"`
	// Vocab is the logit vector length.
	Vocab uint32 `msgpack:"vocab"`
	// MaxContext is the longest sequence the host accepts, in tokens.
	MaxContext uint32 `msgpack:"max_context"`
	// EngramPerToken is how many Engram row addresses a split-mode step
	// carries per token (0: the model has no Engram, as V4 before V4.1).
	EngramPerToken uint32 `msgpack:"engram_per_token,omitempty"`
	// CSALayers is the number of CSA layers whose selected positions the
	// host can report (0: none).
	CSALayers uint32 `msgpack:"csa_layers,omitempty"`
	// MHCLayers is the number of layers with mHC matrices to report.
	MHCLayers uint32 `msgpack:"mhc_layers,omitempty"`
}

// Type implements Message.
func (*Welcome) Type() Type { return TypeWelcome }

// Validate implements Validator.
func (m *Welcome) Validate() error {
	switch {
	case m.Version < MinVersion || m.Version > Version:
		return fmt.Errorf("welcome.version %d: %w", m.Version, ErrVersion)
	case m.Mode != ModeSplit && m.Mode != ModeHosted:
		return invalid("welcome", "mode", "%q is not split or hosted", truncate(string(m.Mode), 32))
	case m.Vocab == 0 || m.Vocab > MaxVocab:
		return invalid("welcome", "vocab", "%d not in [1, %d]", m.Vocab, MaxVocab)
	case len(m.Model) > 256:
		return invalid("welcome", "model", "longer than 256 bytes")
	case m.EngramPerToken > 1024:
		return invalid("welcome", "engram_per_token", "%d > 1024", m.EngramPerToken)
	}
	return nil
}

// Step is one split-mode step: the client appends Tokens at position Pos
// (the host first drops any cached state at or after Pos, which is how
// the client regenerates or edits) and asks for the logits after the last
// token.
type Step struct {
	// Seq numbers the step; the answer carries it back.
	Seq uint64 `msgpack:"seq"`
	// Pos is the position of Tokens[0] in the sequence.
	Pos uint32 `msgpack:"pos"`
	// Tokens are the new token ids (a prefill chunk or one sampled token).
	Tokens []int32 `msgpack:"tokens"`
	// Engram holds, for V4.1 models, Welcome.EngramPerToken row ids per
	// token, token-major (per token: Engram layers in order, then n-gram
	// order, then head): len(Engram) == len(Tokens)*EngramPerToken.
	Engram []int64 `msgpack:"engram,omitempty"`
	// TopN asks for only the N highest logits instead of the full vector;
	// 0 asks for the full vector.
	TopN uint32 `msgpack:"top_n,omitempty"`
	// WantCSA asks for the compressed positions each CSA layer selected.
	WantCSA bool `msgpack:"want_csa,omitempty"`
	// WantMHC asks for each layer's 4×4 mHC mixing matrix.
	WantMHC bool `msgpack:"want_mhc,omitempty"`
}

// Type implements Message.
func (*Step) Type() Type { return TypeStep }

// Validate implements Validator. The Engram length is checked against
// Welcome.EngramPerToken by the host; here it must be a multiple of the
// token count.
func (m *Step) Validate() error {
	switch {
	case len(m.Tokens) == 0:
		return invalid("step", "tokens", "is empty")
	case len(m.Tokens) > MaxStepTokens:
		return fmt.Errorf("step.tokens: %d tokens > %d: %w", len(m.Tokens), MaxStepTokens, ErrOversize)
	case uint64(m.Pos)+uint64(len(m.Tokens)) > math.MaxUint32:
		return invalid("step", "pos", "%d overflows", m.Pos)
	case len(m.Engram)%len(m.Tokens) != 0:
		return invalid("step", "engram", "length %d is not a multiple of %d tokens", len(m.Engram), len(m.Tokens))
	case len(m.Engram)/len(m.Tokens) > 1024:
		return invalid("step", "engram", "%d addresses per token > 1024", len(m.Engram)/len(m.Tokens))
	case m.TopN > MaxTopN:
		return invalid("step", "top_n", "%d > %d", m.TopN, MaxTopN)
	}
	for i, r := range m.Engram {
		if r < 0 {
			return invalid("step", "engram", "[%d] = %d is negative", i, r)
		}
	}
	return checkIDs("step.tokens", m.Tokens)
}

// TopLogit is one entry of a top-N answer.
type TopLogit struct {
	// ID is the token id.
	ID int32 `msgpack:"id"`
	// Logit is the raw logit.
	Logit float32 `msgpack:"logit"`
}

// CSASelection lists the compressed positions one CSA layer attended to.
type CSASelection struct {
	// Layer is the decoder layer index.
	Layer uint16 `msgpack:"layer"`
	// Positions are the selected compressed-block positions.
	Positions []int32 `msgpack:"positions"`
}

// MHCMatrix is one layer's 4×4 mHC residual mixing matrix, row-major.
type MHCMatrix struct {
	// Layer is the decoder layer index.
	Layer uint16 `msgpack:"layer"`
	// M is the matrix, row-major.
	M [16]float32 `msgpack:"m"`
}

// StepTiming reports where a step's time went, in microseconds.
type StepTiming struct {
	// QueueUS is the time the step waited for the scheduler.
	QueueUS uint64 `msgpack:"queue_us"`
	// ComputeUS is the forward pass.
	ComputeUS uint64 `msgpack:"compute_us"`
}

// Logits answers a Step: either the full vector as little-endian IEEE
// float16 (F16) or the TopN highest logits, highest first (Top).
type Logits struct {
	// Seq is the answered step's Seq.
	Seq uint64 `msgpack:"seq"`
	// Pos is the position whose next-token logits these are.
	Pos uint32 `msgpack:"pos"`
	// F16 is the full vector, 2 bytes per token id (see EncodeFloat16).
	F16 []byte `msgpack:"f16,omitempty"`
	// Top is the top-N answer.
	Top []TopLogit `msgpack:"top,omitempty"`
	// Timing is the step's timing.
	Timing StepTiming `msgpack:"timing"`
	// CSA is present when the step asked for it.
	CSA []CSASelection `msgpack:"csa,omitempty"`
	// MHC is present when the step asked for it.
	MHC []MHCMatrix `msgpack:"mhc,omitempty"`
}

// Type implements Message.
func (*Logits) Type() Type { return TypeLogits }

// Validate implements Validator.
func (m *Logits) Validate() error {
	switch {
	case (len(m.F16) == 0) == (len(m.Top) == 0):
		return invalid("logits", "f16", "and top: exactly one must be set")
	case len(m.F16)%2 != 0:
		return invalid("logits", "f16", "has odd length %d", len(m.F16))
	case len(m.F16) > 2*MaxVocab:
		return fmt.Errorf("logits.f16: %d entries > %d: %w", len(m.F16)/2, MaxVocab, ErrOversize)
	case len(m.Top) > MaxTopN:
		return fmt.Errorf("logits.top: %d entries > %d: %w", len(m.Top), MaxTopN, ErrOversize)
	case len(m.CSA) > 1024 || len(m.MHC) > 1024:
		return fmt.Errorf("logits: more than 1024 layers of extras: %w", ErrOversize)
	}
	for i, t := range m.Top {
		if t.ID < 0 || t.ID >= MaxVocab {
			return invalid("logits", "top", "[%d].id %d out of range", i, t.ID)
		}
		if math.IsNaN(float64(t.Logit)) {
			return invalid("logits", "top", "[%d].logit is NaN", i)
		}
		if i > 0 && t.Logit > m.Top[i-1].Logit {
			return invalid("logits", "top", "is not sorted highest first at %d", i)
		}
	}
	for _, c := range m.CSA {
		if len(c.Positions) > MaxStepTokens*16 {
			return fmt.Errorf("logits.csa[%d]: %w", c.Layer, ErrOversize)
		}
	}
	return nil
}

// EncodeFloat16 converts logits to the little-endian float16 bytes of
// Logits.F16 (round to nearest even; overflow saturates to ±Inf).
func EncodeFloat16(logits []float32) []byte {
	b := make([]byte, 2*len(logits))
	for i, f := range logits {
		binary.LittleEndian.PutUint16(b[2*i:], float16.Fromfloat32(f).Bits())
	}
	return b
}

// DecodeFloat16 converts Logits.F16 bytes back to float32, appending to
// dst. An odd trailing byte is ignored (Validate rejects it).
func DecodeFloat16(dst []float32, b []byte) []float32 {
	for i := 0; i+1 < len(b); i += 2 {
		dst = append(dst, float16.Frombits(binary.LittleEndian.Uint16(b[i:])).Float32())
	}
	return dst
}

// ChatMessage is one message of a conversation.
type ChatMessage struct {
	// Role is "system", "user", "assistant" or "tool".
	Role string `msgpack:"role"`
	// Content is the message text.
	Content string `msgpack:"content"`
	// Reasoning is an assistant message's thinking text, if kept.
	Reasoning string `msgpack:"reasoning,omitempty"`
}

// ChatOptions controls chat encoding.
type ChatOptions struct {
	// Thinking turns the thinking mode on.
	Thinking bool `msgpack:"thinking,omitempty"`
	// Effort is the reasoning effort: "", "high", "max" (adds the
	// maximum-effort instruction in thinking mode) or "none" (turns
	// thinking off).
	Effort string `msgpack:"effort,omitempty"`
	// KeepThinking keeps the reasoning of earlier turns in the prompt.
	KeepThinking bool `msgpack:"keep_thinking,omitempty"`
}

// Validate checks the effort value.
func (o *ChatOptions) Validate() error {
	switch o.Effort {
	case "", "high", "max", "none":
		return nil
	}
	return invalid("chat", "effort", "%q is not \"\", high, max or none", truncate(o.Effort, 32))
}

// SamplingParams are the per-request sampling settings; zero values mean
// greedy decoding without penalties or limits.
type SamplingParams struct {
	// Temperature divides the logits; 0 is greedy.
	Temperature float64 `msgpack:"temperature,omitempty"`
	// TopK keeps the K highest logits; 0 disables it.
	TopK int32 `msgpack:"top_k,omitempty"`
	// TopP is the nucleus mass in [0, 1]; 0 and 1 disable it.
	TopP float64 `msgpack:"top_p,omitempty"`
	// MinP drops tokens below MinP times the top probability.
	MinP float64 `msgpack:"min_p,omitempty"`
	// RepetitionPenalty divides positive and multiplies negative logits
	// of seen tokens; 0 and 1 disable it.
	RepetitionPenalty float64 `msgpack:"repetition_penalty,omitempty"`
	// PresencePenalty in [-2, 2] is subtracted once per seen token.
	PresencePenalty float64 `msgpack:"presence_penalty,omitempty"`
	// FrequencyPenalty in [-2, 2] is subtracted per occurrence.
	FrequencyPenalty float64 `msgpack:"frequency_penalty,omitempty"`
	// PenaltyLastN limits the penalty window; 0 means the whole history.
	PenaltyLastN int32 `msgpack:"penalty_last_n,omitempty"`
	// LogitBias adds a bias in [-100, 100] to a token's logit.
	LogitBias map[int32]float32 `msgpack:"logit_bias,omitempty"`
	// StopTokens end generation when sampled.
	StopTokens []int32 `msgpack:"stop_tokens,omitempty"`
	// MaxTokens ends generation after this many tokens; 0 = no limit.
	MaxTokens int32 `msgpack:"max_tokens,omitempty"`
	// Seed seeds the request's generator.
	Seed uint64 `msgpack:"seed,omitempty"`
	// LogProbs asks for the sampled token's log-probability.
	LogProbs bool `msgpack:"logprobs,omitempty"`
	// TopLogProbs asks for that many alternatives (0..20; needs LogProbs).
	TopLogProbs int32 `msgpack:"top_logprobs,omitempty"`
}

// Validate checks ranges (the same ones the sampler enforces).
func (p *SamplingParams) Validate() error {
	const m = "sampling"
	switch {
	case !finite(p.Temperature) || p.Temperature < 0:
		return invalid(m, "temperature", "%v must be finite and >= 0", p.Temperature)
	case p.TopK < 0:
		return invalid(m, "top_k", "%d < 0", p.TopK)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return invalid(m, "top_p", "%v not in [0, 1]", p.TopP)
	case !(p.MinP >= 0 && p.MinP <= 1):
		return invalid(m, "min_p", "%v not in [0, 1]", p.MinP)
	case !finite(p.RepetitionPenalty) || p.RepetitionPenalty < 0:
		return invalid(m, "repetition_penalty", "%v must be finite and >= 0", p.RepetitionPenalty)
	case !(p.PresencePenalty >= -2 && p.PresencePenalty <= 2):
		return invalid(m, "presence_penalty", "%v not in [-2, 2]", p.PresencePenalty)
	case !(p.FrequencyPenalty >= -2 && p.FrequencyPenalty <= 2):
		return invalid(m, "frequency_penalty", "%v not in [-2, 2]", p.FrequencyPenalty)
	case p.PenaltyLastN < 0:
		return invalid(m, "penalty_last_n", "%d < 0", p.PenaltyLastN)
	case p.MaxTokens < 0:
		return invalid(m, "max_tokens", "%d < 0", p.MaxTokens)
	case p.TopLogProbs < 0 || p.TopLogProbs > MaxTopLogProbs:
		return invalid(m, "top_logprobs", "%d not in [0, %d]", p.TopLogProbs, MaxTopLogProbs)
	case p.TopLogProbs > 0 && !p.LogProbs:
		return invalid(m, "top_logprobs", "needs logprobs")
	case len(p.LogitBias) > MaxVocab || len(p.StopTokens) > 1024:
		return fmt.Errorf("sampling: logit_bias or stop_tokens: %w", ErrOversize)
	}
	for id, b := range p.LogitBias {
		if id < 0 || id >= MaxVocab {
			return invalid(m, "logit_bias", "token id %d out of range", id)
		}
		if !(b >= -100 && b <= 100) {
			return invalid(m, "logit_bias", "[%d] = %v not in [-100, 100]", id, b)
		}
	}
	return checkIDs("sampling.stop_tokens", p.StopTokens)
}

// Generate is a hosted-mode request: exactly one of Prompt (raw text) and
// Messages (a chat, encoded by the edge with Chat).
type Generate struct {
	// ID names the request; every event about it carries the ID.
	ID string `msgpack:"id"`
	// Prompt is raw text to continue.
	Prompt string `msgpack:"prompt,omitempty"`
	// Messages is a chat to answer.
	Messages []ChatMessage `msgpack:"messages,omitempty"`
	// Chat controls chat encoding of Messages.
	Chat ChatOptions `msgpack:"chat,omitempty"`
	// Sampling holds the sampling settings.
	Sampling SamplingParams `msgpack:"sampling,omitempty"`
	// Stop strings end generation; they are not part of the output.
	Stop []string `msgpack:"stop,omitempty"`
}

// Type implements Message.
func (*Generate) Type() Type { return TypeGenerate }

// Validate implements Validator.
func (m *Generate) Validate() error {
	if err := checkID("generate", m.ID); err != nil {
		return err
	}
	switch {
	case (m.Prompt == "") == (len(m.Messages) == 0):
		return invalid("generate", "prompt", "and messages: exactly one must be set")
	case len(m.Messages) > MaxMessages:
		return fmt.Errorf("generate.messages: %d > %d: %w", len(m.Messages), MaxMessages, ErrOversize)
	case len(m.Stop) > MaxStops:
		return fmt.Errorf("generate.stop: %d > %d: %w", len(m.Stop), MaxStops, ErrOversize)
	case !utf8.ValidString(m.Prompt):
		return invalid("generate", "prompt", "is not valid UTF-8")
	}
	for i, c := range m.Messages {
		switch c.Role {
		case "system", "user", "assistant", "tool":
		default:
			return invalid("generate", "messages", "[%d].role %q unknown", i, truncate(c.Role, 32))
		}
		if !utf8.ValidString(c.Content) || !utf8.ValidString(c.Reasoning) {
			return invalid("generate", "messages", "[%d] is not valid UTF-8", i)
		}
	}
	for i, s := range m.Stop {
		if s == "" || len(s) > 256 || !utf8.ValidString(s) {
			return invalid("generate", "stop", "[%d] must be 1..256 bytes of UTF-8", i)
		}
	}
	if err := m.Chat.Validate(); err != nil {
		return err
	}
	return m.Sampling.Validate()
}

// Cancel stops a hosted-mode request; the host answers with its Done.
type Cancel struct {
	// ID is the request to stop.
	ID string `msgpack:"id"`
}

// Type implements Message.
func (*Cancel) Type() Type { return TypeCancel }

// Validate implements Validator.
func (m *Cancel) Validate() error { return checkID("cancel", m.ID) }

// Progress reports prefill progress; the host sends it every few seconds
// while nothing else is produced, which also keeps the connection alive.
type Progress struct {
	// ID is the request.
	ID string `msgpack:"id"`
	// Done and Total count prompt tokens processed and to process.
	Done  uint32 `msgpack:"done"`
	Total uint32 `msgpack:"total"`
}

// Type implements Message.
func (*Progress) Type() Type { return TypeProgress }

// Validate implements Validator.
func (m *Progress) Validate() error {
	if m.Done > m.Total {
		return invalid("progress", "done", "%d > total %d", m.Done, m.Total)
	}
	return checkID("progress", m.ID)
}

// Alt is one alternative token of a Token event.
type Alt struct {
	// ID is the alternative token id.
	ID int32 `msgpack:"id"`
	// LogProb is its model log-probability.
	LogProb float32 `msgpack:"logprob"`
	// Text is the token's text; it may be a partial UTF-8 sequence, so it
	// travels as bytes.
	Text []byte `msgpack:"text,omitempty"`
}

// Token is one generated token of a hosted-mode request.
type Token struct {
	// ID is the request.
	ID string `msgpack:"id"`
	// Index counts the request's generated tokens from 0.
	Index uint32 `msgpack:"index"`
	// TokenID is the sampled token id.
	TokenID int32 `msgpack:"token"`
	// Text is the new output text: always whole UTF-8 characters (bytes of
	// a character split across tokens are held back until complete), so it
	// may be empty.
	Text string `msgpack:"text"`
	// Reasoning marks text inside the model's thinking section.
	Reasoning bool `msgpack:"reasoning,omitempty"`
	// LogProb is the model log-probability of TokenID (with logprobs).
	LogProb *float32 `msgpack:"logprob,omitempty"`
	// Top lists the alternatives (with top_logprobs), most likely first.
	Top []Alt `msgpack:"top,omitempty"`
}

// Type implements Message.
func (*Token) Type() Type { return TypeToken }

// Validate implements Validator.
func (m *Token) Validate() error {
	switch {
	case m.TokenID < 0 || m.TokenID >= MaxVocab:
		return invalid("token", "token", "id %d out of range", m.TokenID)
	case !utf8.ValidString(m.Text):
		return invalid("token", "text", "is not whole UTF-8")
	case len(m.Top) > MaxTopLogProbs:
		return fmt.Errorf("token.top: %d > %d: %w", len(m.Top), MaxTopLogProbs, ErrOversize)
	}
	for i, a := range m.Top {
		if a.ID < 0 || a.ID >= MaxVocab || len(a.Text) > 1024 {
			return invalid("token", "top", "[%d] out of range", i)
		}
	}
	return checkID("token", m.ID)
}

// Usage counts a request's tokens.
type Usage struct {
	// PromptTokens counts the prompt.
	PromptTokens uint32 `msgpack:"prompt_tokens"`
	// CompletionTokens counts the generated tokens.
	CompletionTokens uint32 `msgpack:"completion_tokens"`
	// CachedTokens is the prompt prefix reused from the cache.
	CachedTokens uint32 `msgpack:"cached_tokens,omitempty"`
}

// Timing reports a request's time in microseconds.
type Timing struct {
	// QueueUS is the time before the request was scheduled.
	QueueUS uint64 `msgpack:"queue_us"`
	// PrefillUS is the prompt processing time.
	PrefillUS uint64 `msgpack:"prefill_us"`
	// DecodeUS is the generation time.
	DecodeUS uint64 `msgpack:"decode_us"`
}

// Finish reasons of Done.
const (
	FinishStop   = "stop"   // a stop token or stop string
	FinishLength = "length" // max_tokens or the context limit
	FinishCancel = "cancel" // a Cancel frame or a disconnect
	FinishError  = "error"  // an Error frame with the same ID preceded it
)

// Done is the final event of a hosted-mode request.
type Done struct {
	// ID is the request.
	ID string `msgpack:"id"`
	// Finish is one of the Finish* reasons.
	Finish string `msgpack:"finish"`
	// Text is any output held back until the end (an incomplete UTF-8
	// tail is replaced by U+FFFD only here).
	Text string `msgpack:"text,omitempty"`
	// Usage counts the request's tokens.
	Usage Usage `msgpack:"usage"`
	// Timing reports the request's time.
	Timing Timing `msgpack:"timing"`
}

// Type implements Message.
func (*Done) Type() Type { return TypeDone }

// Validate implements Validator.
func (m *Done) Validate() error {
	switch m.Finish {
	case FinishStop, FinishLength, FinishCancel, FinishError:
	default:
		return invalid("done", "finish", "%q unknown", truncate(m.Finish, 32))
	}
	if !utf8.ValidString(m.Text) {
		return invalid("done", "text", "is not valid UTF-8")
	}
	return checkID("done", m.ID)
}

// Error codes.
const (
	CodeVersion  = "version"   // no common protocol version
	CodeBadFrame = "bad_frame" // the frame failed Decode
	CodeInvalid  = "invalid"   // a field has an invalid value
	CodeTooLong  = "too_long"  // the prompt exceeds the context limit
	CodeBusy     = "busy"      // the host refuses more work now
	CodeInternal = "internal"  // a host or edge failure
)

// Error reports a failure. It may refer to a request (ID) or a step (Seq);
// Fatal means the sender closes the connection after it.
type Error struct {
	// ID is the hosted-mode request concerned, if any.
	ID string `msgpack:"id,omitempty"`
	// Seq is the split-mode step concerned, if any.
	Seq uint64 `msgpack:"seq,omitempty"`
	// Code is one of the Code* values.
	Code string `msgpack:"code"`
	// Message explains the error to a human.
	Message string `msgpack:"message"`
	// Fatal means the sender closes the connection next.
	Fatal bool `msgpack:"fatal,omitempty"`
}

// Type implements Message.
func (*Error) Type() Type { return TypeError }

// Validate implements Validator.
func (m *Error) Validate() error {
	switch {
	case m.Code == "" || len(m.Code) > 64:
		return invalid("error", "code", "must be 1..64 bytes")
	case len(m.Message) > 4096:
		return fmt.Errorf("error.message: %w", ErrOversize)
	case len(m.ID) > 128:
		return invalid("error", "id", "longer than 128 bytes")
	}
	return nil
}

// Error implements the error interface, so an Error frame can be returned
// as an error value.
func (m *Error) Error() string { return m.Code + ": " + m.Message }

func checkID(msg, id string) error {
	if id == "" || len(id) > 128 {
		return invalid(msg, "id", "must be 1..128 bytes")
	}
	return nil
}

func checkIDs(field string, ids []int32) error {
	for i, id := range ids {
		if id < 0 || id >= MaxVocab {
			return fmt.Errorf("%s[%d] = %d out of [0, %d): %w", field, i, id, MaxVocab, ErrInvalid)
		}
	}
	return nil
}
