// Package awsconfig edits the AWS CLI's shared config file (~/.aws/config)
// for "berth sso config": one [sso-session NAME] block and one profile per
// account and permission set a user can reach through IAM Identity Center.
//
// The file belongs to the user, so the editor is lossless: Parse keeps
// every line as it was (comments, blank lines, spacing, sections berth
// never heard of) and Bytes gives back the same bytes until a section is
// changed. berth marks the sections it writes with a comment line, and
// Apply replaces or prunes only sections that carry the mark of the same
// session; any other section with a name berth wants is a conflict, never
// overwritten.
package awsconfig

import (
	"fmt"
	"strings"

	"github.com/berth-dev/berth/errkind"
)

// ErrSyntax is the kind of a config file berth cannot read safely.
var ErrSyntax = errkind.New("AWS config file is not valid", errkind.Invalid)

// File is a parsed config file that remembers every line.
type File struct {
	// head holds the lines before the first section header.
	head     []string
	sections []*section
	// newline is the line ending the file uses ("\n" or "\r\n").
	newline string
	// finalNewline is false when the last line had no line ending.
	finalNewline bool
}

// section is a header line and the raw lines under it.
type section struct {
	name   string // between the brackets, trimmed: "profile dev", "sso-session corp"
	header string
	body   []string
}

// Parse reads a config file. The only error is a header line ("[...")
// without its closing bracket or with nothing inside, which the AWS CLI
// itself refuses; everything else is kept as it is.
func Parse(data []byte) (*File, error) {
	f := &File{newline: "\n", finalNewline: true}
	s := string(data)
	if s == "" {
		return f, nil
	}
	if strings.Contains(s, "\r\n") {
		f.newline = "\r\n"
	}
	if !strings.HasSuffix(s, "\n") {
		f.finalNewline = false
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	var cur *section
	for i, line := range strings.Split(s, "\n") {
		if cur != nil && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			// Indented: a nested value's continuation line, as in
			// "s3 =\n  max_concurrent_requests = 20", never a header.
			cur.body = append(cur.body, line)
			continue
		}
		if name, ok, err := headerName(line); err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		} else if ok {
			cur = &section{name: name, header: line}
			f.sections = append(f.sections, cur)
			continue
		}
		if cur == nil {
			f.head = append(f.head, line)
		} else {
			cur.body = append(cur.body, line)
		}
	}
	return f, nil
}

// headerName reads a section header the way Python's configparser (which
// the AWS CLI uses) does: after leading space, "[" NAME "]".
func headerName(line string) (string, bool, error) {
	t := strings.TrimSpace(line)
	if !strings.HasPrefix(t, "[") {
		return "", false, nil
	}
	end := strings.LastIndexByte(t, ']')
	if end < 0 {
		return "", false, fmt.Errorf("section header %q has no closing ]: %w", clip(t), ErrSyntax)
	}
	name := strings.Join(strings.Fields(t[1:end]), " ")
	if name == "" {
		return "", false, fmt.Errorf("section header %q names no section: %w", clip(t), ErrSyntax)
	}
	return name, true, nil
}

// Bytes returns the file as it would be written.
func (f *File) Bytes() []byte {
	var lines []string
	lines = append(lines, f.head...)
	for _, s := range f.sections {
		lines = append(lines, s.header)
		lines = append(lines, s.body...)
	}
	if len(lines) == 0 {
		return nil
	}
	out := strings.Join(lines, "\n")
	if f.finalNewline {
		out += "\n"
	}
	return []byte(out)
}

// Sections returns the section names in file order.
func (f *File) Sections() []string {
	names := make([]string, len(f.sections))
	for i, s := range f.sections {
		names[i] = s.name
	}
	return names
}

// Get returns the value of key in the first section called name: the text
// after "=" on a line that starts with the key, trimmed.
func (f *File) Get(name, key string) (string, bool) {
	for _, s := range f.sections {
		if s.name == name {
			return s.get(key)
		}
	}
	return "", false
}

func (s *section) get(key string) (string, bool) {
	for _, line := range s.body {
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // blank, or a nested value's continuation line
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
