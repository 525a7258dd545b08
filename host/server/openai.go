package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
)

type completionRequest struct {
	samplingFields
	Prompt   json.RawMessage `json:"prompt"`
	Logprobs *int            `json:"logprobs"`
	Echo     bool            `json:"echo"`
	Suffix   *string         `json:"suffix"`
}

// completionPrompt accepts a string, a token array, or a one-element
// array of either.
func (s *Server) completionPrompt(raw json.RawMessage) ([]int, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, badRequest("prompt", "prompt is required")
	}
	var text string
	if err := json.Unmarshal(raw, &text); err == nil {
		return s.encode(text)
	}
	var ids []int
	if err := json.Unmarshal(raw, &ids); err == nil {
		return ids, nil
	}
	var texts []string
	if err := json.Unmarshal(raw, &texts); err == nil {
		if len(texts) != 1 {
			return nil, badRequest("prompt", "prompt arrays must hold exactly one prompt, got %d", len(texts))
		}
		return s.encode(texts[0])
	}
	var idss [][]int
	if err := json.Unmarshal(raw, &idss); err == nil {
		if len(idss) != 1 {
			return nil, badRequest("prompt", "prompt arrays must hold exactly one prompt, got %d", len(idss))
		}
		return idss[0], nil
	}
	return nil, badRequest("prompt", "prompt must be a string, an array of token ids, or a one-element array of either")
}

func (s *Server) encode(text string) ([]int, *apiError) {
	t0 := time.Now()
	ids, err := s.eng.Edge().Encode(text)
	s.eng.ObserveEdgeCall(time.Since(t0))
	if err != nil {
		return nil, badRequest("prompt", "tokenizing the prompt: %v", err)
	}
	return ids, nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var body completionRequest
	if e := s.decodeBody(w, r, &body); e != nil {
		writeAPIError(w, e)
		return
	}
	if body.Echo {
		writeAPIError(w, badRequest("echo", "echo is not supported"))
		return
	}
	if body.Suffix != nil && *body.Suffix != "" {
		writeAPIError(w, badRequest("suffix", "suffix is not supported"))
		return
	}
	prompt, e := s.completionPrompt(body.Prompt)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	top := 0
	if body.Logprobs != nil {
		top = *body.Logprobs
		if top < 0 || top > 20 {
			writeAPIError(w, badRequest("logprobs", "logprobs %d must be in [0, 20]", top))
			return
		}
	}
	if body.MaxTokens == nil && body.MaxCompletionTokens == nil {
		sixteen := 16 // the OpenAI completions default
		body.MaxTokens = &sixteen
	}
	req, e := body.request(s, prompt, body.Logprobs != nil, top)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	id := "cmpl-" + requestID(r)
	created := time.Now().Unix()
	edge := s.eng.Edge()
	type lp struct {
		Tokens        []string             `json:"tokens"`
		TokenLogprobs []float32            `json:"token_logprobs"`
		TopLogprobs   []map[string]float32 `json:"top_logprobs"`
		TextOffset    []int                `json:"text_offset"`
	}
	var logprobs *lp
	var text strings.Builder
	addLP := func(l *lp, ch engine.Choice, offset int) {
		l.Tokens = append(l.Tokens, edge.TokenText(ch.ID))
		l.TokenLogprobs = append(l.TokenLogprobs, ch.LogProb)
		tops := map[string]float32{}
		for _, a := range ch.Top {
			if _, dup := tops[edge.TokenText(a.ID)]; !dup {
				tops[edge.TokenText(a.ID)] = a.LogProb
			}
		}
		l.TopLogprobs = append(l.TopLogprobs, tops)
		l.TextOffset = append(l.TextOffset, offset)
	}
	if !body.Stream {
		if req.Sampling.LogProbs {
			logprobs = &lp{}
		}
		res, _, err := s.pump(r, req, eventSink{token: func(ev engine.Event) error {
			if ev.Kind == engine.EventToken && logprobs != nil {
				addLP(logprobs, ev.Token, text.Len())
			}
			text.WriteString(ev.Text)
			return nil
		}}, nil)
		if err != nil {
			writeAPIError(w, classify(err))
			return
		}
		if failed(res) {
			writeAPIError(w, resultError(res))
			return
		}
		choice := map[string]any{"index": 0, "text": text.String(), "finish_reason": res.Finish, "logprobs": nil}
		if logprobs != nil {
			choice["logprobs"] = logprobs
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "text_completion", "created": created,
			"model": s.cfg.ModelName, "choices": []any{choice}, "usage": usageJSON(res.Usage), "timings": timingsJSON(res.Timings)})
		return
	}
	var out *sse
	chunk := func(text string, l *lp, finish any) map[string]any {
		c := map[string]any{"index": 0, "text": text, "finish_reason": finish, "logprobs": nil}
		if l != nil {
			c["logprobs"] = l
		}
		return map[string]any{"id": id, "object": "text_completion", "created": created, "model": s.cfg.ModelName, "choices": []any{c}}
	}
	offset := 0
	res, _, err := s.pump(r, req, eventSink{
		token: func(ev engine.Event) error {
			var l *lp
			if ev.Kind == engine.EventToken && req.Sampling.LogProbs {
				l = &lp{}
				addLP(l, ev.Token, offset)
			}
			offset += len(ev.Text)
			if ev.Kind == engine.EventDone {
				if failed(ev.Result) {
					return nil
				}
				c := chunk(ev.Text, nil, ev.Result.Finish)
				c["timings"] = timingsJSON(ev.Result.Timings)
				if body.StreamOptions != nil && body.StreamOptions.IncludeUsage {
					c["usage"] = usageJSON(ev.Result.Usage)
				}
				return out.data("", c)
			}
			return out.data("", chunk(ev.Text, l, nil))
		},
		idle: func(done, total int) error { return out.comment(progressComment(done, total)) },
	}, func(*engine.Stream) error { out = newSSE(w); return nil })
	s.endStream(w, out, res, err)
}

// endStream finishes an OpenAI SSE stream: an error event when the request
// failed, then [DONE].
func (s *Server) endStream(w http.ResponseWriter, out *sse, res *engine.Result, err error) {
	if out == nil { // refused before the stream started
		writeAPIError(w, classify(err))
		return
	}
	if err != nil {
		return // the client went away
	}
	if failed(res) {
		if res.Finish == engine.FinishCancelled {
			return
		}
		out.data("", openAIErrorBody(resultError(res)))
	}
	out.raw("data: [DONE]\n\n")
}

func progressComment(done, total int) string {
	if done > 0 && done < total {
		return "keep-alive prefill " + itoa(done) + "/" + itoa(total)
	}
	return "keep-alive"
}

func itoa(n int) string { return strconv.Itoa(n) }

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type chatRequest struct {
	samplingFields
	Messages    []chatMessage `json:"messages"`
	Logprobs    bool          `json:"logprobs"`
	TopLogprobs *int          `json:"top_logprobs"`
	Thinking    *bool         `json:"thinking"`
}

// messageText flattens a content that is a string or an array of text
// parts.
func messageText(raw json.RawMessage, field string) (string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(raw, &parts); err != nil {
		return "", badRequest(field, "%s must be a string or an array of text parts", field)
	}
	var b strings.Builder
	for i, p := range parts {
		if p.Type != "text" {
			return "", badRequest(field, "%s[%d]: content type %q is not supported (text only)", field, i, p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

func (s *Server) encodeChat(msgs []engine.Message, opt engine.ChatOptions) ([]int, *apiError) {
	t0 := time.Now()
	ids, err := s.eng.Edge().EncodeChat(msgs, opt)
	s.eng.ObserveEdgeCall(time.Since(t0))
	if err != nil {
		return nil, badRequest("messages", "encoding the conversation: %v", err)
	}
	return ids, nil
}

type chatLogprob struct {
	Token       string        `json:"token"`
	Logprob     float32       `json:"logprob"`
	Bytes       []int         `json:"bytes"`
	TopLogprobs []chatLogprob `json:"top_logprobs"`
}

func tokenBytes(s string) []int {
	out := make([]int, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = int(s[i])
	}
	return out
}

func (s *Server) chatLogprob(ch engine.Choice) chatLogprob {
	edge := s.eng.Edge()
	t := edge.TokenText(ch.ID)
	out := chatLogprob{Token: t, Logprob: ch.LogProb, Bytes: tokenBytes(t), TopLogprobs: []chatLogprob{}}
	for _, a := range ch.Top {
		at := edge.TokenText(a.ID)
		out.TopLogprobs = append(out.TopLogprobs, chatLogprob{Token: at, Logprob: a.LogProb, Bytes: tokenBytes(at)})
	}
	return out
}

func (s *Server) chatCompletions(w http.ResponseWriter, r *http.Request) {
	var body chatRequest
	if e := s.decodeBody(w, r, &body); e != nil {
		writeAPIError(w, e)
		return
	}
	if len(body.Messages) == 0 {
		writeAPIError(w, badRequest("messages", "messages must hold at least one message"))
		return
	}
	msgs := make([]engine.Message, 0, len(body.Messages))
	for i, m := range body.Messages {
		text, e := messageText(m.Content, "messages["+itoa(i)+"].content")
		if e != nil {
			writeAPIError(w, e)
			return
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		switch role {
		case "system", "user", "assistant", "tool":
		default:
			writeAPIError(w, badRequest("messages", "messages[%d].role %q must be system, developer, user, assistant or tool", i, m.Role))
			return
		}
		msgs = append(msgs, engine.Message{Role: role, Content: text})
	}
	top := 0
	if body.TopLogprobs != nil {
		top = *body.TopLogprobs
		if top < 0 || top > 20 {
			writeAPIError(w, badRequest("top_logprobs", "top_logprobs %d must be in [0, 20]", top))
			return
		}
		if top > 0 && !body.Logprobs {
			writeAPIError(w, badRequest("top_logprobs", "top_logprobs needs logprobs: true"))
			return
		}
	}
	prompt, e := s.encodeChat(msgs, engine.ChatOptions{Thinking: body.Thinking != nil && *body.Thinking})
	if e != nil {
		writeAPIError(w, e)
		return
	}
	req, e := body.request(s, prompt, body.Logprobs, top)
	if e != nil {
		writeAPIError(w, e)
		return
	}
	id := "chatcmpl-" + requestID(r)
	created := time.Now().Unix()
	if !body.Stream {
		var text strings.Builder
		var lps []chatLogprob
		res, _, err := s.pump(r, req, eventSink{token: func(ev engine.Event) error {
			if ev.Kind == engine.EventToken && body.Logprobs {
				lps = append(lps, s.chatLogprob(ev.Token))
			}
			text.WriteString(ev.Text)
			return nil
		}}, nil)
		if err != nil {
			writeAPIError(w, classify(err))
			return
		}
		if failed(res) {
			writeAPIError(w, resultError(res))
			return
		}
		choice := map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text.String()},
			"finish_reason": res.Finish, "logprobs": nil}
		if body.Logprobs {
			if lps == nil {
				lps = []chatLogprob{}
			}
			choice["logprobs"] = map[string]any{"content": lps}
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "chat.completion", "created": created,
			"model": s.cfg.ModelName, "choices": []any{choice}, "usage": usageJSON(res.Usage), "timings": timingsJSON(res.Timings)})
		return
	}
	var out *sse
	chunk := func(delta map[string]any, lp []chatLogprob, finish any) map[string]any {
		c := map[string]any{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": nil}
		if lp != nil {
			c["logprobs"] = map[string]any{"content": lp}
		}
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": s.cfg.ModelName, "choices": []any{c}}
	}
	includeUsage := body.StreamOptions != nil && body.StreamOptions.IncludeUsage
	res, _, err := s.pump(r, req, eventSink{
		token: func(ev engine.Event) error {
			if ev.Kind == engine.EventDone {
				if failed(ev.Result) {
					return nil
				}
				if ev.Text != "" {
					if err := out.data("", chunk(map[string]any{"content": ev.Text}, nil, nil)); err != nil {
						return err
					}
				}
				c := chunk(map[string]any{}, nil, ev.Result.Finish)
				c["timings"] = timingsJSON(ev.Result.Timings)
				if err := out.data("", c); err != nil {
					return err
				}
				if includeUsage {
					return out.data("", map[string]any{"id": id, "object": "chat.completion.chunk", "created": created,
						"model": s.cfg.ModelName, "choices": []any{}, "usage": usageJSON(ev.Result.Usage)})
				}
				return nil
			}
			var lp []chatLogprob
			if body.Logprobs {
				lp = []chatLogprob{s.chatLogprob(ev.Token)}
			}
			return out.data("", chunk(map[string]any{"content": ev.Text}, lp, nil))
		},
		idle: func(done, total int) error { return out.comment(progressComment(done, total)) },
	}, func(*engine.Stream) error {
		out = newSSE(w)
		return out.data("", chunk(map[string]any{"role": "assistant", "content": ""}, nil, nil))
	})
	s.endStream(w, out, res, err)
}
