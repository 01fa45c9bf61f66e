package audit

import (
	"bytes"
	"encoding/binary"
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
	s := lineScanner{b: line}
	s.ws()
	if s.peek() != '{' {
		return s.info, errors.New("not a JSON object")
	}
	if err := s.object(0, objTop); err != nil {
		return s.info, fmt.Errorf("not valid JSON: %w", err)
	}
	s.ws()
	if s.i != len(s.b) {
		return s.info, fmt.Errorf("not valid JSON: data after the object at byte %d", s.i)
	}
	if s.seen != [4]bool{true, true, true, true} {
		return s.info, errors.New("the event object lacks action, sequence, prev_hash or hash")
	}
	return s.info, nil
}

type lineScanner struct {
	b      []byte
	i      int
	info   lineInfo
	events int
	seen   [4]bool // action, sequence, prev_hash, hash of the event object
}

// What an object is, for the fields the scan extracts.
const (
	objOther = iota
	objTop
	objEvent
	objSecrun
)

func (s *lineScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *lineScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *lineScanner) errf(what string) error {
	return fmt.Errorf("%s at byte %d", what, s.i)
}

// object scans {"key": value, ...}; kind says which keys matter.
func (s *lineScanner) object(depth, kind int) error {
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
		if err := s.field(depth, kind, key); err != nil {
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

// field scans the value of key in an object of the given kind.
func (s *lineScanner) field(depth, kind int, key []byte) error {
	switch {
	case kind == objTop && string(key) == "event":
		s.events++
		if s.events > 1 {
			return errors.New("event appears twice")
		}
		if s.peek() != '{' {
			return errors.New("event is not an object")
		}
		return s.object(depth+1, objEvent)
	case kind == objTop && string(key) == "secrun":
		if s.peek() != '{' {
			return errors.New("secrun is not an object")
		}
		return s.object(depth+1, objSecrun)
	case kind == objSecrun && string(key) == "checkpoint":
		s.info.checkpoint = true
	case kind == objEvent:
		return s.eventField(key, &s.info)
	}
	return s.value(depth + 1)
}

func (s *lineScanner) eventField(key []byte, info *lineInfo) error {
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

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// hasZeroByte is non-zero if any byte of v is 0.
func hasZeroByte(v uint64) uint64 { return (v - lsb) & ^v & msb }

// hasByteBelow is non-zero if any byte of v is below n (n <= 128).
func hasByteBelow(v uint64, n uint64) uint64 { return (v - lsb*n) & ^v & msb }

// str scans a string and returns its raw (still escaped) contents.
func (s *lineScanner) str() ([]byte, error) {
	s.i++ // opening quote
	start := s.i
	for s.i < len(s.b) {
		// Skip eight plain bytes at a time (no quote, backslash or control
		// character), then byte by byte up to the next special one.
		for s.i+8 <= len(s.b) {
			v := binary.LittleEndian.Uint64(s.b[s.i:])
			if hasZeroByte(v^(lsb*'"'))|hasZeroByte(v^(lsb*'\\'))|hasByteBelow(v, 0x20) != 0 {
				break
			}
			s.i += 8
		}
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

func (s *lineScanner) value(depth int) error {
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth, objOther)
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

func (s *lineScanner) array(depth int) error {
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

func (s *lineScanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
		return s.errf("bad literal")
	}
	s.i += len(lit)
	return nil
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *lineScanner) number() error {
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

func (s *lineScanner) digits() bool {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i > start
}
