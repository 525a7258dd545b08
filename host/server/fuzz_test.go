package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/rs/zerolog"
)

// fuzzPaths are the routes that parse a JSON body.
var fuzzPaths = []string{"/v1/completions", "/v1/chat/completions", "/v1/messages"}

// FuzzHTTPRequests posts arbitrary bodies to the three JSON routes of a
// server on the fake runner. Whatever the body, the answer is a success
// (valid JSON, or a well-formed event stream) or a client error carrying a
// message — never a 5xx, which is what the server's panic recovery would
// give — and the engine has no session left once the request is over.
func FuzzHTTPRequests(f *testing.F) {
	for _, seed := range []struct {
		path uint8
		body string
	}{
		{0, `{"prompt": "hello", "max_tokens": 5}`},
		{0, `{"prompt": [1, 2, 3], "max_tokens": 3, "logprobs": 2, "stream": true}`},
		{0, `{"prompt": "a", "stop": ["b", "c"], "seed": 7, "temperature": 0.5, "top_p": 0.9, "logit_bias": {"5": -100}}`},
		{1, `{"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], "max_tokens": 4}`},
		{1, `{"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}], "stream": true, "logprobs": true, "top_logprobs": 2, "max_tokens": 3}`},
		{1, `{"messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "tool_call_id": "1", "content": "r"}], "max_tokens": 2}`},
		{2, `{"model": "edgeseek", "max_tokens": 4, "system": "be brief", "messages": [{"role": "user", "content": "hi"}]}`},
		{2, `{"max_tokens": 3, "stream": true, "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}`},
		{0, `{"prompt": `},
		{1, `{"messages": []}`},
		{2, `[]`},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	r := enginetest.NewRunner()
	c := r.Config()
	eng, err := engine.New(r, nativeedge.NewBytes(c.BOS, c.EOS), engine.Config{ContextLimit: 256}, zerolog.Nop())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { eng.Close() })
	h := New(Config{MaxBodyBytes: 1 << 14}, eng, zerolog.Nop())
	f.Fuzz(func(t *testing.T, path uint8, body []byte) {
		p := fuzzPaths[int(path)%len(fuzzPaths)]
		req := httptest.NewRequest(http.MethodPost, p, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		out := rec.Body.Bytes()
		ct := rec.Header().Get("Content-Type")
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %q: status %d: %s", p, body, rec.Code, out)
		case rec.Code != http.StatusOK:
			var e struct {
				Error struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			if err := json.Unmarshal(out, &e); err != nil || e.Error.Message == "" {
				t.Fatalf("%s %q: status %d without an error message: %s", p, body, rec.Code, out)
			}
		case strings.HasPrefix(ct, "text/event-stream"):
			if _, _, err := parseSSEErr(out); err != nil {
				t.Fatalf("%s %q: malformed stream: %v\n%s", p, body, err, out)
			}
		default:
			if !json.Valid(out) {
				t.Fatalf("%s %q: status 200 with invalid JSON: %s", p, body, out)
			}
		}
		if n := eng.Stats().ActiveSessions; n != 0 {
			t.Fatalf("%s %q: %d sessions still active after the request", p, body, n)
		}
	})
}
