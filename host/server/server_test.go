package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/rs/zerolog"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		ok := false
		for i := 0; i < 300 && !ok; i++ {
			ok = runtime.NumGoroutine() <= before+runtime.NumCPU()+1
			if !ok {
				runtime.GC() // kernels' pool helpers stop once their backend is garbage
				time.Sleep(10 * time.Millisecond)
			}
		}
		if !ok {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			fmt.Fprintf(os.Stderr, "goroutine leak: %d running, %d before\n%s", runtime.NumGoroutine(), before, buf[:n])
			code = 1
		}
	}
	os.Exit(code)
}

type fixture struct {
	r   *enginetest.Runner
	eng *engine.Engine
	srv *httptest.Server
	cl  *http.Client
}

func newFixture(t testing.TB, r engine.Runner, ecfg engine.Config, scfg Config) *fixture {
	t.Helper()
	c := r.Config()
	eng, err := engine.New(r, nativeedge.NewBytes(c.BOS, c.EOS), ecfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(scfg, eng, zerolog.Nop()))
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	f := &fixture{eng: eng, srv: srv, cl: &http.Client{Transport: tr, Timeout: 20 * time.Minute}}
	f.r, _ = r.(*enginetest.Runner)
	t.Cleanup(func() {
		srv.Close()
		tr.CloseIdleConnections()
		eng.Close()
	})
	return f
}

func fakeFixture(t testing.TB) *fixture {
	return newFixture(t, enginetest.NewRunner(), engine.Config{}, Config{})
}

func (f *fixture) post(t testing.TB, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = strings.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	resp, err := f.cl.Post(f.srv.URL+path, "application/json", rd)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, out
}

func decode(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("bad JSON %q: %v", b, err)
	}
	return m
}

// sseEvents splits an SSE body into (event, data) pairs and comments.
type sseEvent struct{ event, data string }

func parseSSE(t testing.TB, body []byte) (events []sseEvent, comments []string) {
	t.Helper()
	events, comments, err := parseSSEErr(body)
	if err != nil {
		t.Fatal(err)
	}
	return events, comments
}

func parseSSEErr(body []byte) (events []sseEvent, comments []string, err error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var cur sseEvent
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" || cur.event != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, ":"):
			comments = append(comments, strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		default:
			return nil, nil, fmt.Errorf("unexpected SSE line %q", line)
		}
	}
	return events, comments, nil
}

func TestModelsHealthMetrics(t *testing.T) {
	f := fakeFixture(t)
	for _, tc := range []struct {
		path, want string
	}{
		{"/healthz", `"status":"ok"`},
		{"/v1/models", `"id":"edgeseek"`},
		{"/v1/models/edgeseek", `"object":"model"`},
		{"/metrics", "# TYPE edgeseek_active_sessions gauge\nedgeseek_active_sessions 0\n"},
	} {
		resp, err := f.cl.Get(f.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s: %d %s", tc.path, resp.StatusCode, b)
		}
	}
	f.post(t, "/v1/completions", map[string]any{"prompt": "hello", "max_tokens": 5, "seed": 1, "ignore_eos": true})
	resp, _ := f.cl.Get(f.srv.URL + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"edgeseek_generated_tokens_total 5\n", "edgeseek_prompt_tokens_total 5\n",
		"edgeseek_requests_total 1\n", `edgeseek_edge_call_seconds_bucket{le="+Inf"} `,
		`edgeseek_http_requests_total{path="POST /v1/completions",code="200"} 1` + "\n", "edgeseek_queue_depth 0\n"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q:\n%s", want, b)
		}
	}
}

// direct runs a request on the engine, bypassing HTTP.
func direct(t testing.TB, eng *engine.Engine, req engine.Request) (string, []int, *engine.Result) {
	st, err := eng.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var text string
	var ids []int
	for ev := range st.Events {
		text += ev.Text
		if ev.Kind == engine.EventToken {
			ids = append(ids, ev.Token.ID)
		}
		if ev.Kind == engine.EventDone {
			return text, ids, ev.Result
		}
	}
	t.Fatal("no result")
	return "", nil, nil
}

func TestCompletionMatchesEngine(t *testing.T) {
	f := fakeFixture(t)
	prompt, _ := f.eng.Edge().Encode("Once upon a time")
	want, _, _ := direct(t, f.eng, engine.Request{Prompt: prompt, MaxTokens: 20, IgnoreEOS: true,
		Sampling: engine.SamplerParams{Temperature: 0.8, TopP: 0.9, Seed: 42}})
	resp, b := f.post(t, "/v1/completions", map[string]any{"model": "edgeseek", "prompt": "Once upon a time", "max_tokens": 20,
		"temperature": 0.8, "top_p": 0.9, "seed": 42, "ignore_eos": true, "logprobs": 3})
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := decode(t, b)
	ch := m["choices"].([]any)[0].(map[string]any)
	if ch["text"] != want || ch["finish_reason"] != "length" {
		t.Fatalf("text %q finish %v, want %q length", ch["text"], ch["finish_reason"], want)
	}
	u := m["usage"].(map[string]any)
	if u["prompt_tokens"] != float64(16) || u["completion_tokens"] != float64(20) || u["total_tokens"] != float64(36) {
		t.Fatalf("usage %v", u)
	}
	lp := ch["logprobs"].(map[string]any)
	if n := len(lp["tokens"].([]any)); n != 20 {
		t.Fatalf("%d logprob tokens", n)
	}
	for i, top := range lp["top_logprobs"].([]any) {
		if n := len(top.(map[string]any)); n < 1 || n > 3 {
			t.Fatalf("token %d: %d alternatives", i, n)
		}
	}
	// Streaming gives the same text.
	resp, b = f.post(t, "/v1/completions", map[string]any{"prompt": "Once upon a time", "max_tokens": 20,
		"temperature": 0.8, "top_p": 0.9, "seed": 42, "ignore_eos": true, "stream": true, "stream_options": map[string]any{"include_usage": true}})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	evs, _ := parseSSE(t, b)
	text := ""
	for _, ev := range evs[:len(evs)-1] {
		c := decode(t, []byte(ev.data))
		text += c["choices"].([]any)[0].(map[string]any)["text"].(string)
	}
	if text != want || evs[len(evs)-1].data != "[DONE]" {
		t.Fatalf("streamed %q, want %q; last %q", text, want, evs[len(evs)-1].data)
	}
	last := decode(t, []byte(evs[len(evs)-2].data))
	if last["usage"].(map[string]any)["completion_tokens"] != float64(20) {
		t.Fatalf("final chunk %v", last)
	}
}

// chatStream posts a streaming chat request and returns the content, the
// finish reason, the number of logprob entries and the SSE comments.
func chatStream(t testing.TB, f *fixture, body map[string]any) (content, finish string, lps int, comments []string) {
	t.Helper()
	content, finish, lps, comments, err := chatStreamErr(f, body)
	if err != nil {
		t.Fatal(err)
	}
	return content, finish, lps, comments
}

// chatStreamErr is chatStream for goroutines other than the test's.
func chatStreamErr(f *fixture, body map[string]any) (content, finish string, lps int, comments []string, err error) {
	body["stream"] = true
	js, _ := json.Marshal(body)
	resp, err := f.cl.Post(f.srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(js))
	if err != nil {
		return "", "", 0, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", "", 0, nil, err
	}
	if resp.StatusCode != 200 {
		return "", "", 0, nil, fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	evs, comments, err := parseSSEErr(b)
	if err != nil {
		return "", "", 0, nil, err
	}
	if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
		return "", "", 0, nil, fmt.Errorf("stream does not end with [DONE]: %s", b)
	}
	for i, ev := range evs[:len(evs)-1] {
		var c map[string]any
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			return "", "", 0, nil, fmt.Errorf("bad chunk %q: %v", ev.data, err)
		}
		chs, _ := c["choices"].([]any)
		if len(chs) == 0 {
			continue // usage chunk
		}
		ch := chs[0].(map[string]any)
		d := ch["delta"].(map[string]any)
		if i == 0 && d["role"] != "assistant" {
			return "", "", 0, nil, fmt.Errorf("first chunk %v", c)
		}
		if s, ok := d["content"].(string); ok {
			if !utf8.ValidString(s) {
				return "", "", 0, nil, fmt.Errorf("invalid UTF-8 piece %q", s)
			}
			content += s
		}
		if fr, ok := ch["finish_reason"].(string); ok {
			finish = fr
		}
		if l, ok := ch["logprobs"].(map[string]any); ok {
			lps += len(l["content"].([]any))
		}
	}
	return content, finish, lps, comments, nil
}

func TestChatStreamingMatchesNonStreaming(t *testing.T) {
	f := fakeFixture(t)
	req := func() map[string]any {
		return map[string]any{"messages": []any{map[string]any{"role": "system", "content": "be brief"},
			map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": "hi there"}}}},
			"max_tokens": 24, "seed": 7, "temperature": 1, "ignore_eos": true, "logprobs": true, "top_logprobs": 2}
	}
	resp, b := f.post(t, "/v1/chat/completions", req())
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := decode(t, b)
	ch := m["choices"].([]any)[0].(map[string]any)
	want := ch["message"].(map[string]any)["content"].(string)
	lp := ch["logprobs"].(map[string]any)["content"].([]any)
	if len(lp) != 24 || len(lp[0].(map[string]any)["top_logprobs"].([]any)) != 2 {
		t.Fatalf("logprobs %v", lp)
	}
	prompt := len("system: be brief\nuser: hi there\nassistant: ") + 1
	if u := m["usage"].(map[string]any); u["prompt_tokens"] != float64(prompt) {
		t.Fatalf("usage %v, want %d prompt tokens", u, prompt)
	}
	content, finish, lps, _ := chatStream(t, f, req())
	if content != want || finish != "length" || lps != 24 {
		t.Fatalf("stream %q %q %d, want %q length 24", content, finish, lps, want)
	}
}

func TestStreamHoldsSplitCharacters(t *testing.T) {
	r := enginetest.NewRunner()
	f := newFixture(t, r, engine.Config{}, Config{})
	script := []byte("a😀b世界 ok")
	bytesEdge := nativeedge.NewBytes(0, 1)
	start := -1
	var mu sync.Mutex
	r.OnForward = func(seq int64, pos, n int) {
		mu.Lock()
		defer mu.Unlock()
		if start < 0 && n > 1 {
			start = pos + n // first logits position of the generation
		}
	}
	r.Force = func(pos int) (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if i := pos - start; start >= 0 && i >= 0 && i < len(script) {
			return bytesEdge.Offset + int(script[i]), true
		}
		return 0, false
	}
	content, _, _, _ := chatStream(t, f, map[string]any{"messages": []any{map[string]any{"role": "user", "content": "emoji please"}},
		"max_tokens": len(script), "temperature": 0, "ignore_eos": true})
	if content != string(script) {
		t.Fatalf("content %q, want %q", content, script)
	}
}

func TestStopSequence(t *testing.T) {
	f := fakeFixture(t)
	body := map[string]any{"prompt": "abc", "max_tokens": 30, "seed": 5, "ignore_eos": true}
	_, b := f.post(t, "/v1/completions", body)
	full := decode(t, b)["choices"].([]any)[0].(map[string]any)["text"].(string)
	// Pick a stop sequence of 2 characters from the middle.
	runes := []rune(full)
	if len(runes) < 10 {
		t.Skipf("output too short: %q", full)
	}
	stop := string(runes[5:7])
	body["stop"] = []string{stop}
	_, b = f.post(t, "/v1/completions", body)
	ch := decode(t, b)["choices"].([]any)[0].(map[string]any)
	if want := full[:strings.Index(full, stop)]; ch["text"] != want || ch["finish_reason"] != "stop" {
		t.Fatalf("text %q finish %v, want %q stop", ch["text"], ch["finish_reason"], want)
	}
}

func TestAnthropicMessages(t *testing.T) {
	f := fakeFixture(t)
	body := func(stream bool) map[string]any {
		return map[string]any{"model": "claude-whatever", "max_tokens": 12, "system": "sys", "temperature": 0,
			"messages": []any{map[string]any{"role": "user", "content": "Hello"}}, "stream": stream}
	}
	resp, b := f.post(t, "/v1/messages", body(false))
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	m := decode(t, b)
	want := m["content"].([]any)[0].(map[string]any)["text"].(string)
	u := m["usage"].(map[string]any)
	if m["type"] != "message" || m["role"] != "assistant" || u["output_tokens"].(float64) < 1 {
		t.Fatalf("response %v", m)
	}
	resp, b = f.post(t, "/v1/messages", body(true))
	evs, _ := parseSSE(t, b)
	var names []string
	text := ""
	for _, ev := range evs {
		names = append(names, ev.event)
		d := decode(t, []byte(ev.data))
		if d["type"] != ev.event {
			t.Fatalf("event %q carries type %v", ev.event, d["type"])
		}
		if ev.event == "content_block_delta" {
			text += d["delta"].(map[string]any)["text"].(string)
		}
		if ev.event == "message_delta" {
			if d["delta"].(map[string]any)["stop_reason"] != m["stop_reason"] {
				t.Fatalf("stop reason %v vs %v", d, m["stop_reason"])
			}
		}
	}
	got := strings.Join(names, ",")
	if !strings.HasPrefix(got, "message_start,content_block_start,") || !strings.HasSuffix(got, "content_block_stop,message_delta,message_stop") {
		t.Fatalf("events %s", got)
	}
	if text != want {
		t.Fatalf("streamed %q, want %q", text, want)
	}
	// Errors use the Anthropic shape.
	resp, b = f.post(t, "/v1/messages", map[string]any{"messages": []any{}})
	if e := decode(t, b); resp.StatusCode != 400 || e["type"] != "error" || e["error"].(map[string]any)["type"] != "invalid_request_error" {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestBadRequests(t *testing.T) {
	f := newFixture(t, enginetest.NewRunner(), engine.Config{ContextLimit: 100}, Config{MaxBodyBytes: 1 << 12})
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		want       string
	}{
		{"invalid json", "/v1/completions", `{"prompt": `, 400, "invalid JSON body"},
		{"wrong type", "/v1/completions", `{"prompt": "x", "max_tokens": "ten"}`, 400, `field \"max_tokens\": expected int`},
		{"no prompt", "/v1/completions", `{}`, 400, "prompt is required"},
		{"two prompts", "/v1/completions", `{"prompt": ["a","b"]}`, 400, "exactly one prompt"},
		{"n=2", "/v1/completions", `{"prompt": "a", "n": 2}`, 400, "n = 2 is not supported"},
		{"temperature", "/v1/completions", `{"prompt": "a", "temperature": 3}`, 400, "temperature 3 must be in [0, 2]"},
		{"top_p", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}], "top_p": 0}`, 400, "top_p 0 must be in (0, 1]"},
		{"context", "/v1/completions", `{"prompt": "hello", "max_tokens": 200}`, 400, "request needs 205 tokens (prompt 5 + max_tokens 200) but the context limit is 100"},
		{"wrong model", "/v1/completions", `{"prompt": "a", "model": "gpt-9"}`, 404, `model \"gpt-9\" not found`},
		{"no messages", "/v1/chat/completions", `{"messages": []}`, 400, "at least one message"},
		{"bad role", "/v1/chat/completions", `{"messages":[{"role":"wizard","content":"x"}]}`, 400, `role \"wizard\"`},
		{"image part", "/v1/chat/completions", `{"messages":[{"role":"user","content":[{"type":"image_url"}]}]}`, 400, "not supported (text only)"},
		{"top without logprobs", "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}], "top_logprobs": 2}`, 400, "top_logprobs needs logprobs"},
		{"token out of vocab", "/v1/completions", `{"prompt": [1, 99999]}`, 400, "outside the vocabulary"},
		{"logit bias key", "/v1/completions", `{"prompt": "a", "logit_bias": {"x": 1}}`, 400, "logit_bias key"},
		{"body too large", "/v1/completions", `{"prompt": "` + strings.Repeat("a", 5000) + `"}`, 413, "request body over 4096 bytes"},
		{"trailing", "/v1/completions", `{"prompt": "a"} {}`, 400, "trailing data"},
		{"not an object", "/v1/messages", `[1]`, 400, "the request body must be a JSON object, got JSON array"},
		{"unknown route", "/v1/nothing", `{}`, 404, "no route for POST /v1/nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := f.post(t, tc.path, tc.body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
				t.Fatalf("%d %s, want %d containing %q", resp.StatusCode, b, tc.status, tc.want)
			}
			if e, ok := decode(t, b)["error"].(map[string]any); !ok || e["message"] == "" {
				t.Fatalf("not an OpenAI error: %s", b)
			}
		})
	}
}

func TestAuthToken(t *testing.T) {
	f := newFixture(t, enginetest.NewRunner(), engine.Config{}, Config{AuthToken: "s3cret"})
	for _, tc := range []struct {
		header, value string
		status        int
	}{
		{"", "", 401},
		{"Authorization", "Bearer nope", 401},
		{"Authorization", "Bearer s3cret", 200},
		{"x-api-key", "s3cret", 200},
	} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/v1/models", nil)
		if tc.header != "" {
			req.Header.Set(tc.header, tc.value)
		}
		resp, err := f.cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %q: %d, want %d", tc.header, tc.value, resp.StatusCode, tc.status)
		}
	}
	// Health and metrics stay open for probes.
	resp, err := f.cl.Get(f.srv.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
}

func TestKeepAliveDuringLongPrefill(t *testing.T) {
	r := enginetest.NewRunner()
	r.TokenDelay = 2 * time.Millisecond // 64-token chunks take ~130ms
	f := newFixture(t, r, engine.Config{PrefillChunk: 64}, Config{KeepAlive: 30 * time.Millisecond})
	_, _, _, comments := chatStream(t, f, map[string]any{"messages": []any{map[string]any{"role": "user", "content": strings.Repeat("long prompt ", 40)}},
		"max_tokens": 2, "seed": 1})
	progress := 0
	for _, c := range comments {
		if strings.HasPrefix(c, "keep-alive prefill ") {
			progress++
		}
	}
	if progress == 0 {
		t.Fatalf("no prefill keep-alive comments: %v", comments)
	}
}

func TestClientDisconnectFreesSession(t *testing.T) {
	r := enginetest.NewRunner()
	f := newFixture(t, r, engine.Config{}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const at = 30 // disconnect while the forward at this position runs
	var mu sync.Mutex
	var victim int64 = -1
	r.OnForward = func(seq int64, pos, n int) {
		mu.Lock()
		if pos == at && victim < 0 {
			victim = seq
			mu.Unlock()
			cancel()
			time.Sleep(200 * time.Millisecond) // the server notices the closed connection
			return
		}
		mu.Unlock()
	}
	body, _ := json.Marshal(map[string]any{"prompt": "abc", "max_tokens": 1000, "stream": true, "ignore_eos": true})
	req, _ := http.NewRequestWithContext(ctx, "POST", f.srv.URL+"/v1/completions", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.cl.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.eng.Stats().ActiveSessions != 0 || f.eng.Stats().CancelledTotal != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("session still active after disconnect: %+v", f.eng.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	id := victim
	mu.Unlock()
	// 1 prefill chunk, decode steps at positions 3..at, and at most the one
	// step that was already under way when the server saw the disconnect.
	if got, max := r.Forwards(id), int64(1+(at-3+1)+1); got > max {
		t.Fatalf("%d forwards after disconnect, want at most %d", got, max)
	}
	if s := f.eng.Stats(); s.ReservedBytes != 0 || s.CacheBytes != s.PrefixCacheBytes {
		t.Fatalf("cache not freed: %+v", s)
	}
}

// concurrentHTTP runs n chat requests of toks tokens one at a time, then
// all at once, over HTTP, and requires identical outputs.
func concurrentHTTP(t *testing.T, f *fixture, n, toks int) {
	body := func(i int) map[string]any {
		return map[string]any{"messages": []any{map[string]any{"role": "user", "content": strings.Repeat(fmt.Sprintf("session %d. ", i), 1+i%5)}},
			"max_tokens": toks, "seed": 100 + i, "temperature": []float64{0, 0.5, 1}[i%3], "ignore_eos": true}
	}
	alone := make([]string, n)
	for i := range alone {
		alone[i], _, _, _ = chatStream(t, f, body(i))
	}
	together := make([]string, n)
	var wg sync.WaitGroup
	for i := range together {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if together[i], _, _, _, err = chatStreamErr(f, body(i)); err != nil {
				t.Errorf("session %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	for i := range alone {
		if alone[i] != together[i] {
			t.Errorf("session %d differs:\nalone    %q\ntogether %q", i, alone[i], together[i])
		}
	}
}

func TestConcurrentHTTPSessionsMatchAlone(t *testing.T) {
	f := newFixture(t, enginetest.NewRunner(), engine.Config{PrefixCacheBytes: -1}, Config{})
	concurrentHTTP(t, f, 16, 64)
}

// The full size: 64 sessions × 1000 tokens, through the embedded Go
// edge in wazero with an instance per request, as `edgeseek serve` runs it
// (fake model). EDGESEEK_BIG_TEST=tiny runs it on the tiny synth V4 model
// with the native byte edge instead (minutes on 2 cores).
func TestConcurrentHTTPBig(t *testing.T) {
	start := time.Now()
	if os.Getenv("EDGESEEK_BIG_TEST") == "tiny" {
		tr, release, err := enginetest.TinyModel(t.TempDir(), checkpoint.ArchV4, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(release) // after the fixture's cleanup has closed the engine
		f := newFixture(t, tr, engine.Config{PrefixCacheBytes: -1}, Config{})
		concurrentHTTP(t, f, 64, 1000)
		t.Logf("tiny model, 64 sessions × 1000 tokens, alone then together: %v; %+v", time.Since(start), f.eng.Stats())
		return
	}
	f, spawned := wasmFixture(t, engine.Config{PrefixCacheBytes: -1}, "")
	concurrentHTTP(t, f, 64, 1000)
	if n := spawned.Load(); n != 1+2*64 {
		t.Errorf("%d edge instances spawned, want %d (the shared one and one per request)", n, 1+2*64)
	}
	t.Logf("wazero edge, 64 sessions × 1000 tokens, alone then together: %v; %+v", time.Since(start), f.eng.Stats())
}
