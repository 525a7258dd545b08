package server

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
)

// samplingFields are the request fields shared by the OpenAI endpoints.
type samplingFields struct {
	Model               string             `json:"model"`
	MaxTokens           *int               `json:"max_tokens"`
	MaxCompletionTokens *int               `json:"max_completion_tokens"`
	Temperature         *float64           `json:"temperature"`
	TopP                *float64           `json:"top_p"`
	TopK                *int               `json:"top_k"`
	MinP                *float64           `json:"min_p"`
	Seed                *int64             `json:"seed"`
	Stop                json.RawMessage    `json:"stop"`
	Stream              bool               `json:"stream"`
	StreamOptions       *streamOptions     `json:"stream_options"`
	PresencePenalty     *float64           `json:"presence_penalty"`
	FrequencyPenalty    *float64           `json:"frequency_penalty"`
	RepetitionPenalty   *float64           `json:"repetition_penalty"`
	LogitBias           map[string]float64 `json:"logit_bias"`
	N                   *int               `json:"n"`
	IgnoreEOS           bool               `json:"ignore_eos"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

const maxStops = 16

// parseStop accepts a string, an array of strings, or null.
func parseStop(raw json.RawMessage, field string) ([]string, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, badRequest(field, "%s must be a string or an array of strings", field)
	}
	if len(many) > maxStops {
		return nil, badRequest(field, "%s has %d entries; at most %d", field, len(many), maxStops)
	}
	return many, nil
}

func randomSeed() uint64 {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return uint64(time.Now().UnixNano())
	}
	return binary.LittleEndian.Uint64(b[:])
}

func finite(p *float64) bool { return p == nil || (!math.IsNaN(*p) && !math.IsInf(*p, 0)) }

// request turns the shared fields into an engine request.
func (f *samplingFields) request(s *Server, prompt []int, logprobs bool, top int) (engine.Request, *apiError) {
	req := engine.Request{Prompt: prompt, IgnoreEOS: f.IgnoreEOS}
	if f.Model != "" && f.Model != s.cfg.ModelName {
		return req, &apiError{status: http.StatusNotFound, typ: "invalid_request_error", code: "model_not_found", param: "model",
			msg: fmt.Sprintf("model %q not found; this server serves %q", f.Model, s.cfg.ModelName)}
	}
	if f.N != nil && *f.N != 1 {
		return req, badRequest("n", "n = %d is not supported; only 1", *f.N)
	}
	mt := f.MaxTokens
	if f.MaxCompletionTokens != nil {
		mt = f.MaxCompletionTokens
	}
	if mt != nil {
		if *mt < 1 {
			return req, badRequest("max_tokens", "max_tokens %d must be at least 1", *mt)
		}
		req.MaxTokens = *mt
	}
	for name, p := range map[string]*float64{"temperature": f.Temperature, "top_p": f.TopP, "min_p": f.MinP,
		"presence_penalty": f.PresencePenalty, "frequency_penalty": f.FrequencyPenalty, "repetition_penalty": f.RepetitionPenalty} {
		if !finite(p) {
			return req, badRequest(name, "%s must be a finite number", name)
		}
	}
	sp := engine.SamplerParams{Temperature: 1, LogProbs: logprobs, TopLogProbs: top}
	if f.Temperature != nil {
		if *f.Temperature < 0 || *f.Temperature > 2 {
			return req, badRequest("temperature", "temperature %v must be in [0, 2]", *f.Temperature)
		}
		sp.Temperature = *f.Temperature
	}
	if f.TopP != nil {
		if *f.TopP <= 0 || *f.TopP > 1 {
			return req, badRequest("top_p", "top_p %v must be in (0, 1]", *f.TopP)
		}
		sp.TopP = *f.TopP
	}
	if f.TopK != nil {
		if *f.TopK < 0 {
			return req, badRequest("top_k", "top_k %d must be >= 0", *f.TopK)
		}
		sp.TopK = *f.TopK
	}
	if f.MinP != nil {
		sp.MinP = *f.MinP
	}
	if f.PresencePenalty != nil {
		sp.PresencePenalty = *f.PresencePenalty
	}
	if f.FrequencyPenalty != nil {
		sp.FrequencyPenalty = *f.FrequencyPenalty
	}
	if f.RepetitionPenalty != nil {
		sp.RepetitionPenalty = *f.RepetitionPenalty
	}
	if f.Seed != nil {
		sp.Seed = uint64(*f.Seed)
	} else {
		sp.Seed = randomSeed()
	}
	if len(f.LogitBias) > 0 {
		sp.LogitBias = map[int]float32{}
		for k, v := range f.LogitBias {
			id, err := strconv.Atoi(k)
			if err != nil || id < 0 || id >= s.eng.Vocab() {
				return req, badRequest("logit_bias", "logit_bias key %q is not a token id in [0,%d)", k, s.eng.Vocab())
			}
			if v < -100 || v > 100 || math.IsNaN(v) {
				return req, badRequest("logit_bias", "logit_bias[%s] = %v must be in [-100, 100]", k, v)
			}
			sp.LogitBias[id] = float32(v)
		}
	}
	stops, aerr := parseStop(f.Stop, "stop")
	if aerr != nil {
		return req, aerr
	}
	req.Stop = stops
	req.Sampling = sp
	return req, nil
}

// eventSink receives a stream's events; streaming handlers write them out.
type eventSink struct {
	token func(ev engine.Event) error
	// idle is called every KeepAlive while nothing was written, with the
	// latest prefill progress (done, total); nil for non-streaming.
	idle func(done, total int) error
}

// pump submits req and feeds its events to sink until the end; it returns
// the result, or an error when submission failed or the client went away.
// On return the request's context is cancelled, so the engine frees the
// session within one step.
func (s *Server) pump(r *http.Request, req engine.Request, sink eventSink, started func(st *engine.Stream) error) (*engine.Result, *engine.Stream, error) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	req.ID = requestID(r)
	st, err := s.eng.Submit(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	if started != nil {
		if err := started(st); err != nil {
			return nil, st, err
		}
	}
	var tick <-chan time.Time
	if sink.idle != nil {
		t := time.NewTicker(s.cfg.KeepAlive)
		defer t.Stop()
		tick = t.C
	}
	last := time.Now()
	done, total := 0, st.PromptTokens
	for {
		select {
		case ev, ok := <-st.Events:
			if !ok {
				return nil, st, fmt.Errorf("stream %s ended without a result", st.ID)
			}
			switch ev.Kind {
			case engine.EventPrefill:
				done, total = ev.Prefilled, ev.PromptTokens
			case engine.EventToken, engine.EventDone:
				if err := sink.token(ev); err != nil {
					return nil, st, err
				}
				last = time.Now()
				if ev.Kind == engine.EventDone {
					return ev.Result, st, nil
				}
			}
		case <-tick:
			if time.Since(last) >= s.cfg.KeepAlive/2 {
				if err := sink.idle(done, total); err != nil {
					return nil, st, err
				}
				last = time.Now()
			}
		}
	}
}

// sse writes Server-Sent Events.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	s := &sse{w: w, f: f}
	s.flush()
	return s
}

func (s *sse) flush() {
	if s.f != nil {
		s.f.Flush()
	}
}

// data writes one "data:" event (event names it when non-empty).
func (s *sse) data(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("sse: %w", err)
	}
	if event != "" {
		if _, err := fmt.Fprintf(s.w, "event: %s\n", event); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(s.w, "data: %s\n\n", b); err != nil {
		return err
	}
	s.flush()
	return nil
}

func (s *sse) raw(line string) error {
	if _, err := fmt.Fprint(s.w, line); err != nil {
		return err
	}
	s.flush()
	return nil
}

// comment writes an SSE comment line, ignored by clients, that keeps
// proxies from dropping the connection.
func (s *sse) comment(text string) error { return s.raw(": " + text + "\n\n") }

func usageJSON(u engine.Usage) map[string]any {
	return map[string]any{"prompt_tokens": u.PromptTokens, "completion_tokens": u.CompletionTokens,
		"total_tokens":          u.PromptTokens + u.CompletionTokens,
		"prompt_tokens_details": map[string]any{"cached_tokens": u.CachedTokens}}
}

func timingsJSON(t engine.Timings) map[string]any {
	return map[string]any{"queued_ms": ms(t.Queued), "prefill_ms": ms(t.Prefill), "decode_ms": ms(t.Decode),
		"prefill_tokens_per_second": round2(t.PrefillTokensPerSec), "decode_tokens_per_second": round2(t.DecodeTokensPerSec)}
}

func ms(d time.Duration) float64 { return round2(float64(d) / 1e6) }

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// resultError maps a failed or cancelled result to an apiError.
func resultError(res *engine.Result) *apiError {
	if res.Finish == engine.FinishCancelled {
		return classify(res.Err)
	}
	return &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: fmt.Sprintf("generation failed: %v", res.Err)}
}

func failed(res *engine.Result) bool {
	return res.Finish == engine.FinishError || res.Finish == engine.FinishCancelled
}
