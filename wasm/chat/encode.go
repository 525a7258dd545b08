// Package chat renders DeepSeek-V4 conversations into prompt strings and
// parses completions back into messages, following the rules of the
// official encoding/encoding_dsv4.py (spec §6.2). The fixed prompt texts
// are data files (see SOURCE.md).
package chat

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Special strings of the DeepSeek-V4 vocabulary used by the encoding.
const (
	BOS            = "<｜begin▁of▁sentence｜>"
	EOS            = "<｜end▁of▁sentence｜>"
	UserToken      = "<｜User｜>"
	AssistantToken = "<｜Assistant｜>"
	ReminderToken  = "<｜latest_reminder｜>"
	ThinkStart     = "<think>"
	ThinkEnd       = "</think>"
	DSML           = "｜DSML｜"
)

// taskTokens maps a message's quick-instruction task to its special token.
var taskTokens = map[string]string{
	"action":    "<｜action｜>",
	"query":     "<｜query｜>",
	"authority": "<｜authority｜>",
	"domain":    "<｜domain｜>",
	"title":     "<｜title｜>",
	"read_url":  "<｜read_url｜>",
}

//go:embed tools_template.txt
var toolsTemplate string

//go:embed reasoning_effort_max.txt
var reasoningEffortMax string

// Role names accepted in Message.Role.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleDeveloper = "developer"
	RoleAssistant = "assistant"
	RoleTool      = "tool"
	RoleReminder  = "latest_reminder"
)

// FunctionCall is the function part of an OpenAI tool call.
type FunctionCall struct {
	Name string `json:"name"`
	// Arguments is a JSON object text, as in the OpenAI API.
	Arguments string `json:"arguments"`
}

// ToolCall is an OpenAI-style tool call made by the assistant.
type ToolCall struct {
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function FunctionCall `json:"function"`
}

// Part is one element of a list-valued tool message content (OpenAI
// content parts); only "text" parts are rendered, others become
// "[Unsupported <type>]".
type Part struct {
	Type string `json:"type"`
	Text string `json:"text,omitempty"`
}

// Message is one chat message in OpenAI shape, plus the DeepSeek fields.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content,omitempty"`
	// Parts, for a tool message, replaces Content with content parts.
	Parts            []Part     `json:"parts,omitempty"`
	ReasoningContent string     `json:"reasoning_content,omitempty"`
	ToolCalls        []ToolCall `json:"tool_calls,omitempty"`
	ToolCallID       string     `json:"tool_call_id,omitempty"`
	// Tools (system or developer messages) are OpenAI tool definitions,
	// {"type":"function","function":{...}}, kept raw so that key order
	// survives into the prompt.
	Tools []json.RawMessage `json:"tools,omitempty"`
	// ResponseFormat (system or developer) is a JSON schema object.
	ResponseFormat json.RawMessage `json:"response_format,omitempty"`
	// Task is a quick-instruction task: action, query, authority, domain,
	// title or read_url.
	Task string `json:"task,omitempty"`
	// WithoutEOS leaves the EOS off an assistant message (to continue it).
	WithoutEOS bool `json:"wo_eos,omitempty"`
}

// Options selects the encoding mode.
type Options struct {
	// Thinking selects thinking mode ("thinking"); false is chat mode.
	Thinking bool
	// ReasoningEffort is "", "high", "max" or "none". "high" renders like
	// "", "max" adds the fixed maximum-effort paragraph in thinking mode,
	// and "none" turns thinking mode off (as serving stacks map it).
	ReasoningEffort string
	// KeepThinking disables drop_thinking (the reference default is to drop
	// the reasoning of turns before the last user message). Tools in any
	// message force it on, as in the reference.
	KeepThinking bool
	// NoBOS leaves the BOS string off the start of the prompt.
	NoBOS bool
}

// block is a content block of a merged user message.
type block struct {
	kind      string // "text" or "tool_result"
	text      string
	toolUseID string
	parts     []Part // tool result given as parts
	hasParts  bool
}

// msg is the internal form after tool messages are merged into users.
type msg struct {
	Message
	blocks    []block
	hasBlocks bool
	dropRC    bool // reasoning dropped by drop_thinking
}

// Encode renders msgs into the prompt string (with the BOS string at the
// start unless opts.NoBOS). Tokenize the result without adding special
// tokens. It returns an error for unknown roles, tasks or reasoning
// efforts, an empty developer message, and malformed tool JSON.
func Encode(msgs []Message, opts Options) (string, error) {
	thinking := opts.Thinking
	switch opts.ReasoningEffort {
	case "", "high", "max":
	case "none":
		thinking = false
	default:
		return "", fmt.Errorf("chat: invalid reasoning effort %q (want none, high or max)", opts.ReasoningEffort)
	}
	for i, m := range msgs {
		switch m.Role {
		case RoleSystem, RoleUser, RoleDeveloper, RoleAssistant, RoleTool, RoleReminder:
		default:
			return "", fmt.Errorf("chat: message %d: unknown role %q", i, m.Role)
		}
		if m.Task != "" {
			if _, ok := taskTokens[m.Task]; !ok {
				return "", fmt.Errorf("chat: message %d: invalid task %q", i, m.Task)
			}
		}
	}
	full := mergeTools(msgs)
	sortToolResults(full)
	drop := !opts.KeepThinking
	for _, m := range full {
		if len(m.Tools) > 0 {
			drop = false
		}
	}
	if thinking && drop {
		full = dropThinking(full)
	}
	var sb strings.Builder
	if !opts.NoBOS {
		sb.WriteString(BOS)
	}
	for i := range full {
		if err := render(&sb, i, full, thinking, drop, opts.ReasoningEffort == "max"); err != nil {
			return "", err
		}
	}
	return sb.String(), nil
}

// mergeTools folds tool messages into user messages as tool_result blocks
// and turns user text into text blocks; consecutive user/tool messages end
// up in one user message (unless it carries a task).
func mergeTools(in []Message) []msg {
	var out []msg
	lastUserWithBlocks := func() bool {
		return len(out) > 0 && out[len(out)-1].Role == RoleUser && out[len(out)-1].hasBlocks
	}
	for _, m := range in {
		switch m.Role {
		case RoleTool:
			b := block{kind: "tool_result", text: m.Content, toolUseID: m.ToolCallID, parts: m.Parts, hasParts: m.Parts != nil}
			if lastUserWithBlocks() {
				out[len(out)-1].blocks = append(out[len(out)-1].blocks, b)
			} else {
				out = append(out, msg{Message: Message{Role: RoleUser}, blocks: []block{b}, hasBlocks: true})
			}
		case RoleUser:
			b := block{kind: "text", text: m.Content}
			if lastUserWithBlocks() && out[len(out)-1].Task == "" {
				out[len(out)-1].blocks = append(out[len(out)-1].blocks, b)
			} else {
				nm := Message{Role: RoleUser, Content: m.Content, Task: m.Task, WithoutEOS: m.WithoutEOS}
				out = append(out, msg{Message: nm, blocks: []block{b}, hasBlocks: true})
			}
		default:
			out = append(out, msg{Message: m})
		}
	}
	return out
}

// sortToolResults orders the tool results of each user message like the
// preceding assistant's tool calls (stable; unknown ids sort as 0).
func sortToolResults(ms []msg) {
	var order map[string]int
	for i := range ms {
		m := &ms[i]
		if m.Role == RoleAssistant && len(m.ToolCalls) > 0 {
			order = map[string]int{}
			for j, tc := range m.ToolCalls {
				if tc.ID != "" {
					order[tc.ID] = j
				}
			}
			continue
		}
		if m.Role != RoleUser || len(m.blocks) == 0 || len(order) == 0 {
			continue
		}
		var tools []block
		for _, b := range m.blocks {
			if b.kind == "tool_result" {
				tools = append(tools, b)
			}
		}
		if len(tools) < 2 {
			continue
		}
		slices.SortStableFunc(tools, func(a, b block) int { return order[a.toolUseID] - order[b.toolUseID] })
		k := 0
		for j := range m.blocks {
			if m.blocks[j].kind == "tool_result" {
				m.blocks[j] = tools[k]
				k++
			}
		}
	}
}

// lastUserIndex returns the index of the last user or developer message.
func lastUserIndex(ms []msg) int {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Role == RoleUser || ms[i].Role == RoleDeveloper {
			return i
		}
	}
	return -1
}

// dropThinking removes, before the last user/developer message, assistant
// reasoning and developer messages (the reference's drop_thinking).
func dropThinking(ms []msg) []msg {
	last := lastUserIndex(ms)
	var out []msg
	for i, m := range ms {
		switch {
		case i >= last || m.Role == RoleUser || m.Role == RoleSystem || m.Role == RoleReminder:
			out = append(out, m)
		case m.Role == RoleAssistant:
			m.ReasoningContent = ""
			m.dropRC = true
			out = append(out, m)
		}
	}
	return out
}

// render appends message i of ms.
func render(sb *strings.Builder, i int, ms []msg, thinking, drop, maxEffort bool) error {
	m := &ms[i]
	last := lastUserIndex(ms)
	if i == 0 && thinking && maxEffort {
		sb.WriteString(reasoningEffortMax)
	}
	switch m.Role {
	case RoleSystem:
		sb.WriteString(m.Content)
		if err := writeExtras(sb, m); err != nil {
			return err
		}
	case RoleDeveloper:
		if m.Content == "" {
			return fmt.Errorf("chat: message %d: developer message needs content", i)
		}
		sb.WriteString(UserToken)
		sb.WriteString(m.Content)
		if err := writeExtras(sb, m); err != nil {
			return err
		}
	case RoleUser:
		sb.WriteString(UserToken)
		if len(m.blocks) > 0 {
			for j, b := range m.blocks {
				if j > 0 {
					sb.WriteString("\n\n")
				}
				if b.kind == "text" {
					sb.WriteString(b.text)
					continue
				}
				content := b.text
				if b.hasParts {
					texts := make([]string, len(b.parts))
					for k, p := range b.parts {
						if p.Type == "text" {
							texts[k] = p.Text
						} else {
							texts[k] = "[Unsupported " + p.Type + "]"
						}
					}
					content = strings.Join(texts, "\n\n")
				}
				sb.WriteString("<tool_result>" + content + "</tool_result>")
			}
		} else {
			sb.WriteString(m.Content)
		}
	case RoleReminder:
		sb.WriteString(ReminderToken)
		sb.WriteString(m.Content)
	case RoleAssistant:
		prevTask := i > 0 && ms[i-1].Task != ""
		if thinking && !prevTask && (!drop || i > last) {
			sb.WriteString(m.ReasoningContent)
			sb.WriteString(ThinkEnd)
		}
		sb.WriteString(m.Content)
		if len(m.ToolCalls) > 0 {
			sb.WriteString("\n\n<" + DSML + "tool_calls>\n")
			for j, tc := range m.ToolCalls {
				if j > 0 {
					sb.WriteString("\n")
				}
				args, err := encodeArguments(tc.Function.Arguments)
				if err != nil {
					return fmt.Errorf("chat: message %d tool call %d: %w", i, j, err)
				}
				sb.WriteString("<" + DSML + `invoke name="` + tc.Function.Name + "\">\n" + args + "\n</" + DSML + "invoke>")
			}
			sb.WriteString("\n</" + DSML + "tool_calls>")
		}
		if !m.WithoutEOS {
			sb.WriteString(EOS)
		}
	default:
		return fmt.Errorf("chat: message %d: unknown role %q", i, m.Role)
	}

	// What follows the message: nothing when the next message is not an
	// assistant or reminder; otherwise a task token or the assistant turn.
	if i+1 < len(ms) && ms[i+1].Role != RoleAssistant && ms[i+1].Role != RoleReminder {
		return nil
	}
	switch {
	case m.Task != "":
		tok := taskTokens[m.Task]
		if m.Task == "action" {
			sb.WriteString(AssistantToken)
			if thinking {
				sb.WriteString(ThinkStart)
			} else {
				sb.WriteString(ThinkEnd)
			}
		}
		sb.WriteString(tok)
	case m.Role == RoleUser || m.Role == RoleDeveloper:
		sb.WriteString(AssistantToken)
		if thinking && (!drop || i >= last) {
			sb.WriteString(ThinkStart)
		} else {
			sb.WriteString(ThinkEnd)
		}
	}
	return nil
}

// writeExtras appends the tools block and the response-format block of a
// system or developer message.
func writeExtras(sb *strings.Builder, m *msg) error {
	if len(m.Tools) > 0 {
		schemas := make([]string, len(m.Tools))
		for i, t := range m.Tools {
			fields, ok, err := objectFields(t)
			if err != nil || !ok {
				return fmt.Errorf("chat: tool %d is not a JSON object", i)
			}
			var fn json.RawMessage
			for _, f := range fields {
				if f.key == "function" {
					fn = f.raw
				}
			}
			if fn == nil {
				return fmt.Errorf("chat: tool %d has no \"function\" member", i)
			}
			s, err := pyJSON(fn)
			if err != nil {
				return fmt.Errorf("chat: tool %d: %w", i, err)
			}
			schemas[i] = s
		}
		sb.WriteString("\n\n")
		sb.WriteString(strings.NewReplacer(
			"{dsml_token}", DSML,
			"{thinking_start_token}", ThinkStart,
			"{thinking_end_token}", ThinkEnd,
			"{tool_schemas}", strings.Join(schemas, "\n"),
		).Replace(toolsTemplate))
	}
	if len(m.ResponseFormat) > 0 && string(m.ResponseFormat) != "null" {
		s, err := pyJSON(m.ResponseFormat)
		if err != nil {
			return fmt.Errorf("chat: response_format: %w", err)
		}
		sb.WriteString("\n\n## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n" + s)
	}
	return nil
}

// encodeArguments renders a tool call's JSON arguments as DSML parameter
// lines: strings raw with string="true", anything else as JSON with
// string="false". Arguments that are not valid JSON become one string
// parameter named "arguments", as in the reference.
func encodeArguments(args string) (string, error) {
	fields, ok, err := objectFields([]byte(args))
	if err != nil {
		fields, ok = []jsonField{{key: "arguments", raw: mustJSONString(args)}}, true
	}
	if !ok {
		return "", errors.New("tool call arguments must be a JSON object")
	}
	// A repeated key keeps its first position and its last value (Python
	// dict semantics).
	var uniq []jsonField
	for _, f := range fields {
		if j := slices.IndexFunc(uniq, func(u jsonField) bool { return u.key == f.key }); j >= 0 {
			uniq[j].raw = f.raw
		} else {
			uniq = append(uniq, f)
		}
	}
	lines := make([]string, len(uniq))
	for i, f := range uniq {
		var s string
		isStr := "false"
		if err := json.Unmarshal(f.raw, &s); err == nil && len(f.raw) > 0 && f.raw[0] == '"' {
			isStr = "true"
		} else if s, err = pyJSON(f.raw); err != nil {
			return "", err
		}
		lines[i] = "<" + DSML + `parameter name="` + f.key + `" string="` + isStr + `">` + s + "</" + DSML + "parameter>"
	}
	return strings.Join(lines, "\n"), nil
}

// mustJSONString returns s as a JSON string literal.
func mustJSONString(s string) json.RawMessage {
	b, _ := json.Marshal(s) // marshalling a string cannot fail
	return b
}
