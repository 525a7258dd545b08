package edge

import (
	"errors"
	"fmt"

	"github.com/edgeseek/edgeseek/protocol"
)

// handler decodes a request, runs it and encodes the reply.
type handler func(e *Edge, req []byte) (any, error)

// typed adapts a method of Edge to a handler.
func typed[Req any, Rep any](f func(*Edge, *Req) (*Rep, error)) handler {
	return func(e *Edge, b []byte) (any, error) {
		req := new(Req)
		if err := protocol.Unmarshal(b, req); err != nil {
			return nil, err
		}
		return f(e, req)
	}
}

var handlers = map[string]handler{
	protocol.FnSessionNew:  typed((*Edge).SessionNew),
	protocol.FnTokenize:    typed((*Edge).Tokenize),
	protocol.FnDetokenize:  typed((*Edge).Detokenize),
	protocol.FnStreamNew:   typed((*Edge).StreamNew),
	protocol.FnStreamPush:  typed((*Edge).StreamPush),
	protocol.FnStreamFlush: typed((*Edge).StreamFlush),
	protocol.FnChatEncode:  typed((*Edge).ChatEncode),
	protocol.FnSamplerNew:  typed((*Edge).SamplerNew),
	protocol.FnSample:      sampleHandler,
	protocol.FnEngramNew:   typed((*Edge).EngramNew),
	protocol.FnEngram:      typed((*Edge).Engram),
	protocol.FnRelease:     typed((*Edge).Release),

	protocol.FnTokenizerImage: typed((*Edge).TokenizerImage),
}

// Call runs ABI function fn (a protocol.Fn* export name) on a msgpack
// request and returns the response: protocol.ABIStatusOK followed by the
// reply's msgpack, or protocol.ABIStatusError followed by a
// protocol.Error's msgpack. It never panics: a panic inside a function is
// recovered and reported as an "internal" error.
func (e *Edge) Call(fn string, req []byte) (resp []byte) {
	defer func() {
		if r := recover(); r != nil {
			resp = errorResponse(protocol.CodeInternal, fmt.Sprintf("edge: %s panicked: %v", fn, r))
		}
	}()
	h, ok := handlers[fn]
	if !ok {
		return errorResponse(protocol.CodeInvalid, "edge: unknown function "+fn)
	}
	rep, err := h(e, req)
	if err != nil {
		code := protocol.CodeInvalid
		if errors.Is(err, ErrUnsupported) {
			code = protocol.CodeUnsupported
		}
		return errorResponse(code, err.Error())
	}
	b, err := protocol.ABIOKResponse(rep)
	if err != nil {
		return errorResponse(protocol.CodeInternal, err.Error())
	}
	return b
}

// Functions lists the ABI functions Call implements, in the order of
// protocol.Functions (every one but edge_tokenizer_attach, which only a
// tokenizer chained in front of an edge implements).
func Functions() []string {
	var fns []string
	for _, fn := range protocol.Functions {
		if handlers[fn] != nil {
			fns = append(fns, fn)
		}
	}
	return fns
}

func errorResponse(code, msg string) []byte { return protocol.ABIErrorResponse(code, msg) }

// ParseResponse is protocol.ParseABIResponse.
func ParseResponse(resp []byte, rep any) error { return protocol.ParseABIResponse(resp, rep) }
