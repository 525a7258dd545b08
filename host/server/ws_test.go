package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/gorilla/websocket"
)

func dialWS(t *testing.T, f *fixture, header http.Header) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
	c, resp, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		code := 0
		if resp != nil {
			code = resp.StatusCode
		}
		t.Fatalf("dial: %v (%d)", err, code)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wsSend(t *testing.T, c *websocket.Conn, m protocol.Message) {
	t.Helper()
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.WriteMessage(websocket.BinaryMessage, b); err != nil {
		t.Fatal(err)
	}
}

func wsRecv(t *testing.T, c *websocket.Conn) protocol.Message {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	typ, b, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.BinaryMessage {
		t.Fatalf("frame type %d", typ)
	}
	m, err := protocol.Decode(b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

func hello(t *testing.T, c *websocket.Conn, mode protocol.Mode) *protocol.Welcome {
	wsSend(t, c, &protocol.Hello{MinVersion: 1, MaxVersion: 1, Mode: mode, Client: "test"})
	w, ok := wsRecv(t, c).(*protocol.Welcome)
	if !ok {
		t.Fatal("no welcome")
	}
	return w
}

func TestWebsocketHosted(t *testing.T) {
	f := fakeFixture(t)
	_, b := f.post(t, "/v1/completions", map[string]any{"prompt": "hello ws", "max_tokens": 12, "seed": 9, "temperature": 1, "ignore_eos": true})
	want := decode(t, b)["choices"].([]any)[0].(map[string]any)["text"].(string)

	c := dialWS(t, f, nil)
	w := hello(t, c, protocol.ModeHosted)
	if w.Vocab != 512 || w.Version != 1 || w.Model != "edgeseek" {
		t.Fatalf("welcome %+v", w)
	}
	wsSend(t, c, &protocol.Generate{ID: "a", Prompt: "hello ws", Sampling: protocol.SamplingParams{MaxTokens: 12, Seed: 9, Temperature: 1,
		StopTokens: nil, LogProbs: true, TopLogProbs: 2}})
	text, tokens := "", 0
	for {
		m := wsRecv(t, c)
		if tok, ok := m.(*protocol.Token); ok {
			if tok.Index != uint32(tokens) || tok.LogProb == nil || len(tok.Top) != 2 {
				t.Fatalf("token %+v", tok)
			}
			tokens++
			text += tok.Text
			continue
		}
		d, ok := m.(*protocol.Done)
		if !ok {
			t.Fatalf("unexpected %T %+v", m, m)
		}
		text += d.Text
		if d.Finish != protocol.FinishLength || d.Usage.CompletionTokens != 12 || d.Usage.PromptTokens != 8 {
			t.Fatalf("done %+v", d)
		}
		break
	}
	// The sampler honours EOS here (no ignore_eos on the wire): compare
	// only when the HTTP run did not stop early.
	if tokens != 12 || text != want {
		t.Fatalf("ws text %q (%d tokens), http %q", text, tokens, want)
	}
}

func TestWebsocketHostedCancel(t *testing.T) {
	r := enginetest.NewRunner()
	r.StepDelay = 2 * time.Millisecond
	f := newFixture(t, r, engine.Config{}, Config{})
	c := dialWS(t, f, nil)
	hello(t, c, protocol.ModeHosted)
	wsSend(t, c, &protocol.Generate{ID: "long", Prompt: "x", Sampling: protocol.SamplingParams{MaxTokens: 3000}})
	for i := 0; i < 3; i++ {
		if _, ok := wsRecv(t, c).(*protocol.Token); !ok {
			t.Fatal("want tokens")
		}
	}
	wsSend(t, c, &protocol.Cancel{ID: "long"})
	for {
		if d, ok := wsRecv(t, c).(*protocol.Done); ok {
			if d.Finish != protocol.FinishCancel || d.Usage.CompletionTokens >= 3000 {
				t.Fatalf("done %+v", d)
			}
			break
		}
	}
	if s := f.eng.Stats(); s.ReservedBytes != 0 {
		t.Fatalf("reserved %d after cancel", s.ReservedBytes)
	}
}

func TestWebsocketSplit(t *testing.T) {
	f := fakeFixture(t)
	c := dialWS(t, f, nil)
	hello(t, c, protocol.ModeSplit)
	wsSend(t, c, &protocol.Step{Seq: 1, Pos: 0, Tokens: []int32{0, 5, 6, 7}})
	l, ok := wsRecv(t, c).(*protocol.Logits)
	if !ok || l.Seq != 1 || l.Pos != 3 || len(l.F16) != 2*512 {
		t.Fatalf("logits %+v", l)
	}
	ref := enginetest.NewRunner()
	seq := ref.NewSequence()
	want, _ := ref.Forward(seq, []int{0, 5, 6, 7}, nil)
	got := protocol.DecodeFloat16(nil, l.F16)
	for i := range want {
		if d := got[i] - want[i]; d > 0.01 || d < -0.01 {
			t.Fatalf("logit %d: %v, want %v", i, got[i], want[i])
		}
	}
	wsSend(t, c, &protocol.Step{Seq: 2, Pos: 4, Tokens: []int32{9}, TopN: 3})
	l = wsRecv(t, c).(*protocol.Logits)
	if len(l.Top) != 3 || l.Pos != 4 || l.Top[0].Logit < l.Top[1].Logit {
		t.Fatalf("top %+v", l)
	}
	// Rewinding is refused with an error frame; the connection stays.
	wsSend(t, c, &protocol.Step{Seq: 3, Pos: 2, Tokens: []int32{9}})
	if e, ok := wsRecv(t, c).(*protocol.Error); !ok || e.Seq != 3 || e.Code != protocol.CodeInvalid || e.Fatal {
		t.Fatalf("rewind answer %+v", e)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for f.eng.Stats().ActiveSessions != 0 {
		if time.Now().After(deadline) {
			t.Fatal("split sequence not freed after disconnect")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWebsocketBadFrames(t *testing.T) {
	f := newFixture(t, enginetest.NewRunner(), engine.Config{}, Config{WSMaxMessage: 1024})
	for _, tc := range []struct {
		name  string
		typ   int
		frame func() []byte
		code  string
	}{
		{"text frame", websocket.TextMessage, func() []byte { return []byte("hi") }, protocol.CodeBadFrame},
		{"garbage", websocket.BinaryMessage, func() []byte { return []byte{0xc1, 0x00} }, protocol.CodeBadFrame},
		{"not hello", websocket.BinaryMessage, func() []byte {
			b, _ := protocol.Encode(&protocol.Cancel{ID: "x"})
			return b
		}, protocol.CodeInvalid},
		{"no common version", websocket.BinaryMessage, func() []byte {
			b, _ := protocol.Encode(&protocol.Hello{MinVersion: 90, MaxVersion: 99, Mode: protocol.ModeHosted})
			return b
		}, protocol.CodeVersion},
		{"oversize", websocket.BinaryMessage, func() []byte { return make([]byte, 4096) }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, f, nil)
			if err := c.WriteMessage(tc.typ, tc.frame()); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if tc.code != "" {
				_, b, err := c.ReadMessage()
				if err != nil {
					t.Fatalf("no error frame: %v", err)
				}
				m, err := protocol.Decode(b)
				e, ok := m.(*protocol.Error)
				if err != nil || !ok || e.Code != tc.code || !e.Fatal {
					t.Fatalf("got %+v %v, want fatal %s", m, err, tc.code)
				}
			}
			// Then the server closes.
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					break
				}
			}
		})
	}
	// Auth on the websocket: header or access_token query.
	fa := newFixture(t, enginetest.NewRunner(), engine.Config{}, Config{AuthToken: "tok"})
	ua := "ws" + strings.TrimPrefix(fa.srv.URL, "http") + "/ws"
	if _, resp, err := websocket.DefaultDialer.Dial(ua, nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated websocket accepted: %v", err)
	}
	ca, _, err := websocket.DefaultDialer.Dial(ua+"?access_token=tok", nil)
	if err != nil {
		t.Fatalf("token in query refused: %v", err)
	}
	ca.Close()
	// Origin check.
	u := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws"
	_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin accepted: %v", err)
	}
}
