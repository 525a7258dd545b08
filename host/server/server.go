// Package server serves an engine over HTTP: OpenAI-compatible
// /v1/models, /v1/completions and /v1/chat/completions, Anthropic-compatible
// /v1/messages, /healthz, Prometheus /metrics, and the edge protocol over a
// websocket at /ws. Streams are Server-Sent Events with keep-alive comments
// while nothing is produced; a client that goes away cancels its request.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/rs/zerolog"
)

// Config tunes a Server. Zero fields take the defaults noted.
type Config struct {
	// ModelName is the model id reported and accepted (default "edgeseek").
	ModelName string
	// KeepAlive is the interval of SSE comment lines and websocket pings
	// while nothing else is sent (default 5s).
	KeepAlive time.Duration
	// MaxBodyBytes bounds request bodies (default 8 MiB).
	MaxBodyBytes int64
	// AuthToken, when set, is required as "Authorization: Bearer <token>"
	// (or "x-api-key: <token>") on /v1/* and /ws; /ws also takes
	// "?access_token=<token>", since browsers cannot set headers there.
	AuthToken string
	// AllowedOrigins lists the Origin values accepted on /ws besides the
	// server's own host; "*" accepts any.
	AllowedOrigins []string
	// WSMaxMessage bounds one websocket message (default 16 MiB).
	WSMaxMessage int64
}

func (c *Config) defaults() {
	if c.ModelName == "" {
		c.ModelName = "edgeseek"
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 5 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 8 << 20
	}
	if c.WSMaxMessage <= 0 {
		c.WSMaxMessage = 16 << 20
	}
}

// Server is the HTTP handler.
type Server struct {
	cfg     Config
	eng     *engine.Engine
	log     zerolog.Logger
	mux     *http.ServeMux
	created int64

	httpMu   sync.Mutex
	httpReqs map[string]uint64 // "route\x00code" → count
	wsConns  atomic.Int64
}

// New returns the handler serving eng.
func New(cfg Config, eng *engine.Engine, log zerolog.Logger) *Server {
	cfg.defaults()
	s := &Server{cfg: cfg, eng: eng, log: log, mux: http.NewServeMux(), created: time.Now().Unix(), httpReqs: map[string]uint64{}}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /metrics", s.metrics)
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models))
	s.mux.HandleFunc("GET /v1/models/{id}", s.auth(s.model))
	s.mux.HandleFunc("POST /v1/completions", s.auth(s.completions))
	s.mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chatCompletions))
	s.mux.HandleFunc("POST /v1/messages", s.auth(s.messages))
	s.mux.HandleFunc("GET /ws", s.auth(s.websocket))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeOpenAIError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s
}

// statusWriter records the status code and keeps http.Flusher and the
// hijacker reachable through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	code int
}

// WriteHeader records the status code.
func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Flush implements http.Flusher for SSE.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type ctxKey struct{}

// requestID returns the id the server gave the request.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(ctxKey{}).(string)
	return id
}

func newID() string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// ServeHTTP implements http.Handler: request id, structured log, recovery.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		id = newID()
	}
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, id))
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error().Str("req", id).Interface("panic", p).Msg("handler panic")
			if sw.code == 0 {
				writeOpenAIError(sw, http.StatusInternalServerError, "server_error", "internal error")
			}
		}
		route := r.Pattern // bounded label set: the route, not the path
		if route == "" || route == "/" {
			route = "other"
		}
		s.httpMu.Lock()
		s.httpReqs[fmt.Sprintf("%s\x00%d", route, sw.code)]++
		s.httpMu.Unlock()
		s.log.Info().Str("req", id).Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.code).
			Dur("took", time.Since(start)).Msg("http")
	}()
	s.mux.ServeHTTP(sw, r)
}

// auth requires the configured token.
func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.AuthToken == "" {
		return h
	}
	want := []byte(s.cfg.AuthToken)
	return func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("x-api-key")
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
			got = strings.TrimPrefix(a, "Bearer ")
		}
		if got == "" && r.URL.Path == "/ws" {
			// Browsers cannot set headers on a websocket handshake.
			got = r.URL.Query().Get("access_token")
		}
		if subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			writeOpenAIError(w, http.StatusUnauthorized, "authentication_error", "missing or wrong API key")
			return
		}
		h(w, r)
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	st := s.eng.Stats()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.cfg.ModelName,
		"active_sessions": st.ActiveSessions, "queue_depth": st.QueueDepth})
}

func (s *Server) modelObject() map[string]any {
	return map[string]any{"id": s.cfg.ModelName, "object": "model", "created": s.created, "owned_by": "edgeseek",
		"context_length": s.eng.ContextLimit()}
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": []any{s.modelObject()}})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("id") != s.cfg.ModelName {
		writeOpenAIError(w, http.StatusNotFound, "not_found_error", fmt.Sprintf("model %q not found; this server serves %q", r.PathValue("id"), s.cfg.ModelName))
		return
	}
	writeJSON(w, http.StatusOK, s.modelObject())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the response failed","type":"server_error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// apiError is an error with its HTTP status and OpenAI error type/code.
type apiError struct {
	status int
	typ    string
	code   string
	param  string
	msg    string
}

// Error returns the message.
func (e *apiError) Error() string { return e.msg }

func badRequest(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", param: param, msg: fmt.Sprintf(format, args...)}
}

// classify turns an engine error into an apiError.
func classify(err error) *apiError {
	var ae *apiError
	var adm *engine.AdmissionError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &adm):
		code := "context_length_exceeded"
		if adm.Reason == "memory" {
			code = "cache_budget_exceeded"
		}
		return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", code: code, msg: adm.Error()}
	case errors.Is(err, engine.ErrBusy):
		return &apiError{status: http.StatusServiceUnavailable, typ: "overloaded_error", code: "busy", msg: err.Error()}
	case errors.Is(err, engine.ErrClosed):
		return &apiError{status: http.StatusServiceUnavailable, typ: "overloaded_error", code: "shutting_down", msg: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: 499, typ: "cancelled", msg: err.Error()}
	}
	// Validation failures from the engine and the sampler.
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: err.Error()}
}

func openAIErrorBody(e *apiError) map[string]any {
	body := map[string]any{"message": e.msg, "type": e.typ, "param": nil, "code": nil}
	if e.param != "" {
		body["param"] = e.param
	}
	if e.code != "" {
		body["code"] = e.code
	}
	return map[string]any{"error": body}
}

func writeOpenAIError(w http.ResponseWriter, code int, typ, msg string) {
	writeJSON(w, code, openAIErrorBody(&apiError{status: code, typ: typ, msg: msg}))
}

func writeAPIError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.status, openAIErrorBody(e)) }

// decodeBody reads a JSON body into v with a size limit and clear errors.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &apiError{status: http.StatusUnsupportedMediaType, typ: "invalid_request_error", msg: fmt.Sprintf("content type %q; want application/json", ct)}
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &mbe):
			return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", msg: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		case errors.As(err, &se):
			return badRequest("", "invalid JSON at byte %d: %v", se.Offset, err)
		case errors.As(err, &te) && te.Field == "":
			return badRequest("", "the request body must be a JSON object, got JSON %s", te.Value)
		case errors.As(err, &te):
			field := strings.TrimPrefix(te.Field, "samplingFields.")
			return badRequest(field, "field %q: expected %s, got JSON %s", field, te.Type, te.Value)
		}
		return badRequest("", "invalid JSON body: %v", err)
	}
	if dec.More() {
		return badRequest("", "trailing data after the JSON body")
	}
	return nil
}

// Serve listens on addr and serves until ctx ends, then shuts down
// gracefully (in-flight streams get 5 seconds).
func (s *Server) Serve(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return s.ServeListener(ctx, ln)
}

// ServeListener is Serve on an existing listener.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("serving")
	select {
	case err := <-errc:
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	return nil
}
