package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"
)

// ParseError is a syntax or structure error in a policy or template, with
// the position of the offending element when it is known.
type ParseError struct {
	Pos  Pos
	Path string // JSON path of the element, e.g. Statement[0].Effect
	Msg  string
}

func (e *ParseError) Error() string {
	var loc string
	if e.Pos.Line > 0 {
		loc = fmt.Sprintf("line %d, column %d: ", e.Pos.Line, e.Pos.Column)
	}
	if e.Path != "" {
		loc += e.Path + ": "
	}
	return loc + e.Msg
}

// isJSON reports whether data looks like JSON: its first non-space byte opens
// an object or an array. Everything else is read as YAML.
func isJSON(data []byte) bool {
	t := bytes.TrimLeft(data, " \t\r\n\ufeff")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// parseTree parses JSON or YAML into a yaml.Node tree that keeps the line and
// column of every element. JSON is not handed to the YAML parser because
// YAML rejects some valid JSON (tabs for indentation).
func parseTree(data []byte) (*yaml.Node, error) {
	if isJSON(data) {
		return jsonTree(data)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ParseError{Pos: Pos{1, 1}, Msg: "empty document"}
	}
	return doc.Content[0], nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns yaml.v3's "yaml: line N: msg" into a ParseError.
func yamlError(err error) error {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &ParseError{Pos: Pos{Line: n, Column: 1}, Msg: m[2]}
	}
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return yamlError(errors.New(te.Errors[0]))
	}
	return &ParseError{Msg: err.Error()}
}

// lineIndex converts byte offsets into positions.
type lineIndex []int

func newLineIndex(data []byte) lineIndex {
	idx := lineIndex{0}
	for i, b := range data {
		if b == '\n' {
			idx = append(idx, i+1)
		}
	}
	return idx
}

func (li lineIndex) pos(off int) Pos {
	lo, hi := 0, len(li)
	for lo+1 < hi {
		mid := (lo + hi) / 2
		if li[mid] <= off {
			lo = mid
		} else {
			hi = mid
		}
	}
	return Pos{Line: lo + 1, Column: off - li[lo] + 1}
}

// jsonTree builds a yaml.Node tree from JSON using encoding/json's tokenizer,
// so syntax errors come with the exact offset of the problem.
func jsonTree(data []byte) (*yaml.Node, error) {
	li := newLineIndex(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// start returns the offset of the next token: encoding/json reports only
	// where the previous one ended, so skip the separators in between.
	start := func() int {
		off := int(dec.InputOffset())
	skip:
		for off < len(data) {
			switch data[off] {
			case ' ', '\t', '\r', '\n', ',', ':':
				off++
			default:
				break skip
			}
		}
		return off
	}
	syntax := func(err error) error {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return &ParseError{Pos: li.pos(int(se.Offset)), Msg: "invalid JSON: " + se.Error()}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return &ParseError{Pos: li.pos(len(data)), Msg: "invalid JSON: unexpected end of input"}
		}
		return &ParseError{Pos: li.pos(int(dec.InputOffset())), Msg: "invalid JSON: " + err.Error()}
	}
	var value func() (*yaml.Node, error)
	value = func() (*yaml.Node, error) {
		p := li.pos(start())
		tok, err := dec.Token()
		if err != nil {
			return nil, syntax(err)
		}
		n := &yaml.Node{Line: p.Line, Column: p.Column}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' {
				n.Kind, n.Tag = yaml.MappingNode, "!!map"
				for dec.More() {
					k, err := value()
					if err != nil {
						return nil, err
					}
					v, err := value()
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, k, v)
				}
			} else {
				n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
				for dec.More() {
					v, err := value()
					if err != nil {
						return nil, err
					}
					n.Content = append(n.Content, v)
				}
			}
			if _, err := dec.Token(); err != nil { // closing delimiter
				return nil, syntax(err)
			}
		case string:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!str", t
		case json.Number:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!int", t.String()
		case bool:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", strconv.FormatBool(t)
		case nil:
			n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
		}
		return n, nil
	}
	root, err := value()
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, &ParseError{Pos: li.pos(start()), Msg: "invalid JSON: data after the top-level value"}
	}
	return root, nil
}

// nodeErr builds a ParseError located at n.
func nodeErr(n *yaml.Node, path, format string, args ...any) error {
	return &ParseError{Pos: Pos{n.Line, n.Column}, Path: path, Msg: fmt.Sprintf(format, args...)}
}

// mapEntries returns the key/value pairs of a mapping node, refusing
// duplicate keys: AWS would take one of them silently.
func mapEntries(n *yaml.Node, path string) ([][2]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, nodeErr(n, path, "expected an object, found %s", kindName(n))
	}
	seen := map[string]bool{}
	var out [][2]*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, nodeErr(k, path, "expected a string key, found %s", kindName(k))
		}
		if seen[k.Value] {
			return nil, nodeErr(k, path, "duplicate key %q", k.Value)
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out, nil
}

// lookup returns the value of key in a mapping node, or nil.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "an object"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "null"
		}
		if len(n.Tag) > 1 && n.Tag[0] == '!' && n.Tag[1] != '!' {
			return "tag " + n.Tag
		}
		return "a scalar"
	}
	return "nothing"
}
