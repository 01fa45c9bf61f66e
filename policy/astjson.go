//go:build !secrun_noengine

package policy

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
)

// jsonToValue converts a JSON document straight into an OPA value. It is
// the conversion ast.ValueFromReader does, without the map[string]any
// detour that made it the largest cost of an evaluation (a full spec with a
// seccomp profile is hundreds of strings). The input is the same bytes
// InputHash covers, so the policy sees exactly what the hash names.
func jsonToValue(b []byte) (ast.Value, error) {
	p := jsonParser{b: b, src: string(b)}
	t, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, fmt.Errorf("json: trailing data at offset %d", p.i)
	}
	return t.Value, nil
}

// maxJSONDepth bounds nesting, as encoding/json does, so that hostile input
// cannot exhaust the stack.
const maxJSONDepth = 10000

type jsonParser struct {
	b []byte
	// src is b as one string: plain strings are substrings of it, so a
	// document's hundreds of strings cost one allocation.
	src string
	i   int
	// slab hands out terms in batches instead of one allocation each.
	slab []ast.Term
}

const termSlab = 256

var errJSONEnd = errors.New("json: unexpected end of input")

func (p *jsonParser) term(v ast.Value) *ast.Term {
	if len(p.slab) == 0 {
		p.slab = make([]ast.Term, termSlab)
	}
	t := &p.slab[0]
	p.slab = p.slab[1:]
	t.Value = v
	return t
}

func (p *jsonParser) strTerm(s string) *ast.Term { return p.term(ast.String(s)) }

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*ast.Term, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("json: nested too deeply")
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, errJSONEnd
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.strTerm(s), nil
	case c == 't':
		return p.literal("true", ast.InternedTerm(true))
	case c == 'f':
		return p.literal("false", ast.InternedTerm(false))
	case c == 'n':
		return p.literal("null", ast.NullTerm())
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, fmt.Errorf("json: unexpected %q at offset %d", c, p.i)
	}
}

func (p *jsonParser) literal(word string, t *ast.Term) (*ast.Term, error) {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return nil, fmt.Errorf("json: bad literal at offset %d", p.i)
	}
	p.i += len(word)
	return t, nil
}

func (p *jsonParser) object(depth int) (*ast.Term, error) {
	p.i++ // {
	var items [][2]*ast.Term
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return p.term(ast.NewObject()), nil
	}
	for {
		p.space()
		if p.i >= len(p.b) {
			return nil, errJSONEnd
		}
		if p.b[p.i] != '"' {
			return nil, fmt.Errorf("json: object key expected at offset %d", p.i)
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, fmt.Errorf("json: ':' expected at offset %d", p.i)
		}
		p.i++
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, [2]*ast.Term{p.strTerm(k), v})
		p.space()
		if p.i >= len(p.b) {
			return nil, errJSONEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			// encoding/json keeps the last of duplicate keys.
			obj := ast.NewObjectWithCapacity(len(items))
			for _, it := range items {
				obj.Insert(it[0], it[1])
			}
			return p.term(obj), nil
		default:
			return nil, fmt.Errorf("json: ',' or '}' expected at offset %d", p.i)
		}
	}
}

func (p *jsonParser) array(depth int) (*ast.Term, error) {
	p.i++ // [
	var elems []*ast.Term
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return p.term(ast.NewArray()), nil
	}
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, errJSONEnd
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return p.term(ast.NewArray(elems...)), nil
		default:
			return nil, fmt.Errorf("json: ',' or ']' expected at offset %d", p.i)
		}
	}
}

// str reads a string token. Plain strings (the common case) are sliced
// out; anything with escapes or non-ASCII bytes is left to encoding/json
// so that unescaping and invalid UTF-8 are handled exactly as it does.
func (p *jsonParser) str() (string, error) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				return p.src[start+1 : p.i-1], nil
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", fmt.Errorf("json: string at offset %d: %w", start, err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", fmt.Errorf("json: control character in string at offset %d", p.i)
		case c >= 0x80:
			plain = false
			p.i++
		default:
			p.i++
		}
	}
	return "", errJSONEnd
}

func (p *jsonParser) number() (*ast.Term, error) {
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.i++
			continue
		}
		break
	}
	s := p.src[start:p.i]
	if !json.Valid(p.b[start:p.i]) {
		return nil, fmt.Errorf("json: bad number %q at offset %d", s, start)
	}
	if t := ast.InternedIntNumberTermFromString(s); t != nil {
		return t, nil
	}
	n, err := ast.NumberChecked(s)
	if err != nil {
		return nil, fmt.Errorf("json: number %q: %w", s, err)
	}
	return p.term(n), nil
}
