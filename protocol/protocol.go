// Package protocol defines the versioned msgpack messages exchanged between
// the edge (the WebAssembly module, in a browser or inside the host) and the
// host, over a websocket, and across the edge module's ABI.
//
// Every websocket frame is one Envelope: a msgpack map {v, t, b} holding the
// protocol version, the message type and the message body. Encode and Decode
// convert between Messages and frames; Decode validates strictly and returns
// an error value (never panics) for unknown types, wrong versions, oversize
// frames, unknown fields and out-of-range values. See README.md.
package protocol

import (
	"errors"
	"fmt"
	"math"

	"github.com/vmihailenco/msgpack/v5"
)

// Version is the newest protocol version this package speaks.
const Version uint16 = 1

// MinVersion is the oldest protocol version this package speaks.
const MinVersion uint16 = 1

// MaxFrameSize is the largest frame Encode produces and Decode accepts. It
// leaves room for a tokenizer.json sent to the edge module (tens of MiB at
// most) and for a full float16 logit vector (about 256 KiB for V4).
const MaxFrameSize = 64 << 20

// Limits on variable-length fields, checked by Validate.
const (
	// MaxVocab bounds token ids and full logit vectors.
	MaxVocab = 1 << 20
	// MaxStepTokens bounds the tokens of one split-mode step (a prefill chunk).
	MaxStepTokens = 1 << 16
	// MaxTopN bounds the top-N logits a split-mode client may ask for.
	MaxTopN = 1024
	// MaxTopLogProbs bounds the alternatives per hosted-mode token.
	MaxTopLogProbs = 20
	// MaxStops bounds the stop strings of a request.
	MaxStops = 16
	// MaxMessages bounds the chat messages of a request.
	MaxMessages = 4096
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrOversize reports a frame or field over its limit.
	ErrOversize = errors.New("oversize")
	// ErrVersion reports a frame whose version is not the negotiated one, or
	// a handshake with no version in common.
	ErrVersion = errors.New("unsupported protocol version")
	// ErrUnknownType reports a frame whose type this version does not define.
	ErrUnknownType = errors.New("unknown message type")
	// ErrInvalid reports a field with an invalid value.
	ErrInvalid = errors.New("invalid field")
)

// Type names a message type on the wire.
type Type string

// Message types.
const (
	TypeHello    Type = "hello"    // client → host, first frame
	TypeWelcome  Type = "welcome"  // host → client, answer to hello
	TypeStep     Type = "step"     // split: client → host, tokens in
	TypeLogits   Type = "logits"   // split: host → client, logits out
	TypeGenerate Type = "generate" // hosted: client → host, a request
	TypeCancel   Type = "cancel"   // hosted: client → host, stop a request
	TypeProgress Type = "progress" // hosted: host → client, prefill progress
	TypeToken    Type = "token"    // hosted: host → client, one token
	TypeDone     Type = "done"     // hosted: host → client, final event
	TypeError    Type = "error"    // either direction
)

// Mode selects what the websocket carries.
type Mode string

// Modes.
const (
	// ModeSplit: the edge runs in the browser and sends token ids; the host
	// answers each step with logits.
	ModeSplit Mode = "split"
	// ModeHosted: a thin client sends text; the host runs the edge and
	// streams token events.
	ModeHosted Mode = "hosted"
)

// Message is any frame body defined by this package.
type Message interface {
	Validator
	// Type returns the wire type of the message.
	Type() Type
}

// Envelope is the outer map of every websocket frame.
type Envelope struct {
	// V is the protocol version of the frame.
	V uint16 `msgpack:"v"`
	// T is the message type.
	T Type `msgpack:"t"`
	// B is the msgpack-encoded message body.
	B msgpack.RawMessage `msgpack:"b"`
}

// Validate checks the envelope's own fields.
func (e *Envelope) Validate() error {
	if e.T == "" {
		return fmt.Errorf("envelope: missing type: %w", ErrInvalid)
	}
	if len(e.B) == 0 {
		return fmt.Errorf("envelope: missing body: %w", ErrInvalid)
	}
	return nil
}

// newMessage returns a zero message of type t, or nil when t is unknown.
func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return &Hello{}
	case TypeWelcome:
		return &Welcome{}
	case TypeStep:
		return &Step{}
	case TypeLogits:
		return &Logits{}
	case TypeGenerate:
		return &Generate{}
	case TypeCancel:
		return &Cancel{}
	case TypeProgress:
		return &Progress{}
	case TypeToken:
		return &Token{}
	case TypeDone:
		return &Done{}
	case TypeError:
		return &Error{}
	}
	return nil
}

// Codec encodes and decodes frames at one negotiated protocol version.
// The zero value is not usable; use NewCodec.
type Codec struct {
	version uint16
}

// NewCodec returns a codec for version v, which must lie in
// [MinVersion, Version].
func NewCodec(v uint16) (*Codec, error) {
	if v < MinVersion || v > Version {
		return nil, fmt.Errorf("protocol: version %d not in [%d, %d]: %w", v, MinVersion, Version, ErrVersion)
	}
	return &Codec{version: v}, nil
}

// Version returns the codec's protocol version.
func (c *Codec) Version() uint16 { return c.version }

// Encode validates m and wraps it in an envelope at the codec's version.
func (c *Codec) Encode(m Message) ([]byte, error) {
	body, err := Marshal(m)
	if err != nil {
		return nil, err
	}
	return Marshal(&Envelope{V: c.version, T: m.Type(), B: body})
}

// Decode parses and validates one frame. Hello frames are accepted at any
// version so that a newer client can still negotiate; every other frame
// must carry the codec's version.
func (c *Codec) Decode(frame []byte) (Message, error) {
	var env Envelope
	if err := Unmarshal(frame, &env); err != nil {
		return nil, err
	}
	if env.V != c.version && !(env.T == TypeHello && env.V >= MinVersion) {
		return nil, fmt.Errorf("protocol: %q frame at version %d, negotiated %d: %w", env.T, env.V, c.version, ErrVersion)
	}
	m := newMessage(env.T)
	if m == nil {
		return nil, fmt.Errorf("protocol: %q: %w", truncate(string(env.T), 32), ErrUnknownType)
	}
	if err := Unmarshal(env.B, m); err != nil {
		return nil, fmt.Errorf("protocol: %s body: %w", env.T, err)
	}
	return m, nil
}

var current = &Codec{version: Version}

// Encode encodes m at the current Version.
func Encode(m Message) ([]byte, error) { return current.Encode(m) }

// Decode decodes a frame at the current Version.
func Decode(frame []byte) (Message, error) { return current.Decode(frame) }

// Negotiate picks the version for a connection from the client's Hello:
// the highest version both sides speak.
func Negotiate(h *Hello) (uint16, error) {
	v := min(h.MaxVersion, Version)
	if v < max(h.MinVersion, MinVersion) {
		return 0, fmt.Errorf("protocol: client speaks [%d, %d], host [%d, %d]: %w", h.MinVersion, h.MaxVersion, MinVersion, Version, ErrVersion)
	}
	return v, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func invalid(msg string, field string, format string, args ...any) error {
	return fmt.Errorf("%s.%s %s: %w", msg, field, fmt.Sprintf(format, args...), ErrInvalid)
}
