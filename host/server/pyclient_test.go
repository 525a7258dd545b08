package server

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgeseek/edgeseek/host/engine"
	"github.com/edgeseek/edgeseek/host/engine/enginetest"
	"github.com/edgeseek/edgeseek/host/engine/nativeedge"
	"github.com/rs/zerolog"
)

// openAIPython finds a Python that can import the openai client.
func openAIPython(root string) string {
	cands := []string{os.Getenv("EDGESEEK_OPENAI_PYTHON"), filepath.Join(root, "build/openai-venv/bin/python"), "python3"}
	for _, p := range cands {
		if p == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := exec.CommandContext(ctx, p, "-c", "import openai").Run()
		cancel()
		if err == nil {
			return p
		}
	}
	return ""
}

func TestOpenAIPythonClient(t *testing.T) {
	root, _ := filepath.Abs("../..")
	py := openAIPython(root)
	if py == "" {
		t.Skip("no Python with the openai client (pip install -r tools/openai-client-test/requirements.txt, or set EDGESEEK_OPENAI_PYTHON); skipping the official-client check")
	}
	r := enginetest.NewRunner()
	c := r.Config()
	eng, err := engine.New(r, nativeedge.NewBytes(c.BOS, c.EOS), engine.Config{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Config{}, eng, zerolog.Nop()).ServeListener(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	tctx, tcancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer tcancel()
	cmd := exec.CommandContext(tctx, py, filepath.Join(root, "tools/openai-client-test/client_test.py"),
		"--base-url", "http://"+ln.Addr().String()+"/v1")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil || !strings.Contains(string(out), "all passed") {
		t.Fatalf("python client: %v", err)
	}
}
