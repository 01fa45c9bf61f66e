package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/secrun/secrun/audit"
)

func addTrailSeeds(f *testing.F) {
	f.Helper()
	data, err := os.ReadFile(filepath.Join(fixtureDir, "trail-v1.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range bytes.SplitAfter(data, []byte{'\n'}) {
		if len(line) > 0 {
			f.Add(line)
		}
	}
	for _, s := range []string{"", "\n", "{}", `{"event":{}}`, "null", "[1,2]", "\xff\xfe",
		`{"event":{"action":"a","outcome":"success","sequence":1,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"}}`} {
		f.Add([]byte(s))
	}
}

// FuzzParseRecord: the record parser never panics, and what it accepts
// re-encodes and keeps its identity.
func FuzzParseRecord(f *testing.F) {
	addTrailSeeds(f)
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := audit.ParseRecord(line)
		if err != nil {
			return
		}
		if r.Seq == 0 || len(r.Hash) != 64 || len(r.PrevHash) != 64 || r.Kind == "" {
			t.Fatalf("accepted an incomplete record: %+v", r)
		}
		out, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("re-encoding an accepted record: %v", err)
		}
		if !bytes.Contains(out, []byte(r.Hash)) {
			t.Fatalf("re-encoded record lost its hash: %s", out)
		}
	})
}

// FuzzVerify: Verify and Show never panic on any file content, and a file
// that verifies also shows.
func FuzzVerify(f *testing.F) {
	data, err := os.ReadFile(filepath.Join(fixtureDir, "trail-v1.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(bytes.Repeat([]byte("\n"), 3))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, content []byte) {
		p := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := audit.Verify([]string{p}, nil)
		var out bytes.Buffer
		serr := audit.Show(&out, []string{p}, audit.Filter{}, true)
		if err != nil {
			return
		}
		if rep.Records == 0 {
			t.Fatal("Verify accepted a file without records")
		}
		if serr != nil {
			t.Fatalf("Verify accepted what Show refuses: %v", serr)
		}
	})
}
