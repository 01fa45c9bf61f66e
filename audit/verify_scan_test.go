package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// fixHash recomputes the hash of a line that has the hash suffix, so the
// fuzzer gets past the hash check into the parsers.
func fixHash(line []byte) []byte {
	line = bytes.Clone(line)
	n := len(line) - len(lineTail) - 64
	if n < len(hashKey) || !bytes.HasSuffix(line, []byte(lineTail)) || !bytes.HasSuffix(line[:n], []byte(hashKey)) {
		return line
	}
	sum := sha256.Sum256(line[:n])
	hex.Encode(line[n:n+64], sum[:])
	return line
}

// FuzzScanLine: Verify's fast scanner accepts only valid JSON, and where the
// full record parser also accepts a line, both read the same chain fields.
func FuzzScanLine(f *testing.F) {
	data, err := os.ReadFile("../testdata/audit/trail-v1.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.Split(data, []byte{'\n'}) {
		f.Add(line)
	}
	for _, s := range []string{`{}`, `{"event":{"action":"a","sequence":1,"prev_hash":"x","hash":"y"}}`,
		`{"event":{"action":"a","action":"b"}}`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `{"a":01}`, `{"a":"\x01"}`, `[`, `"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		line = fixHash(line)
		info, err := scanLine(line)
		if err == nil && !json.Valid(line) {
			t.Fatalf("scanLine accepted invalid JSON %q", line)
		}
		rec, perr := ParseRecord(line)
		if perr != nil {
			return
		}
		if err != nil {
			t.Fatalf("ParseRecord accepted what scanLine refuses (%v): %q", err, line)
		}
		if info.seq != rec.Seq || string(info.hash) != rec.Hash || string(info.prev) != rec.PrevHash || string(info.action) != rec.Kind {
			t.Fatalf("scanLine read %d/%s/%s/%s, ParseRecord %d/%s/%s/%s", info.seq, info.hash, info.prev, info.action, rec.Seq, rec.Hash, rec.PrevHash, rec.Kind)
		}
	})
}

// wrapValue puts v where a record's fields go, next to a complete event.
func wrapValue(v []byte) []byte {
	b := []byte(`{"x":`)
	b = append(b, v...)
	return append(b, `,"event":{"action":"a","sequence":1,"prev_hash":"p","hash":"h"}}`...)
}

// The scanner agrees with encoding/json on the JSON grammar.
func TestScanLineGrammar(t *testing.T) {
	for _, v := range []string{
		`1`, ` [ 1 , 2 ] `, `-0`, `0.5`, `1e5`, `1E-5`, `"\ud83d\ude00"`, `{"a":{"b":[{}]}}`, `[]`, `{}`, `"\/\b\f\n\r\t\""`,
		`01`, `.5`, `1.`, `1e`, `-`, `tru`, `"\q"`, `"\u12"`, `[1,]`, `{"a":1,}`, `{,"a":1}`, `{"a" 1}`,
		"\"x\tx\"", `nul`, `"abc`, `[1 2]`, `{"a"}`, `+1`, `0x10`, ``,
	} {
		line := wrapValue([]byte(v))
		_, err := scanLine(line)
		if valid := json.Valid(line); valid != (err == nil) {
			t.Errorf("value %q: json.Valid = %v, scanLine error = %v", v, valid, err)
		}
	}
}

func FuzzScanLineGrammar(f *testing.F) {
	for _, v := range []string{`1`, `"a"`, `[{"b":null}]`, `-1.5e-3`, `"\u0041"`, `tru`, `[1,]`} {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, v []byte) {
		if bytes.Count(v, []byte("["))+bytes.Count(v, []byte("{")) > 9000 {
			return // the two nesting limits count levels differently
		}
		line := wrapValue(v)
		_, err := scanLine(line)
		if valid := json.Valid(line); valid != (err == nil) {
			t.Fatalf("value %q: json.Valid = %v, scanLine error = %v", v, valid, err)
		}
	})
}
