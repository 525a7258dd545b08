package protocol

import (
	"errors"
	"fmt"
)

// Messages of the edge module's ABI (see wasm/ABI.md). They never cross the
// websocket, but both the edge (wasm/edge) and the host that runs it
// (host/edgehost) need them, and host/ may not import wasm/, so they live
// here. Each request is the msgpack body passed to one export; each
// response is a status byte (ABIStatusOK or ABIStatusError) followed by
// the msgpack of the function's response or of an Error.

// ABIVersion is the version of the edge module ABI returned by the
// edge_abi_version export.
const ABIVersion uint32 = 1

// ABI response status bytes.
const (
	// ABIStatusOK prefixes a successful response.
	ABIStatusOK byte = 0
	// ABIStatusError prefixes an Error.
	ABIStatusError byte = 1
)

// ABI function export names. A module exports only those it implements.
const (
	FnSessionNew  = "edge_session_new"
	FnTokenize    = "edge_tokenize"
	FnDetokenize  = "edge_detokenize"
	FnStreamNew   = "edge_stream_new"
	FnStreamPush  = "edge_stream_push"
	FnStreamFlush = "edge_stream_flush"
	FnChatEncode  = "edge_chat_encode"
	FnSamplerNew  = "edge_sampler_new"
	FnSample      = "edge_sample"
	FnEngramNew   = "edge_engram_new"
	FnEngram      = "edge_engram"
	FnRelease     = "edge_release"
	// FnTokenizerImage returns a session's tokenizer as a TokenizerImage.
	FnTokenizerImage = "edge_tokenizer_image"
	// FnTokenizerAttach gives a tokenizer module (one that exports
	// edge_tokenize but not edge_session_new) the image of a session that
	// another module of its chain opened.
	FnTokenizerAttach = "edge_tokenizer_attach"
)

// Functions lists every ABI function export name.
var Functions = []string{
	FnSessionNew, FnTokenize, FnDetokenize, FnStreamNew, FnStreamPush,
	FnStreamFlush, FnChatEncode, FnSamplerNew, FnSample, FnEngramNew,
	FnEngram, FnRelease, FnTokenizerImage, FnTokenizerAttach,
}

// Handle names an object inside one module instance (a session, stream,
// sampler or Engram addresser). 0 is never a valid handle.
type Handle uint32

func checkHandle(msg string, h Handle) error {
	if h == 0 {
		return invalid(msg, "handle", "is 0")
	}
	return nil
}

// SessionNew creates a session from a tokenizer.json.
type SessionNew struct {
	// Tokenizer is the content of a Hugging Face tokenizer.json.
	Tokenizer []byte `msgpack:"tokenizer"`
	// Engram configures V4.1 Engram addressing; nil for models without it.
	Engram *EngramConfig `msgpack:"engram,omitempty"`
}

// Validate implements Validator.
func (m *SessionNew) Validate() error {
	if len(m.Tokenizer) == 0 {
		return invalid("session_new", "tokenizer", "is empty")
	}
	return nil
}

// SessionInfo answers SessionNew.
type SessionInfo struct {
	// Handle is the new session.
	Handle Handle `msgpack:"handle"`
	// Vocab is the tokenizer's vocabulary size.
	Vocab uint32 `msgpack:"vocab"`
}

// Validate implements Validator.
func (m *SessionInfo) Validate() error { return checkHandle("session_info", m.Handle) }

// EngramConfig configures V4.1 Engram addressing; the fields are the
// engram_* entries of the model's config.json (see wasm/engram.Config).
type EngramConfig struct {
	// LayerIDs are engram_layer_ids.
	LayerIDs []int32 `msgpack:"layer_ids"`
	// MaxNgram is engram_max_ngram_size.
	MaxNgram int32 `msgpack:"max_ngram"`
	// Heads is engram_n_heads.
	Heads int32 `msgpack:"heads"`
	// VocabSize is engram_vocab_size.
	VocabSize int64 `msgpack:"vocab_size"`
	// CompressedVocab is engram_compressed_vocab_size.
	CompressedVocab int64 `msgpack:"compressed_vocab"`
	// PadID is engram_pad_id.
	PadID int32 `msgpack:"pad_id"`
}

// TextRequest asks a session to tokenize text.
type TextRequest struct {
	// Handle is the session.
	Handle Handle `msgpack:"handle"`
	// Text is the text to tokenize.
	Text string `msgpack:"text"`
}

// Validate implements Validator.
func (m *TextRequest) Validate() error { return checkHandle("text_request", m.Handle) }

// IDsRequest passes token ids to a session or stream (detokenize,
// stream_push, engram).
type IDsRequest struct {
	// Handle is the session, stream or Engram sequence.
	Handle Handle `msgpack:"handle"`
	// IDs are token ids.
	IDs []int32 `msgpack:"ids"`
	// SkipSpecial drops special tokens when detokenizing.
	SkipSpecial bool `msgpack:"skip_special,omitempty"`
}

// Validate implements Validator.
func (m *IDsRequest) Validate() error {
	if err := checkHandle("ids_request", m.Handle); err != nil {
		return err
	}
	return checkIDs("ids_request.ids", m.IDs)
}

// HandleRequest names one object (stream_new takes a session, stream_flush
// a stream, release anything).
type HandleRequest struct {
	// Handle is the object.
	Handle Handle `msgpack:"handle"`
}

// Validate implements Validator.
func (m *HandleRequest) Validate() error { return checkHandle("handle_request", m.Handle) }

// HandleReply answers requests that create an object.
type HandleReply struct {
	// Handle is the new object.
	Handle Handle `msgpack:"handle"`
}

// Validate implements Validator.
func (m *HandleReply) Validate() error { return checkHandle("handle_reply", m.Handle) }

// TokenizerImage answers edge_tokenizer_image: the session's tokenizer in
// the binary form wasm/tokenizer.(*Tokenizer).AppendImage writes
// (wasm/tokenizer/IMAGE.md), which a module without a JSON parser loads.
type TokenizerImage struct {
	// Image is the tokenizer image.
	Image []byte `msgpack:"image"`
}

// Validate implements Validator.
func (m *TokenizerImage) Validate() error {
	if len(m.Image) == 0 {
		return invalid("tokenizer_image", "image", "is empty")
	}
	return nil
}

// TokenizerAttach asks a tokenizer module to tokenize for a session of
// another module of the same chain: Handle is that session's handle, Image
// its TokenizerImage. edge_tokenize requests naming Handle then go to the
// tokenizer module, which must answer them exactly as the session's module
// would.
type TokenizerAttach struct {
	// Handle is the session's handle in the module that opened it.
	Handle Handle `msgpack:"handle"`
	// Image is the session's tokenizer image.
	Image []byte `msgpack:"image"`
}

// Validate implements Validator.
func (m *TokenizerAttach) Validate() error {
	if len(m.Image) == 0 {
		return invalid("tokenizer_attach", "image", "is empty")
	}
	return checkHandle("tokenizer_attach", m.Handle)
}

// IDsReply answers tokenize and engram.
type IDsReply struct {
	// IDs are token ids.
	IDs []int32 `msgpack:"ids"`
}

// AddrReply answers engram: per token, the Engram row ids, token-major
// (per token: layers in order, then n-gram order, then head), ready for
// Step.Engram.
type AddrReply struct {
	// Rows are the row ids.
	Rows []int64 `msgpack:"rows"`
	// PerToken is the number of rows per token.
	PerToken uint32 `msgpack:"per_token"`
}

// TextReply answers detokenize, stream_push, stream_flush and chat_encode.
// For the stream functions Text is always whole UTF-8 except for the final
// flush.
type TextReply struct {
	// Text is the decoded text.
	Text string `msgpack:"text"`
}

// ChatRequest asks a session to render a conversation into prompt text.
type ChatRequest struct {
	// Handle is the session.
	Handle Handle `msgpack:"handle"`
	// Messages is the conversation.
	Messages []ChatMessage `msgpack:"messages"`
	// Options selects thinking mode and effort.
	Options ChatOptions `msgpack:"options"`
	// Tokenize also returns the prompt's token ids.
	Tokenize bool `msgpack:"tokenize,omitempty"`
}

// Validate implements Validator.
func (m *ChatRequest) Validate() error {
	if len(m.Messages) > MaxMessages {
		return fmt.Errorf("chat_request.messages: %w", ErrOversize)
	}
	if err := m.Options.Validate(); err != nil {
		return err
	}
	return checkHandle("chat_request", m.Handle)
}

// ChatReply answers chat_encode.
type ChatReply struct {
	// Text is the prompt, BOS string included.
	Text string `msgpack:"text"`
	// IDs are its token ids, when asked for.
	IDs []int32 `msgpack:"ids,omitempty"`
}

// SamplerNew creates a sampler (one per request; it owns the generator
// seeded by Params.Seed).
type SamplerNew struct {
	// Params are the sampling settings, seed included.
	Params SamplingParams `msgpack:"params"`
}

// Validate implements Validator.
func (m *SamplerNew) Validate() error { return m.Params.Validate() }

// SampleRequest asks a sampler for one token. Exactly one of F32 (little-
// endian float32) and F16 (little-endian float16) holds the logits.
type SampleRequest struct {
	// Handle is the sampler.
	Handle Handle `msgpack:"handle"`
	// F32 holds little-endian float32 logits.
	F32 []byte `msgpack:"f32,omitempty"`
	// F16 holds little-endian float16 logits.
	F16 []byte `msgpack:"f16,omitempty"`
	// History is the sequence so far, for penalties.
	History []int32 `msgpack:"history,omitempty"`
}

// Validate implements Validator.
func (m *SampleRequest) Validate() error {
	switch {
	case (len(m.F32) == 0) == (len(m.F16) == 0):
		return invalid("sample", "logits", "exactly one of f32 and f16 must be set")
	case len(m.F32)%4 != 0 || len(m.F16)%2 != 0:
		return invalid("sample", "logits", "length is not a whole number of floats")
	case len(m.F32) > 4*MaxVocab || len(m.F16) > 2*MaxVocab:
		return fmt.Errorf("sample.logits: %w", ErrOversize)
	}
	if err := checkHandle("sample", m.Handle); err != nil {
		return err
	}
	return checkIDs("sample.history", m.History)
}

// SampleReply answers sample.
type SampleReply struct {
	// ID is the sampled token id.
	ID int32 `msgpack:"id"`
	// LogProb is the model log-probability of ID (with logprobs).
	LogProb float32 `msgpack:"logprob,omitempty"`
	// Top lists alternatives (with top_logprobs); Text is unset here.
	Top []Alt `msgpack:"top,omitempty"`
	// Finish is "", "stop" or "length".
	Finish string `msgpack:"finish,omitempty"`
}

// Validate implements Validator.
func (m *SampleReply) Validate() error {
	if m.ID < 0 || m.ID >= MaxVocab {
		return invalid("sample_reply", "id", "%d out of range", m.ID)
	}
	switch m.Finish {
	case "", FinishStop, FinishLength:
	default:
		return invalid("sample_reply", "finish", "%q unknown", truncate(m.Finish, 32))
	}
	return nil
}

// Empty is the response of functions that return nothing (release).
type Empty struct{}

// CodeUnsupported is the error code of an ABI function a module does not
// implement in full (for example chat encoding without templates).
const CodeUnsupported = "unsupported"

// ABIErrorResponse returns an ABI error response: ABIStatusError followed
// by the msgpack of Error{Code: code, Message: msg} (msg cut to 4096 bytes).
func ABIErrorResponse(code, msg string) []byte {
	if len(msg) > 4096 {
		msg = msg[:4096]
	}
	if code == "" || len(code) > 64 {
		code = CodeInternal
	}
	b, err := Marshal(&Error{Code: code, Message: msg})
	if err != nil {
		b = []byte{0x82, 0xa4, 'c', 'o', 'd', 'e', 0xa8, 'i', 'n', 't', 'e', 'r', 'n', 'a', 'l', 0xa7, 'm', 'e', 's', 's', 'a', 'g', 'e', 0xa0}
	}
	return append([]byte{ABIStatusError}, b...)
}

// ABIOKResponse returns an ABI success response: ABIStatusOK followed by
// the msgpack of rep.
func ABIOKResponse(rep any) ([]byte, error) {
	if r, ok := rep.(*IDsReply); ok {
		// Without the copy below: token id lists are the longest replies.
		b := appendIDsReply(append(make([]byte, 0, 1+idsReplyBound(len(r.IDs))), ABIStatusOK), r)
		if len(b)-1 > MaxFrameSize {
			return nil, fmt.Errorf("protocol: %T encodes to %d bytes, over the %d-byte limit: %w", r, len(b)-1, MaxFrameSize, ErrOversize)
		}
		return b, nil
	}
	b, err := Marshal(rep)
	if err != nil {
		return nil, err
	}
	return append([]byte{ABIStatusOK}, b...), nil
}

// ParseABIResponse splits an ABI response and decodes a successful reply
// into rep (strictly, as Unmarshal). An error response is returned as a
// *Error, so callers can match its Code.
func ParseABIResponse(resp []byte, rep any) error {
	if len(resp) == 0 {
		return errors.New("protocol: empty ABI response")
	}
	switch resp[0] {
	case ABIStatusOK:
		return Unmarshal(resp[1:], rep)
	case ABIStatusError:
		var e Error
		if err := Unmarshal(resp[1:], &e); err != nil {
			return fmt.Errorf("protocol: undecodable ABI error response: %w", err)
		}
		return &e
	}
	return fmt.Errorf("protocol: ABI response status byte 0x%02x unknown", resp[0])
}
