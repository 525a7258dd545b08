package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/edgeseek/edgeseek/host/engine"
)

type anthropicRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int            `json:"max_tokens"`
	Messages      []chatMessage   `json:"messages"`
	System        json.RawMessage `json:"system"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	TopK          *int            `json:"top_k"`
	Stream        bool            `json:"stream"`
	Thinking      *struct {
		Type string `json:"type"`
	} `json:"thinking"`
}

// anthropicError writes an error in the Anthropic shape.
func anthropicError(w http.ResponseWriter, e *apiError) {
	typ := e.typ
	switch e.status {
	case http.StatusNotFound:
		typ = "not_found_error"
	case http.StatusServiceUnavailable:
		typ = "overloaded_error"
	case http.StatusInternalServerError:
		typ = "api_error"
	case http.StatusRequestEntityTooLarge:
		typ = "request_too_large"
	}
	writeJSON(w, e.status, map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": e.msg}})
}

func stopReason(res *engine.Result) (string, any) {
	switch {
	case res.StopSequence != "":
		return "stop_sequence", res.StopSequence
	case res.Finish == engine.FinishLength:
		return "max_tokens", nil
	}
	return "end_turn", nil
}

func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	var body anthropicRequest
	if e := s.decodeBody(w, r, &body); e != nil {
		anthropicError(w, e)
		return
	}
	if body.MaxTokens == nil || *body.MaxTokens < 1 {
		anthropicError(w, badRequest("max_tokens", "max_tokens is required and must be at least 1"))
		return
	}
	if len(body.Messages) == 0 {
		anthropicError(w, badRequest("messages", "messages must hold at least one message"))
		return
	}
	if len(body.StopSequences) > maxStops {
		anthropicError(w, badRequest("stop_sequences", "at most %d stop sequences", maxStops))
		return
	}
	var msgs []engine.Message
	if sys, e := messageText(body.System, "system"); e != nil {
		anthropicError(w, e)
		return
	} else if sys != "" {
		msgs = append(msgs, engine.Message{Role: "system", Content: sys})
	}
	for i, m := range body.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			anthropicError(w, badRequest("messages", "messages[%d].role %q must be user or assistant", i, m.Role))
			return
		}
		text, e := messageText(m.Content, "messages["+itoa(i)+"].content")
		if e != nil {
			anthropicError(w, e)
			return
		}
		msgs = append(msgs, engine.Message{Role: m.Role, Content: text})
	}
	thinking := body.Thinking != nil && body.Thinking.Type == "enabled"
	prompt, e := s.encodeChat(msgs, engine.ChatOptions{Thinking: thinking})
	if e != nil {
		anthropicError(w, e)
		return
	}
	f := samplingFields{Model: body.Model, MaxTokens: body.MaxTokens, Temperature: body.Temperature, TopP: body.TopP, TopK: body.TopK}
	if body.Model != "" && body.Model != s.cfg.ModelName {
		f.Model = "" // Anthropic clients name their own models; serve ours
	}
	req, e := f.request(s, prompt, false, 0)
	if e != nil {
		anthropicError(w, e)
		return
	}
	req.Stop = body.StopSequences
	id := "msg_" + requestID(r)
	if !body.Stream {
		var text strings.Builder
		res, _, err := s.pump(r, req, eventSink{token: func(ev engine.Event) error {
			text.WriteString(ev.Text)
			return nil
		}}, nil)
		if err != nil {
			anthropicError(w, classify(err))
			return
		}
		if failed(res) {
			anthropicError(w, resultError(res))
			return
		}
		reason, seq := stopReason(res)
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "type": "message", "role": "assistant", "model": s.cfg.ModelName,
			"content":     []any{map[string]any{"type": "text", "text": text.String()}},
			"stop_reason": reason, "stop_sequence": seq,
			"usage": map[string]any{"input_tokens": res.Usage.PromptTokens, "output_tokens": res.Usage.CompletionTokens,
				"cache_read_input_tokens": res.Usage.CachedTokens}})
		return
	}
	var out *sse
	delta := func(text string) error {
		return out.data("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0,
			"delta": map[string]any{"type": "text_delta", "text": text}})
	}
	res, _, err := s.pump(r, req, eventSink{
		token: func(ev engine.Event) error {
			if ev.Text != "" {
				if err := delta(ev.Text); err != nil {
					return err
				}
			}
			if ev.Kind != engine.EventDone || failed(ev.Result) {
				return nil
			}
			if err := out.data("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}); err != nil {
				return err
			}
			reason, seq := stopReason(ev.Result)
			if err := out.data("message_delta", map[string]any{"type": "message_delta",
				"delta": map[string]any{"stop_reason": reason, "stop_sequence": seq},
				"usage": map[string]any{"output_tokens": ev.Result.Usage.CompletionTokens}}); err != nil {
				return err
			}
			return out.data("message_stop", map[string]any{"type": "message_stop"})
		},
		idle: func(done, total int) error { return out.data("ping", map[string]any{"type": "ping"}) },
	}, func(st *engine.Stream) error {
		out = newSSE(w)
		if err := out.data("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": id, "type": "message", "role": "assistant", "model": s.cfg.ModelName, "content": []any{},
			"stop_reason": nil, "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": st.PromptTokens, "output_tokens": 0}}}); err != nil {
			return err
		}
		return out.data("content_block_start", map[string]any{"type": "content_block_start", "index": 0,
			"content_block": map[string]any{"type": "text", "text": ""}})
	})
	if out == nil {
		anthropicError(w, classify(err))
		return
	}
	if err == nil && res.Finish == engine.FinishError {
		ae := resultError(res)
		out.data("error", map[string]any{"type": "error", "error": map[string]any{"type": "api_error", "message": ae.msg}})
	}
}
