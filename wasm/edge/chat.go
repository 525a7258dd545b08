package edge

import (
	"fmt"

	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/chat"
)

// ChatEncode renders a conversation into the DeepSeek-V4 prompt text (BOS
// string included) and, on request, its token ids.
func (e *Edge) ChatEncode(r *protocol.ChatRequest) (*protocol.ChatReply, error) {
	s, err := get[*session](e, r.Handle, "session")
	if err != nil {
		return nil, err
	}
	msgs := make([]chat.Message, len(r.Messages))
	for i, m := range r.Messages {
		msgs[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.Reasoning}
	}
	text, err := chat.Encode(msgs, chat.Options{
		Thinking:        r.Options.Thinking,
		ReasoningEffort: r.Options.Effort,
		KeepThinking:    r.Options.KeepThinking,
	})
	if err != nil {
		return nil, fmt.Errorf("edge: chat_encode: %w", err)
	}
	rep := &protocol.ChatReply{Text: text}
	if r.Tokenize {
		ids, err := s.tok.Encode(text)
		if err != nil {
			return nil, fmt.Errorf("edge: chat_encode: tokenize: %w", err)
		}
		rep.IDs = toInt32(ids)
	}
	return rep, nil
}
