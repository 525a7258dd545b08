package chat

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The reference encoder serializes tool schemas, response formats and
// non-string tool arguments with Python's json.dumps(ensure_ascii=False):
// ", " and ": " separators, object keys in their original order, non-ASCII
// characters written raw. encoding/json sorts map keys and writes compact
// separators, so this file re-serializes raw JSON token by token instead.
// Numbers are copied as written (Python would print 1.50 as 1.5 and 1e2 as
// 100.0; requests rarely carry such literals in schemas).

// pyJSON re-serializes raw JSON in Python json.dumps style.
func pyJSON(raw []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var sb strings.Builder
	if err := pyValue(dec, &sb); err != nil {
		return "", err
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", errors.New("chat: trailing data after JSON value")
	}
	return sb.String(), nil
}

func pyValue(dec *json.Decoder, sb *strings.Builder) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("chat: invalid JSON: %w", err)
	}
	return pyToken(dec, tok, sb)
}

func pyToken(dec *json.Decoder, tok json.Token, sb *strings.Builder) error {
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			sb.WriteByte('{')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					sb.WriteString(", ")
				}
				k, err := dec.Token()
				if err != nil {
					return fmt.Errorf("chat: invalid JSON: %w", err)
				}
				ks, ok := k.(string)
				if !ok {
					return errors.New("chat: invalid JSON object key")
				}
				sb.WriteString(pyString(ks))
				sb.WriteString(": ")
				if err := pyValue(dec, sb); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("chat: invalid JSON: %w", err)
			}
			sb.WriteByte('}')
		case '[':
			sb.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					sb.WriteString(", ")
				}
				if err := pyValue(dec, sb); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("chat: invalid JSON: %w", err)
			}
			sb.WriteByte(']')
		default:
			return errors.New("chat: invalid JSON")
		}
	case string:
		sb.WriteString(pyString(v))
	case json.Number:
		sb.WriteString(string(v))
	case bool:
		if v {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case nil:
		sb.WriteString("null")
	default:
		return fmt.Errorf("chat: unexpected JSON token %v", v)
	}
	return nil
}

// pyString quotes s like json.dumps(s, ensure_ascii=False).
func pyString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			sb.WriteString(`\"`)
		case r == '\\':
			sb.WriteString(`\\`)
		case r == '\n':
			sb.WriteString(`\n`)
		case r == '\r':
			sb.WriteString(`\r`)
		case r == '\t':
			sb.WriteString(`\t`)
		case r == '\b':
			sb.WriteString(`\b`)
		case r == '\f':
			sb.WriteString(`\f`)
		case r < 0x20:
			fmt.Fprintf(&sb, `\u%04x`, r)
		default:
			sb.WriteString(s[i : i+size])
		}
		i += size
	}
	sb.WriteByte('"')
	return sb.String()
}

// jsonField is one member of a JSON object with its raw value, in order.
type jsonField struct {
	key string
	raw json.RawMessage
}

// objectFields splits a raw JSON object into its members, keeping order.
// ok is false when raw is not an object.
func objectFields(raw []byte) (fields []jsonField, ok bool, err error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '{' {
		if !json.Valid(t) {
			return nil, false, errors.New("chat: invalid JSON")
		}
		return nil, false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	if _, err := dec.Token(); err != nil {
		return nil, false, err
	}
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return nil, false, err
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false, err
		}
		fields = append(fields, jsonField{key: k.(string), raw: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, false, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false, errors.New("chat: trailing data after JSON object")
	}
	return fields, true, nil
}
