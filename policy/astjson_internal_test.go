package policy

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// jsonToValue must agree with OPA's own conversion on everything.
func checkJSONToValue(t *testing.T, b []byte) {
	t.Helper()
	want, werr := ast.ValueFromReader(bytes.NewReader(b))
	got, gerr := jsonToValue(b)
	if (werr == nil) != (gerr == nil) {
		// OPA's decoder stops after the first value; trailing data is only
		// an error here.
		if werr != nil || !trailing(b) {
			t.Fatalf("errors differ on %q: ours %v, OPA's %v", b, gerr, werr)
		}
		return
	}
	if werr != nil {
		return
	}
	if got.Compare(want) != 0 {
		t.Fatalf("values differ on %q:\nours %v\nOPA's %v", b, got, want)
	}
}

// trailing reports whether b is one valid JSON value followed by more
// input, which OPA's reader ignores and jsonToValue refuses.
func trailing(b []byte) bool {
	for i := 1; i < len(b); i++ {
		if _, err := ast.ValueFromReader(bytes.NewReader(b[:i])); err == nil {
			if _, err := jsonToValue(b[:i]); err == nil {
				return true
			}
		}
	}
	return false
}

func TestJSONToValueFixtures(t *testing.T) {
	files, err := filepath.Glob("../testdata/policy/*.json")
	if err != nil || len(files) == 0 {
		t.Fatal(err, files)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checkJSONToValue(t, b)
	}
	for _, s := range []string{
		`{}`, `[]`, `""`, `"a\"b\\c\u00e9\ud83d\ude00"`, `"caf\u00e9 <&>"`, "\"caf\xc3\xa9\"", "\"bad\xff\xfeutf8\"",
		`0`, `-0`, `1.5e300`, `12345678901234567890`, `-1`, `1e999999999`, `true`, `false`, `null`,
		`{"a": 1, "a": 2}`, `[1, [2, [3, {"x": null}]]]`, ` { "a" : [ 1 , 2 ] } `,
		`{"a" 1}`, `[1,]`, `{"a":1,}`, `tru`, `"\u12"`, `01`, `1.`, `-`, `"x`, "\"a\x01\"",
	} {
		checkJSONToValue(t, []byte(s))
	}
}

func FuzzJSONToValue(f *testing.F) {
	for _, s := range []string{`{"a":[1,"b",null,true]}`, `"\u00e9"`, `1e5`, `{"k":{"k":{}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkJSONToValue(t, b)
	})
}

// BenchmarkInputConversion compares the two ways to hand the input to OPA.
func BenchmarkInputConversion(b *testing.B) {
	raw, err := os.ReadFile("../testdata/policy/hardened.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("jsonToValue", func(b *testing.B) {
		for b.Loop() {
			if _, err := jsonToValue(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ast.ValueFromReader", func(b *testing.B) {
		for b.Loop() {
			if _, err := ast.ValueFromReader(bytes.NewReader(raw)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
