package audit

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// lineInfo is what Verify needs from a line: the chain fields and the kind.
type lineInfo struct {
	seq        uint64
	prev       []byte
	hash       []byte
	action     []byte
	checkpoint bool // the record has secrun.checkpoint
}

// maxScanDepth matches encoding/json's nesting limit.
const maxScanDepth = 10000

// scanLine validates that line is one JSON object (the same grammar
// json.Valid accepts) and extracts event.action, event.sequence,
// event.prev_hash and event.hash of the top-level event object, refusing
// duplicates of those keys. It is Verify's hot path: several times faster
// than decoding the record, which Verify does only for trail.* records.
func scanLine(line []byte) (lineInfo, error) {
	s := scanner{b: line}
	var info lineInfo
	s.ws()
	if s.peek() != '{' {
		return info, errors.New("not a JSON object")
	}
	if err := s.object(0, func(key []byte) error {
		switch string(key) {
		case "event":
			s.events++
			if s.events > 1 {
				return errors.New("event appears twice")
			}
			if s.peek() != '{' {
				return errors.New("event is not an object")
			}
			return s.object(1, func(key []byte) error { return s.eventField(key, &info) })
		case "secrun":
			if s.peek() != '{' {
				return errors.New("secrun is not an object")
			}
			return s.object(1, func(key []byte) error {
				if string(key) == "checkpoint" {
					info.checkpoint = true
				}
				return s.value(2)
			})
		}
		return s.value(1)
	}); err != nil {
		return info, fmt.Errorf("not valid JSON: %w", err)
	}
	s.ws()
	if s.i != len(s.b) {
		return info, fmt.Errorf("not valid JSON: data after the object at byte %d", s.i)
	}
	if s.seen != [4]bool{true, true, true, true} {
		return info, errors.New("the event object lacks action, sequence, prev_hash or hash")
	}
	return info, nil
}

type scanner struct {
	b      []byte
	i      int
	events int
	seen   [4]bool // action, sequence, prev_hash, hash of the event object
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) errf(what string) error {
	return fmt.Errorf("%s at byte %d", what, s.i)
}

// object scans {"key": value, ...}; field is called with the cursor on the
// value and must consume it.
func (s *scanner) object(depth int, field func(key []byte) error) error {
	if depth >= maxScanDepth {
		return s.errf("nesting too deep")
	}
	s.i++ // '{'
	s.ws()
	if s.peek() == '}' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return s.errf("expected a key")
		}
		key, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if s.peek() != ':' {
			return s.errf("expected ':'")
		}
		s.i++
		s.ws()
		if err := field(key); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return nil
		default:
			return s.errf("expected ',' or '}'")
		}
	}
}

func (s *scanner) eventField(key []byte, info *lineInfo) error {
	idx := -1
	switch string(key) {
	case "action":
		idx = 0
	case "sequence":
		idx = 1
	case "prev_hash":
		idx = 2
	case "hash":
		idx = 3
	}
	if idx < 0 {
		return s.value(2)
	}
	if s.seen[idx] {
		return fmt.Errorf("event.%s appears twice", key)
	}
	s.seen[idx] = true
	if idx == 1 {
		start := s.i
		if err := s.number(); err != nil {
			return err
		}
		n, err := strconv.ParseUint(string(s.b[start:s.i]), 10, 64)
		if err != nil {
			return fmt.Errorf("event.sequence %q is not a record number", s.b[start:s.i])
		}
		info.seq = n
		return nil
	}
	if s.peek() != '"' {
		return fmt.Errorf("event.%s is not a string", key)
	}
	v, err := s.str()
	if err != nil {
		return err
	}
	switch idx {
	case 0:
		info.action = v
	case 2:
		info.prev = v
	case 3:
		info.hash = v
	}
	return nil
}

// strSpecial marks the bytes that end a run of plain string bytes.
var strSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str scans a string and returns its raw (still escaped) contents.
func (s *scanner) str() ([]byte, error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		for s.i < len(s.b) && !strSpecial[s.b[s.i]] {
			s.i++
		}
		if s.i == len(s.b) {
			break
		}
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, nil
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return nil, s.errf("unterminated escape")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				if s.i+5 > len(s.b) {
					return nil, s.errf("short \\u escape")
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return nil, s.errf("bad \\u escape")
					}
				}
				s.i += 5
			default:
				return nil, s.errf("bad escape")
			}
		default:
			return nil, s.errf("control character in string")
		}
	}
	return nil, s.errf("unterminated string")
}

func (s *scanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth, func([]byte) error { return s.value(depth + 1) })
	case c == '[':
		return s.array(depth)
	case c == '"':
		_, err := s.str()
		return err
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.errf("expected a value")
}

func (s *scanner) array(depth int) error {
	if depth >= maxScanDepth {
		return s.errf("nesting too deep")
	}
	s.i++ // '['
	s.ws()
	if s.peek() == ']' {
		s.i++
		return nil
	}
	for {
		s.ws()
		if err := s.value(depth + 1); err != nil {
			return err
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return nil
		default:
			return s.errf("expected ',' or ']'")
		}
	}
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.errf("bad literal")
	}
	s.i += len(lit)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.errf("bad number")
	}
	if s.peek() == '.' {
		s.i++
		if !s.digits() {
			return s.errf("bad fraction")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !s.digits() {
			return s.errf("bad exponent")
		}
	}
	return nil
}

func (s *scanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
