// Package browser_test drives the playground in headless Chromium (chromedp)
// against a tiny random DeepSeek-V4 checkpoint served by host/server on a
// random loopback port. setup.sh installs Chromium and the Noto CJK and
// emoji fonts; without Chromium the tests skip and say why.
package browser_test

import (
	"bytes"
	"context"

	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	cdplog "github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/edgeseek/edgeseek/host/server"
	"github.com/edgeseek/edgeseek/kernels"
	"github.com/edgeseek/edgeseek/model"
	"github.com/edgeseek/edgeseek/model/checkpoint"
	"github.com/edgeseek/edgeseek/model/synth"
	"github.com/edgeseek/edgeseek/playground"
	"github.com/edgeseek/edgeseek/protocol"
	"github.com/edgeseek/edgeseek/wasm/tokenizer"
	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// corpus trains the tiny byte-level tokenizer.
const corpus = `Once upon a time there was a small model that lived in a browser.
It read the prompt, one token at a time, and wrote the next words.
The quick brown fox jumps over the lazy dog. Hello, world! How are you today?
你好，世界！今天天气很好。我们一起学习语言模型。
こんにちは、世界。今日はいい天気ですね。
안녕하세요 세계. 🌸🚀😀 emoji and symbols: → ✓ ★
`

var specials = []string{
	"<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>",
	"<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
}

// repoRoot is the module root (two levels up from this package).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// findChromium returns the browser's path, running setup.sh once when it
// is missing; it skips the test when Chromium cannot be installed.
func findChromium(t *testing.T) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	setup := filepath.Join(repoRoot(t), "playground", "browser_test", "setup.sh")
	out, err := exec.Command("sh", setup).CombinedOutput()
	if p, err2 := exec.LookPath("chromium"); err2 == nil {
		return p
	}
	t.Skipf("chromium is not installed and setup.sh could not install it (%v): %s", err, strings.TrimSpace(string(out)))
	return ""
}

// moduleDir returns a directory holding edge.wasm and wasm_exec.js:
// $EDGESEEK_EDGE_WASM_DIR when set (make test points it at build/wasm),
// else a fresh GOOS=js build of wasm/cmd/edge-js, so that the test always
// runs the module of the current tree.
func moduleDir(t *testing.T) string {
	root := repoRoot(t)
	if d := os.Getenv("EDGESEEK_EDGE_WASM_DIR"); d != "" {
		if !filepath.IsAbs(d) {
			d = filepath.Join(root, d)
		}
		return d
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, playground.ModuleFile), "./wasm/cmd/edge-js")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the edge module: %v\n%s", err, out)
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	glue, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, playground.GlueFile), glue, 0o644); err != nil {
		t.Fatal(err)
	}
	// The C plugins come from wasm/build.sh (they need clang).
	for _, f := range []string{playground.TokenizerFile, playground.SamplerFile} {
		b, err := os.ReadFile(filepath.Join(root, "build", "wasm", "plugins", f))
		if err != nil {
			t.Fatalf("%v: run wasm/build.sh first", err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// host is a running server: engine, websocket and playground.
type host struct {
	url  string
	stop func()
}

// startHost writes a tiny V4 checkpoint with a byte-level BPE tokenizer and
// serves it; assetDir "" serves the embedded module. With trace, /ws is
// traceWS instead of host/server's websocket.
func startHost(t *testing.T, assetDir string, trace bool) *host {
	t.Helper()
	cfg := synth.TinyConfig(checkpoint.ArchV4)
	tokJSON, err := tokenizer.BuildByteLevel(cfg.VocabSize-len(specials), []byte(corpus), specials)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tokJSON)
	if err != nil {
		t.Fatal(err)
	}
	cfg.BOS, _ = tok.TokenToID(specials[0])
	cfg.EOS, _ = tok.TokenToID(specials[1])
	dir := t.TempDir()
	if err := synth.Write(dir, cfg, 1, synth.Options{TokenizerJSON: tokJSON}); err != nil {
		t.Fatal(err)
	}
	ck, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	m, err := model.Load(*ck.Config, ck, kernels.NewCPU(2), model.ReferenceNumerics)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.NewModelRunner(m), &nativeedge.Bytes{Offset: 0, BOS: cfg.BOS}, engine.Config{ContextLimit: 512}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close() })
	const name = "tiny-v4"
	srv := server.New(server.Config{ModelName: name, KeepAlive: time.Second}, eng, zerolog.Nop())
	opt := playground.ForCheckpoint(ck)
	opt.ModelName, opt.ContextLimit, opt.AssetDir = name, eng.ContextLimit(), assetDir
	mux := http.NewServeMux()
	if trace {
		mux.Handle("/ws", &traceWS{m: m, name: name, maxContext: eng.ContextLimit()})
	} else {
		mux.Handle("/ws", srv)
	}
	mux.Handle("/healthz", srv)
	mux.Handle("/", playground.Handler(opt))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hs := &http.Server{Handler: mux, BaseContext: func(net.Listener) context.Context { return ctx }}
	done := make(chan struct{})
	go func() { hs.Serve(ln); close(done) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel() // ends the websocket handlers, which close their connections
		hs.Close()
		<-done
	}
	t.Cleanup(stop)
	return &host{url: "http://" + ln.Addr().String(), stop: stop}
}

// browser starts headless Chromium and records console errors.
type browser struct {
	ctx    context.Context
	errs   chan string
	cancel func()
}

func newBrowser(t *testing.T, chromium string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 900), chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("lang", "en-US"))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	errs := make(chan string, 100)
	listen := func(ev any) {
		var msg string
		switch ev := ev.(type) {
		case *cdpruntime.EventConsoleAPICalled:
			if ev.Type == cdpruntime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				msg = "console.error: " + strings.Join(parts, " ")
			}
		case *cdpruntime.EventExceptionThrown:
			msg = "exception: " + ev.ExceptionDetails.Text
			if ev.ExceptionDetails.Exception != nil {
				msg += " " + ev.ExceptionDetails.Exception.Description
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry != nil && ev.Entry.Level == cdplog.EntryLevelError {
				msg = fmt.Sprintf("log (%s): %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
			}
		}
		if msg != "" {
			select {
			case errs <- msg:
			default:
			}
		}
	}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(listen))
	b := &browser{ctx: ctx, errs: errs, cancel: func() { cancel(); acancel() }}
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, cdplog.Enable, cdp.Empty{})
		return err
	}))
	if err != nil {
		b.cancel()
		t.Fatalf("starting chromium: %v", err)
	}
	t.Cleanup(b.cancel)
	return b
}

// consoleErrors drains the errors recorded so far.
func (b *browser) consoleErrors() []string {
	var out []string
	for {
		select {
		case m := <-b.errs:
			out = append(out, m)
		default:
			return out
		}
	}
}

func (b *browser) run(t *testing.T, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// evalInto evaluates js into *out.
func evalInto[T any](t *testing.T, b *browser, js string, out *T) {
	t.Helper()
	*out = eval[T](t, b, js)
}

// eval evaluates a JavaScript expression into a value of type T.
func eval[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %.60q: %v", js, err)
	}
	return v
}

// waitJS polls a JavaScript expression until it is true.
func (b *browser) waitJS(t *testing.T, what, js string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			status, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.getElementById('status').dataset.state + ': ' + document.getElementById('status-text').textContent + ' | banner: ' + document.getElementById('banner-text').textContent`))
			t.Fatalf("timed out after %v waiting for %s (status %s)", timeout, what, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

const (
	jsTokens   = `document.querySelectorAll('#output .turn:last-child .tok').length`
	jsOutput   = `[...document.querySelectorAll('#output .turn:last-child .body .tok')].map(e => e.textContent).join('')`
	jsFinish   = `document.body.dataset.run === 'idle' && document.getElementById('stat-finish').textContent`
	jsReady    = `document.getElementById('status').dataset.state === 'ready'`
	jsIdleDone = `document.body.dataset.run === 'idle' && document.getElementById('stat-finish').textContent !== '…'`
)

// setup fills the settings for a deterministic completion.
func setSettings(t *testing.T, b *browser, mode string, seed string, maxTokens int) {
	t.Helper()
	var ok bool
	evalInto(t, b, fmt.Sprintf(`(() => {
		document.getElementById('mode-%s').checked = true;
		document.getElementById('mode-%s').dispatchEvent(new Event('change'));
		document.getElementById('s-seed').value = %q;
		document.getElementById('s-max_tokens').value = %d;
		document.getElementById('s-temperature').value = 0.9;
		document.getElementById('s-top_k').value = 0;
		for (const id of ['s-temperature', 's-top_k']) document.getElementById(id).dispatchEvent(new Event('input'));
		return true;
	})()`, mode, mode, seed, maxTokens), &ok)
}

func generate(t *testing.T, b *browser, prompt string) {
	t.Helper()
	b.run(t, 10*time.Second, chromedp.SetValue(chromedp.ID("prompt"), prompt), chromedp.Click(chromedp.ID("btn-generate")))
}

// finished generates and waits for the end; it returns the output text and
// checks that tokens appeared while the generation was still running.
func finished(t *testing.T, b *browser, prompt string) (text, finish string) {
	t.Helper()
	generate(t, b, prompt)
	b.waitJS(t, "the generation to end", jsIdleDone, 60*time.Second)
	evalInto(t, b, jsOutput, &text)
	evalInto(t, b, `document.getElementById('stat-finish').textContent`, &finish)
	return text, finish
}

func TestPlayground(t *testing.T) {
	chromium := findChromium(t)
	h := startHost(t, moduleDir(t), false)
	b := newBrowser(t, chromium)
	b.run(t, 30*time.Second, chromedp.Navigate(h.url+"/"))
	b.waitJS(t, "the page to be ready", jsReady, 60*time.Second)

	t.Run("loads without console errors", func(t *testing.T) {
		var where, title, models, plugins string
		evalInto(t, b, `edgeseekPlayground.where`, &where)
		// The page tokenizes and samples with the host's C modules.
		evalInto(t, b, `edgeseekPlayground.edge.plugins.join(',')`, &plugins)
		if plugins != "tokenizer,sampler" {
			t.Errorf("C plugins in use: %q, want tokenizer,sampler", plugins)
		}
		evalInto(t, b, `document.title`, &title)
		evalInto(t, b, `document.getElementById('model-info').textContent`, &models)
		if where != "split" || title != "EdgeSeek Playground" {
			t.Errorf("where %q, title %q", where, title)
		}
		for _, want := range []string{"DeepSeek-V4", "Parameters", "CSA", "HCA", "per token"} {
			if !strings.Contains(models, want) {
				t.Errorf("model panel lacks %q: %s", want, models)
			}
		}
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors on load:\n%s", strings.Join(errs, "\n"))
		}
	})

	t.Run("streams tokens", func(t *testing.T) {
		setSettings(t, b, "completion", "7", 48)
		generate(t, b, "Once upon a time")
		// Tokens must show up while the generation runs, not only at the end.
		b.waitJS(t, "tokens while running", `document.body.dataset.run === 'running' && `+jsTokens+` >= 2`, 30*time.Second)
		var rate string
		b.waitJS(t, "a live decode rate", `document.getElementById('stat-decode').textContent !== '–'`, 30*time.Second)
		evalInto(t, b, `document.getElementById('stat-decode').textContent`, &rate)
		b.waitJS(t, "the end", jsIdleDone, 60*time.Second)
		var n int
		var finish, ctx string
		evalInto(t, b, jsTokens, &n)
		evalInto(t, b, `document.getElementById('stat-finish').textContent`, &finish)
		evalInto(t, b, `document.getElementById('stat-ctx').textContent`, &ctx)
		if n == 0 || (finish != "length" && finish != "stop") {
			t.Errorf("%d tokens, finish %q", n, finish)
		}
		t.Logf("%d tokens, decode %s tok/s while streaming, context %s", n, rate, ctx)
	})

	t.Run("C tokenizer agrees with the Go edge", func(t *testing.T) {
		// The page's C tokenizer against the Go edge's own tokenize and
		// chat encoding, in the same page, on text with every kind of piece.
		var agree string
		evalInto(t, b, `(() => {
			const e = edgeseekPlayground.edge, h = edgeseekPlayground.session;
			const text = "Once upon a time, 12345 ½ 世界! 🙂 \n\n\t  func f() { return x } <｜end▁of▁sentence｜> done";
			const viaC = e.tokenize(h, text).join(','), viaGo = (e.call('edge_tokenize', { handle: h, text }).ids || []).join(',');
			const msgs = [{ role: 'user', content: text }];
			const chatC = e.chatEncode(h, msgs, {}).ids.join(','), chatGo = e.call('edge_chat_encode', { handle: h, messages: msgs, options: {}, tokenize: true }).ids.join(',');
			return viaC === viaGo && chatC === chatGo && viaC.length > 10 ? 'yes' : 'C ' + viaC + ' / Go ' + viaGo + ' | chat C ' + chatC + ' / Go ' + chatGo;
		})()`, &agree)
		if agree != "yes" {
			t.Errorf("the C tokenizer and the Go edge disagree: %s", agree)
		}
	})

	t.Run("same seed same text", func(t *testing.T) {
		setSettings(t, b, "completion", "1234", 24)
		a, _ := finished(t, b, "The quick brown fox")
		c, _ := finished(t, b, "The quick brown fox")
		if a == "" || a != c {
			t.Errorf("seed 1234 gave %q then %q", a, c)
		}
		setSettings(t, b, "completion", "99", 24)
		d, _ := finished(t, b, "The quick brown fox")
		t.Logf("seed 1234: %q; seed 99: %q", a, d)
	})

	t.Run("stop and continue", func(t *testing.T) {
		setSettings(t, b, "completion", "5", 400)
		generate(t, b, "Hello, world!")
		b.waitJS(t, "some tokens", jsTokens+` >= 3`, 30*time.Second)
		b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("btn-stop")))
		b.waitJS(t, "the stop", jsIdleDone, 20*time.Second)
		var n1, n2 int
		var finish string
		evalInto(t, b, jsTokens, &n1)
		evalInto(t, b, `document.getElementById('stat-finish').textContent`, &finish)
		time.Sleep(500 * time.Millisecond)
		evalInto(t, b, jsTokens, &n2)
		if finish != "cancel" || n1 != n2 || n1 >= 400 {
			t.Fatalf("after Stop: finish %q, %d then %d tokens", finish, n1, n2)
		}
		b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("btn-continue")))
		b.waitJS(t, "more tokens", jsTokens+fmt.Sprintf(` > %d`, n1+2), 30*time.Second)
		b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("btn-stop")))
		b.waitJS(t, "the second stop", jsIdleDone, 20*time.Second)
	})

	t.Run("CJK and emoji round trip", func(t *testing.T) {
		const prompt = "你好，世界！こんにちは 🌸🚀 안녕"
		setSettings(t, b, "completion", "3", 16)
		_, finish := finished(t, b, prompt)
		var echo string
		evalInto(t, b, `document.querySelector('#output .prompt-echo').textContent`, &echo)
		if echo != prompt || finish == "error" {
			t.Errorf("prompt echo %q (finish %q), want %q", echo, finish, prompt)
		}
		// The fonts must render the characters: each glyph has a width.
		var widths []float64
		evalInto(t, b, `(() => { const c = document.createElement('canvas').getContext('2d'); c.font = '20px ' + getComputedStyle(document.getElementById('output')).fontFamily;
			return ['你','こ','🌸','🚀','안'].map(ch => c.measureText(ch).width); })()`, &widths)
		for i, w := range widths {
			if w < 10 {
				t.Errorf("glyph %d has width %v: font missing?", i, w)
			}
		}
		// Chat mode round-trips through the chat encoder too.
		setSettings(t, b, "chat", "3", 8)
		finished(t, b, prompt)
		var user string
		evalInto(t, b, `[...document.querySelectorAll('#output .turn.user .body')].at(-1).textContent`, &user)
		if user != prompt {
			t.Errorf("chat user turn %q", user)
		}
		// Thinking on: the reasoning goes into its own block.
		b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("thinking")))
		_, finish = finished(t, b, "Why is the sky blue? 🌈")
		reasoning := eval[string](t, b, `[...document.querySelectorAll('#output .turn.assistant .reasoning')].at(-1).textContent`)
		b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("thinking")))
		if finish == "error" || reasoning == "" {
			t.Errorf("thinking: finish %q, reasoning %q", finish, reasoning)
		}
	})

	t.Run("attention and mHC views", func(t *testing.T) {
		setSettings(t, b, "completion", "11", 12)
		finished(t, b, "Once upon a time there was a small model that lived in a browser. It read the prompt")
		var csaState, mhcState string
		var hostCSA, hostMHC bool
		evalInto(t, b, `document.getElementById('csa-canvas').dataset.state`, &csaState)
		evalInto(t, b, `document.getElementById('mhc-canvas').dataset.state`, &mhcState)
		evalInto(t, b, `!!(edgeseekPlayground.records.at(-1)?.csa?.length)`, &hostCSA)
		evalInto(t, b, `!!(edgeseekPlayground.records.at(-1)?.mhc?.length)`, &hostMHC)
		var welcome map[string]any
		evalInto(t, b, `edgeseekPlayground.welcome`, &welcome)
		wantCSA := hostCSA || welcome["csa_layers"] != nil
		wantMHC := hostMHC || welcome["mhc_layers"] != nil
		if (wantCSA && csaState != "data") || (wantMHC && mhcState != "data") {
			t.Errorf("views: csa %q, mhc %q (host sends csa %v, mhc %v)", csaState, mhcState, hostCSA, hostMHC)
		}
		if !wantCSA || !wantMHC {
			t.Logf("the host sent no csa (%v) / mhc (%v) extras: the views drew their placeholders", hostCSA, hostMHC)
		}
		for _, id := range []string{"csa-canvas", "mhc-canvas"} {
			var painted int
			evalInto(t, b, fmt.Sprintf(`(() => { const c = document.getElementById(%q); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
				let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()`, id), &painted)
			if painted < 50 {
				t.Errorf("%s: %d painted pixels", id, painted)
			}
		}
		var selected string
		evalInto(t, b, `document.getElementById('csa-canvas').dataset.selected || ''`, &selected)
		t.Logf("csa view: %s, %s selected cells; mhc view: %s", csaState, selected, mhcState)
	})

	t.Run("token hover", func(t *testing.T) {
		var pos []float64
		evalInto(t, b, `(() => { const e = [...document.querySelectorAll('#output .tok')].find(e => e.getBoundingClientRect().width > 3);
			const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()`, &pos)
		b.run(t, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pos[0], pos[1]))
		b.waitJS(t, "the tooltip", `!document.getElementById('tooltip').hidden && document.getElementById('tooltip').textContent.includes('%')`, 5*time.Second)
		var rows int
		evalInto(t, b, `document.querySelectorAll('#tooltip tr').length`, &rows)
		if rows < 2 {
			t.Errorf("tooltip shows %d alternatives", rows)
		}
	})

	t.Run("screenshot of a finished generation", func(t *testing.T) {
		b.run(t, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 5))
		setSettings(t, b, "chat", "21", 40)
		finished(t, b, "Hello! 你好 🌸 Tell me a story about a fox.")
		sctx, scancel := context.WithTimeout(b.ctx, 20*time.Second)
		shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		scancel()
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(os.TempDir(), "edgeseek-playground-test")
		os.MkdirAll(dir, 0o755)
		path := filepath.Join(dir, "finished-generation.png")
		if err := os.WriteFile(path, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatal(err)
		}
		if n := distinctColours(img); n < 64 {
			t.Errorf("screenshot %s has only %d distinct colours", path, n)
		} else {
			t.Logf("screenshot %s: %v, %d distinct colours", path, img.Bounds().Size(), n)
		}
		if errs := b.consoleErrors(); len(errs) > 0 {
			t.Errorf("console errors while generating:\n%s", strings.Join(errs, "\n"))
		}
	})

	t.Run("refused: too long", func(t *testing.T) {
		setSettings(t, b, "completion", "1", 8)
		generate(t, b, strings.Repeat("龘鬱", 300))
		b.waitJS(t, "the refusal", `document.getElementById('status').dataset.state === 'refused'`, 20*time.Second)
		text := eval[string](t, b, `document.getElementById('status-text').textContent`)
		if !strings.Contains(text, "too long") {
			t.Errorf("status %q", text)
		}
		b.waitJS(t, "idle", jsIdleDone, 10*time.Second)
	})

	t.Run("console listener works", func(t *testing.T) {
		b.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`console.error('probe')`))
		time.Sleep(200 * time.Millisecond)
		if errs := b.consoleErrors(); len(errs) != 1 || !strings.Contains(errs[0], "probe") {
			t.Errorf("the console listener saw %q", errs)
		}
	})

	t.Run("host down", func(t *testing.T) {
		h.stop()
		b.waitJS(t, "the host-unavailable state", `document.getElementById('status').dataset.state === 'unavailable'`, 20*time.Second)
		var text string
		var disabled bool
		evalInto(t, b, `document.getElementById('status-text').textContent`, &text)
		evalInto(t, b, `document.getElementById('btn-generate').disabled`, &disabled)
		if !strings.Contains(text, "unavailable") || !disabled {
			t.Errorf("status %q, generate disabled %v", text, disabled)
		}
	})
}

// TestHostedFallback serves the page without the edge module: the page must
// say so, offer hosted mode, and stream tokens from the host in it.
func TestHostedFallback(t *testing.T) {
	chromium := findChromium(t)
	h := startHost(t, t.TempDir(), false)
	b := newBrowser(t, chromium)
	b.run(t, 30*time.Second, chromedp.Navigate(h.url+"/"))
	b.waitJS(t, "the module failure banner", `!document.getElementById('banner').hidden && !document.getElementById('banner-action').hidden`, 30*time.Second)
	var text string
	evalInto(t, b, `document.getElementById('banner-text').textContent`, &text)
	if !strings.Contains(text, "edge module could not be loaded") {
		t.Errorf("banner %q", text)
	}
	b.consoleErrors() // the 404 of edge.wasm is expected here
	b.run(t, 5*time.Second, chromedp.Click(chromedp.ID("banner-action")))
	b.waitJS(t, "hosted mode", jsReady+` && edgeseekPlayground.where === 'hosted'`, 30*time.Second)
	setSettings(t, b, "completion", "8", 20)
	generate(t, b, "Hello")
	b.waitJS(t, "hosted tokens", jsTokens+` >= 2`, 30*time.Second)
	b.waitJS(t, "the end", jsIdleDone, 60*time.Second)
	var finish string
	evalInto(t, b, `document.getElementById('stat-finish').textContent`, &finish)
	if finish == "error" {
		var banner string
		evalInto(t, b, `document.getElementById('banner-text').textContent`, &banner)
		t.Errorf("hosted generation failed: %s", banner)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors in hosted mode:\n%s", strings.Join(errs, "\n"))
	}
}

func distinctColours(img image.Image) int {
	seen := map[uint32]struct{}{}
	r := img.Bounds()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			cr, cg, cb, _ := img.At(x, y).RGBA()
			seen[(cr>>8)<<16|(cg>>8)<<8|cb>>8] = struct{}{}
		}
	}
	return len(seen)
}

// traceWS is a minimal split-mode host that runs the model itself with a
// model.Trace, so that its logits carry the csa and mhc extras the page
// draws (host/server does not fill them yet). One connection at a time.
type traceWS struct {
	m          *model.Model
	name       string
	maxContext int
	mu         sync.Mutex
}

func (h *traceWS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	go func() { <-r.Context().Done(); conn.Close() }()
	h.mu.Lock()
	defer h.mu.Unlock()
	cfg := h.m.Config
	var codec *protocol.Codec
	st := h.m.NewState()
	send := func(m protocol.Message) error {
		b, err := codec.Encode(m)
		if err != nil {
			return err
		}
		return conn.WriteMessage(websocket.BinaryMessage, b)
	}
	for {
		_, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		var msg protocol.Message
		if codec == nil {
			msg, err = protocol.Decode(data)
		} else {
			msg, err = codec.Decode(data)
		}
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *protocol.Hello:
			v, err := protocol.Negotiate(m)
			if err != nil {
				return
			}
			codec, _ = protocol.NewCodec(v)
			csa := 0
			for _, r := range cfg.CompressRatio[:cfg.Layers] {
				if r == 4 {
					csa++
				}
			}
			send(&protocol.Welcome{Version: v, Mode: m.Mode, Model: h.name, Vocab: uint32(cfg.VocabSize),
				MaxContext: uint32(h.maxContext), CSALayers: uint32(csa), MHCLayers: uint32(cfg.Layers)})
		case *protocol.Step:
			if m.Pos == 0 {
				st = h.m.NewState()
			} else if int(m.Pos) != st.Pos {
				send(&protocol.Error{Seq: m.Seq, Code: protocol.CodeInvalid, Message: "position"})
				continue
			}
			tokens := make([]int, len(m.Tokens))
			for i, id := range m.Tokens {
				tokens[i] = int(id)
			}
			var tr model.Trace
			logits, err := h.m.Forward(st, model.Input{Tokens: tokens}, model.Options{Trace: &tr})
			if err != nil {
				send(&protocol.Error{Seq: m.Seq, Code: protocol.CodeInternal, Message: err.Error()})
				continue
			}
			out := &protocol.Logits{Seq: m.Seq, Pos: uint32(st.Pos - 1), F16: protocol.EncodeFloat16(logits)}
			if m.WantCSA {
				for l, sel := range tr.Selected {
					c := protocol.CSASelection{Layer: uint16(l)}
					for _, p := range sel {
						c.Positions = append(c.Positions, int32(p))
					}
					out.CSA = append(out.CSA, c)
				}
				sort.Slice(out.CSA, func(i, j int) bool { return out.CSA[i].Layer < out.CSA[j].Layer })
			}
			if m.WantMHC {
				for l, c := range tr.Comb {
					if len(c) == 16 {
						mm := protocol.MHCMatrix{Layer: uint16(l)}
						copy(mm.M[:], c)
						out.MHC = append(out.MHC, mm)
					}
				}
				sort.Slice(out.MHC, func(i, j int) bool { return out.MHC[i].Layer < out.MHC[j].Layer })
			}
			if err := send(out); err != nil {
				return
			}
		}
	}
}

// TestInsideViews checks the indexer strips and mHC heatmaps against real
// trace data of the tiny model.
func TestInsideViews(t *testing.T) {
	chromium := findChromium(t)
	h := startHost(t, moduleDir(t), true)
	b := newBrowser(t, chromium)
	b.run(t, 30*time.Second, chromedp.Navigate(h.url+"/"))
	b.waitJS(t, "the page to be ready", jsReady, 60*time.Second)
	setSettings(t, b, "completion", "17", 16)
	finished(t, b, "Once upon a time there was a small model that lived in a browser. It read the prompt, one token at a time, and wrote the next words.")
	var csaState, mhcState, selected, layers string
	evalInto(t, b, `document.getElementById('csa-canvas').dataset.state`, &csaState)
	evalInto(t, b, `document.getElementById('mhc-canvas').dataset.state`, &mhcState)
	evalInto(t, b, `document.getElementById('csa-canvas').dataset.selected`, &selected)
	evalInto(t, b, `document.getElementById('mhc-canvas').dataset.layers`, &layers)
	if csaState != "data" || mhcState != "data" || selected == "0" || layers == "0" {
		t.Errorf("csa %s (%s selected), mhc %s (%s layers)", csaState, selected, mhcState, layers)
	}
	// Hovering an earlier token shows its own pictures.
	pos := eval[[]float64](t, b, `(() => { const e = [...document.querySelectorAll('#output .tok')].find(e => e.getBoundingClientRect().width > 3);
		const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2, Number(e.dataset.i) + 1]; })()`)
	b.run(t, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, pos[0], pos[1]))
	b.waitJS(t, "the hovered token's pictures", fmt.Sprintf(`document.getElementById('inside-token').textContent.startsWith('token %d ')`, int(pos[2])), 5*time.Second)
	b.run(t, 5*time.Second, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, 5, 5))
	sctx, scancel := context.WithTimeout(b.ctx, 20*time.Second)
	shot, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(os.TempDir(), "edgeseek-playground-test")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "inside-views.png"), shot, 0o644)
	b.run(t, 5*time.Second, chromedp.Evaluate[chromedp.Void](`document.getElementById('panel-model').scrollIntoView()`))
	sctx, scancel = context.WithTimeout(b.ctx, 20*time.Second)
	shot, err = chromedp.Run(sctx, chromedp.Screenshot(chromedp.ID("panel-model")))
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "model-panel.png"), shot, 0o644)
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
	t.Logf("csa: %s selected cells over %s; mhc: %s layers", selected, csaState, layers)
}
