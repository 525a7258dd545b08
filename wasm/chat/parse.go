package chat

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// readUntil returns the text from i up to the earliest of stops, the index
// after that stop, and the stop found ("" when none: then the rest).
func readUntil(text string, i int, stops ...string) (string, int, string) {
	best, which := -1, ""
	for _, s := range stops {
		if p := strings.Index(text[i:], s); p >= 0 && (best < 0 || p < best) {
			best, which = p, s
		}
	}
	if best < 0 {
		return text[i:], len(text), ""
	}
	return text[i : i+best], i + best + len(which), which
}

// The reference uses Python regexps whose "$" also matches before one
// final newline; "\n?$" reproduces that (it is what lets an invoke with no
// parameters, rendered as `name="f">` + "\n\n", parse back).
var (
	invokeNameRe = regexp.MustCompile(`(?s)^\s*name="(.*?)">\n\n?$`)
	paramRe      = regexp.MustCompile(`(?s)^ name="(.*?)" string="(true|false)">(.*?)<\n?$`)
)

// ParseCompletion parses a generated assistant turn: in thinking mode the
// reasoning up to "</think>", then the content up to EOS or a DSML
// tool-calls block, then the tool calls. Tool calls come back in OpenAI
// shape with JSON arguments. The parse is as strict as the reference
// (every DSML tag line must end with ">\n", no special strings inside
// content) with one deliberate leniency: the final EOS may be missing,
// because servers usually stop on the EOS token without decoding it.
func ParseCompletion(text string, thinking bool) (Message, error) {
	out := Message{Role: RoleAssistant}
	callsStart := "\n\n<" + DSML + "tool_calls"
	i := 0
	if thinking {
		var stop string
		out.ReasoningContent, i, stop = readUntil(text, i, ThinkEnd, callsStart)
		if stop != ThinkEnd {
			return Message{}, errors.New("chat: completion lacks </think>")
		}
	}
	content, j, stop := readUntil(text, i, EOS, callsStart)
	out.Content, i = content, j
	if stop == callsStart {
		calls, k, err := parseToolCalls(text, i)
		if err != nil {
			return Message{}, err
		}
		out.ToolCalls, i = calls, k
		rest, k, _ := readUntil(text, i, EOS)
		if rest != "" {
			return Message{}, fmt.Errorf("chat: unexpected text after tool calls: %q", rest)
		}
		i = k
	}
	if i != len(text) {
		return Message{}, fmt.Errorf("chat: unexpected text after EOS: %q", text[i:])
	}
	for _, sp := range []string{BOS, EOS, ThinkStart, ThinkEnd, DSML} {
		if strings.Contains(out.Content, sp) || strings.Contains(out.ReasoningContent, sp) {
			return Message{}, fmt.Errorf("chat: unexpected special string %q in completion content", sp)
		}
	}
	return out, nil
}

// parseToolCalls parses the DSML block starting right after
// "\n\n<｜DSML｜tool_calls" and returns the calls and the index after the
// closing tag.
func parseToolCalls(text string, i int) ([]ToolCall, int, error) {
	invokeOpen := "<" + DSML + "invoke"
	invokeClose := "</" + DSML + "invoke"
	paramOpen := "<" + DSML + "parameter"
	paramClose := "/" + DSML + "parameter"
	blockClose := "</" + DSML + "tool_calls>"
	var calls []ToolCall
	for i < len(text) {
		gap, j, stop := readUntil(text, i, invokeOpen, blockClose)
		if gap != ">\n" {
			return nil, 0, fmt.Errorf("chat: tool call format error: expected \">\\n\", got %q", gap)
		}
		i = j
		if stop == blockClose {
			return calls, i, nil
		}
		if stop == "" {
			return nil, 0, errors.New("chat: unterminated tool calls block")
		}
		head, j, stop := readUntil(text, i, paramOpen, invokeClose)
		i = j
		mm := invokeNameRe.FindStringSubmatch(head)
		if mm == nil {
			return nil, 0, fmt.Errorf("chat: tool name format error: %q", head)
		}
		name := mm[1]
		var keys, vals []string
		for stop == paramOpen {
			var body string
			body, i, _ = readUntil(text, i, paramClose)
			pm := paramRe.FindStringSubmatch(body)
			if pm == nil {
				return nil, 0, fmt.Errorf("chat: parameter format error: %q", body)
			}
			for _, k := range keys {
				if k == pm[1] {
					return nil, 0, fmt.Errorf("chat: duplicate parameter %q", k)
				}
			}
			v := pm[3]
			if pm[2] == "true" {
				v = pyString(v)
			}
			keys, vals = append(keys, pm[1]), append(vals, v)
			var gap string
			gap, i, stop = readUntil(text, i, paramOpen, invokeClose)
			if gap != ">\n" {
				return nil, 0, fmt.Errorf("chat: parameter format error: expected \">\\n\", got %q", gap)
			}
		}
		if stop != invokeClose {
			return nil, 0, errors.New("chat: unterminated invoke")
		}
		parts := make([]string, len(keys))
		for k := range keys {
			parts[k] = pyString(keys[k]) + ": " + vals[k]
		}
		calls = append(calls, ToolCall{Type: "function", Function: FunctionCall{Name: name, Arguments: "{" + strings.Join(parts, ", ") + "}"}})
	}
	return nil, 0, errors.New("chat: unterminated tool calls block")
}
