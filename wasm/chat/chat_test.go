package chat

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/chat")

// Expected strings below are derived by hand from the rules of
// encoding_dsv4.py (spec §6.2).
func TestEncode(t *testing.T) {
	E := EOS
	cases := []struct {
		name string
		msgs []Message
		opts Options
		want string
	}{
		{"chat", []Message{{Role: "system", Content: "You are helpful."}, {Role: "user", Content: "Hi"}}, Options{},
			BOS + "You are helpful.<｜User｜>Hi<｜Assistant｜></think>"},
		{"thinking", []Message{{Role: "system", Content: "S"}, {Role: "user", Content: "Hi"}}, Options{Thinking: true},
			BOS + "S<｜User｜>Hi<｜Assistant｜><think>"},
		{"no bos", []Message{{Role: "user", Content: "Hi"}}, Options{NoBOS: true},
			"<｜User｜>Hi<｜Assistant｜></think>"},
		{"history chat", []Message{{Role: "user", Content: "q1"}, {Role: "assistant", Content: "a1", ReasoningContent: "r1"}, {Role: "user", Content: "q2"}}, Options{},
			BOS + "<｜User｜>q1<｜Assistant｜></think>a1" + E + "<｜User｜>q2<｜Assistant｜></think>"},
		{"history thinking drops reasoning", []Message{{Role: "user", Content: "q1"}, {Role: "assistant", Content: "a1", ReasoningContent: "r1"}, {Role: "user", Content: "q2"}}, Options{Thinking: true},
			BOS + "<｜User｜>q1<｜Assistant｜></think>a1" + E + "<｜User｜>q2<｜Assistant｜><think>"},
		{"keep thinking", []Message{{Role: "assistant", Content: "old answer", ReasoningContent: "old reasoning"}, {Role: "user", Content: "next"}}, Options{Thinking: true, KeepThinking: true},
			BOS + "old reasoning</think>old answer" + E + "<｜User｜>next<｜Assistant｜><think>"},
		{"keep thinking earlier user", []Message{{Role: "user", Content: "q1"}, {Role: "assistant", Content: "a1", ReasoningContent: "r1"}, {Role: "user", Content: "q2"}}, Options{Thinking: true, KeepThinking: true},
			BOS + "<｜User｜>q1<｜Assistant｜><think>r1</think>a1" + E + "<｜User｜>q2<｜Assistant｜><think>"},
		{"assistant after last user keeps reasoning", []Message{{Role: "user", Content: "q"}, {Role: "assistant", Content: "a", ReasoningContent: "r"}}, Options{Thinking: true},
			BOS + "<｜User｜>q<｜Assistant｜><think>r</think>a" + E},
		{"max effort", []Message{{Role: "user", Content: "solve it"}}, Options{Thinking: true, ReasoningEffort: "max"},
			BOS + reasoningEffortMax + "<｜User｜>solve it<｜Assistant｜><think>"},
		{"max effort chat mode ignored", []Message{{Role: "user", Content: "x"}}, Options{ReasoningEffort: "max"},
			BOS + "<｜User｜>x<｜Assistant｜></think>"},
		{"high effort", []Message{{Role: "user", Content: "x"}}, Options{Thinking: true, ReasoningEffort: "high"},
			BOS + "<｜User｜>x<｜Assistant｜><think>"},
		{"none effort", []Message{{Role: "user", Content: "answer directly"}}, Options{Thinking: true, ReasoningEffort: "none"},
			BOS + "<｜User｜>answer directly<｜Assistant｜></think>"},
		{"continue assistant", []Message{{Role: "user", Content: "write"}, {Role: "assistant", Content: "partial answer", WithoutEOS: true}}, Options{},
			BOS + "<｜User｜>write<｜Assistant｜></think>partial answer"},
		{"consecutive users merge", []Message{{Role: "user", Content: "a"}, {Role: "user", Content: "b"}}, Options{},
			BOS + "<｜User｜>a\n\nb<｜Assistant｜></think>"},
		{"tool results sorted by call order", []Message{
			{Role: "assistant", ToolCalls: []ToolCall{
				{ID: "second", Function: FunctionCall{Name: "second_tool", Arguments: "{}"}},
				{ID: "first", Function: FunctionCall{Name: "first_tool", Arguments: "{}"}}}},
			{Role: "tool", ToolCallID: "first", Content: "first result"},
			{Role: "tool", ToolCallID: "second", Content: "second result"}}, Options{},
			BOS + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"second_tool\">\n\n</｜DSML｜invoke>\n<｜DSML｜invoke name=\"first_tool\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + E +
				"<｜User｜><tool_result>second result</tool_result>\n\n<tool_result>first result</tool_result><｜Assistant｜></think>"},
		{"tool call arguments", []Message{
			{Role: "user", Content: "weather?"},
			{Role: "assistant", Content: "Let me check.", ToolCalls: []ToolCall{{ID: "c1", Function: FunctionCall{Name: "get_weather",
				Arguments: `{"city":"Paris","days":3,"opts":{"unit":"c","hourly":[1,2]},"note":"a\"b"}`}}}},
			{Role: "tool", ToolCallID: "c1", Content: `{"temp": 21}`},
			{Role: "user", Content: "thanks"}}, Options{},
			BOS + "<｜User｜>weather?<｜Assistant｜></think>Let me check.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n" +
				"<｜DSML｜parameter name=\"city\" string=\"true\">Paris</｜DSML｜parameter>\n" +
				"<｜DSML｜parameter name=\"days\" string=\"false\">3</｜DSML｜parameter>\n" +
				"<｜DSML｜parameter name=\"opts\" string=\"false\">{\"unit\": \"c\", \"hourly\": [1, 2]}</｜DSML｜parameter>\n" +
				"<｜DSML｜parameter name=\"note\" string=\"true\">a\"b</｜DSML｜parameter>\n" +
				"</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + E +
				"<｜User｜><tool_result>{\"temp\": 21}</tool_result>\n\nthanks<｜Assistant｜></think>"},
		{"invalid argument json becomes one string", []Message{{Role: "assistant", ToolCalls: []ToolCall{{Function: FunctionCall{Name: "f", Arguments: "not json"}}}}}, Options{},
			BOS + "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"arguments\" string=\"true\">not json</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + E},
		{"tool parts", []Message{{Role: "user", Content: "u"}, {Role: "tool", Parts: []Part{{Type: "text", Text: "t1"}, {Type: "image_url"}}}}, Options{},
			BOS + "<｜User｜>u\n\n<tool_result>t1\n\n[Unsupported image_url]</tool_result><｜Assistant｜></think>"},
		{"latest reminder", []Message{{Role: "system", Content: "s"}, {Role: "user", Content: "u"}, {Role: "latest_reminder", Content: "r"}}, Options{},
			BOS + "s<｜User｜>u<｜Assistant｜></think><｜latest_reminder｜>r"},
		{"developer dropped before last user", []Message{{Role: "developer", Content: "d"}, {Role: "assistant", Content: "a"}, {Role: "user", Content: "u"}}, Options{Thinking: true},
			BOS + "a" + E + "<｜User｜>u<｜Assistant｜><think>"},
		{"developer kept in chat mode", []Message{{Role: "developer", Content: "d"}, {Role: "user", Content: "u"}}, Options{},
			BOS + "<｜User｜>d<｜User｜>u<｜Assistant｜></think>"},
		{"task query", []Message{{Role: "user", Content: "x", Task: "query"}}, Options{},
			BOS + "<｜User｜>x<｜query｜>"},
		{"task action thinking", []Message{{Role: "user", Content: "x", Task: "action"}, {Role: "assistant", Content: "y"}}, Options{Thinking: true},
			BOS + "<｜User｜>x<｜Assistant｜><think><｜action｜>y" + E},
		{"response format", []Message{{Role: "system", Content: "s", ResponseFormat: json.RawMessage(`{"type":"json_schema","schema":{"b":1,"a":"é"}}`)}, {Role: "user", Content: "u"}}, Options{},
			BOS + "s\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n{\"type\": \"json_schema\", \"schema\": {\"b\": 1, \"a\": \"é\"}}<｜User｜>u<｜Assistant｜></think>"},
	}
	for _, c := range cases {
		got, err := Encode(c.msgs, c.opts)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
	}
}

// TestEncodeToolsGolden renders a conversation with tools (which force
// drop_thinking off) and compares it with testdata/chat/tools_thinking.txt.
// The golden file was produced by this encoder and checked by hand against
// the rules; the tools template part is the checkpoint's fixed text.
func TestEncodeToolsGolden(t *testing.T) {
	tool := json.RawMessage(`{"type":"function","function":{"name":"get_weather","description":"Get the weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`)
	msgs := []Message{
		{Role: "system", Content: "You are a helpful assistant.", Tools: []json.RawMessage{tool}},
		{Role: "user", Content: "Weather in Paris?"},
		{Role: "assistant", ReasoningContent: "Need the tool.", ToolCalls: []ToolCall{{ID: "call_1", Type: "function", Function: FunctionCall{Name: "get_weather", Arguments: `{"city": "Paris"}`}}}},
		{Role: "tool", ToolCallID: "call_1", Content: "21°C, sunny"},
	}
	got, err := Encode(msgs, Options{Thinking: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "testdata", "chat", "tools_thinking.txt")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// Spot checks that do not depend on the golden file.
	for _, frag := range []string{
		"You are a helpful assistant.\n\n## Tools\n\n",
		`{"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}`,
		"(triggered by <think>)",
		"<｜User｜>Weather in Paris?<｜Assistant｜><think>Need the tool.</think>\n\n<｜DSML｜tool_calls>",
		"<｜User｜><tool_result>21°C, sunny</tool_result><｜Assistant｜><think>",
	} {
		if !strings.Contains(got, frag) {
			t.Errorf("missing %q", frag)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		msgs []Message
		opts Options
		want string
	}{
		{[]Message{{Role: "robot"}}, Options{}, "unknown role"},
		{[]Message{{Role: "developer"}}, Options{}, "developer message needs content"},
		{[]Message{{Role: "user", Task: "dance"}}, Options{}, "invalid task"},
		{[]Message{{Role: "user"}}, Options{ReasoningEffort: "low"}, "reasoning effort"},
		{[]Message{{Role: "system", Tools: []json.RawMessage{json.RawMessage(`[1]`)}}}, Options{}, "not a JSON object"},
		{[]Message{{Role: "system", Tools: []json.RawMessage{json.RawMessage(`{"type":"function"}`)}}}, Options{}, "no \"function\""},
		{[]Message{{Role: "system", ResponseFormat: json.RawMessage(`{"a":`)}}, Options{}, "response_format"},
		{[]Message{{Role: "assistant", ToolCalls: []ToolCall{{Function: FunctionCall{Name: "f", Arguments: "[1]"}}}}}, Options{}, "JSON object"},
	}
	for _, c := range cases {
		if _, err := Encode(c.msgs, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Encode(%+v) error = %v, want %q", c.msgs, err, c.want)
		}
	}
}

func TestParseCompletion(t *testing.T) {
	text := "Let me look.</think>Checking.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n" +
		"<｜DSML｜parameter name=\"city\" string=\"true\">Pa\"ris</｜DSML｜parameter>\n" +
		"<｜DSML｜parameter name=\"days\" string=\"false\">[1, 2]</｜DSML｜parameter>\n" +
		"</｜DSML｜invoke>\n<｜DSML｜invoke name=\"noop\">\n\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + EOS
	m, err := ParseCompletion(text, true)
	if err != nil {
		t.Fatal(err)
	}
	if m.ReasoningContent != "Let me look." || m.Content != "Checking." || len(m.ToolCalls) != 2 {
		t.Fatalf("%+v", m)
	}
	if a := m.ToolCalls[0].Function.Arguments; a != `{"city": "Pa\"ris", "days": [1, 2]}` {
		t.Fatalf("arguments %s", a)
	}
	if m.ToolCalls[1].Function.Name != "noop" || m.ToolCalls[1].Function.Arguments != "{}" {
		t.Fatalf("second call %+v", m.ToolCalls[1])
	}

	// Round trip: render the parsed message back as history.
	m.WithoutEOS = false
	got, err := Encode([]Message{{Role: "user", Content: "q"}, m}, Options{Thinking: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := BOS + "<｜User｜>q<｜Assistant｜><think>" + text; got != want {
		t.Fatalf("round trip:\n got %q\nwant %q", got, want)
	}

	ok := []struct {
		text     string
		thinking bool
		content  string
	}{
		{"Paris" + EOS, false, "Paris"},
		{"Paris", false, "Paris"}, // EOS not decoded
		{"r</think>c" + EOS, true, "c"},
	}
	for _, c := range ok {
		m, err := ParseCompletion(c.text, c.thinking)
		if err != nil || m.Content != c.content {
			t.Errorf("ParseCompletion(%q) = %+v, %v", c.text, m, err)
		}
	}
	bad := []struct {
		text     string
		thinking bool
		want     string
	}{
		{"no end of thinking" + EOS, true, "</think>"},
		{"a" + EOS + "b", false, "after EOS"},
		{"a<think>b" + EOS, false, "special string"},
		{"x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>junk" + EOS, false, "after tool calls"},
		{"x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke nam=\"f\">\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + EOS, false, "tool name"},
		{"x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"maybe\">1</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + EOS, false, "parameter format"},
		{"x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>" + EOS, false, "duplicate"},
		{"x\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n", false, "unterminated"},
	}
	for _, c := range bad {
		if _, err := ParseCompletion(c.text, c.thinking); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCompletion(%q) error = %v, want %q", c.text, err, c.want)
		}
	}
}

func TestPyJSON(t *testing.T) {
	cases := map[string]string{
		`{"b":1,"a":[true,false,null,"x\ny"]}`: `{"b": 1, "a": [true, false, null, "x\ny"]}`,
		`"é\u0001/"`:                           `"é\u0001/"`,
		`[]`:                                   `[]`,
		` {} `:                                 `{}`,
	}
	for in, want := range cases {
		got, err := pyJSON([]byte(in))
		if err != nil || got != want {
			t.Errorf("pyJSON(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{`{"a":}`, `[1] 2`, ``} {
		if _, err := pyJSON([]byte(in)); err == nil {
			t.Errorf("pyJSON(%q) accepted", in)
		}
	}
}

func FuzzEncode(f *testing.F) {
	f.Add("user", "hi", "", "assistant", "a", "{\"x\":1}", true, "max", false)
	f.Add("tool", "r", "c1", "developer", "", "not json", false, "none", true)
	f.Add("latest_reminder", "", "", "system", "s", "[1]", true, "", false)
	f.Fuzz(func(t *testing.T, r1, c1, id, r2, c2, args string, thinking bool, effort string, keep bool) {
		msgs := []Message{
			{Role: r1, Content: c1, ToolCallID: id, Task: c2},
			{Role: r2, Content: c2, ReasoningContent: c1, ToolCalls: []ToolCall{{ID: id, Function: FunctionCall{Name: c1, Arguments: args}}},
				Tools: []json.RawMessage{json.RawMessage(args)}, ResponseFormat: json.RawMessage(args)},
			{Role: "user", Content: c1},
			{Role: "tool", ToolCallID: id, Parts: []Part{{Type: c2, Text: c1}}},
		}
		_, _ = Encode(msgs, Options{Thinking: thinking, ReasoningEffort: effort, KeepThinking: keep})
		_, _ = Encode(msgs[:1], Options{Thinking: thinking})
		_, _ = ParseCompletion(c1+args, thinking)
	})
}
