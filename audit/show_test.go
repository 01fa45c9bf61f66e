package audit_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
)

var fixtureTrail = filepath.Join(fixtureDir, "trail-v1.jsonl")

func TestShowTableGolden(t *testing.T) {
	var out bytes.Buffer
	if err := audit.Show(&out, []string{fixtureTrail}, audit.Filter{}, false); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join(fixtureDir, "trail-v1.show.txt")
	if updateFixtures() {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("table differs from %s:\n%s", golden, out.String())
	}
	// A container process name carrying a terminal escape sequence must
	// not reach the terminal.
	if bytes.ContainsRune(out.Bytes(), 0x1b) {
		t.Error("table contains an ESC character from record data")
	}
}

func TestShowFilters(t *testing.T) {
	since := time.Date(2025, 11, 23, 10, 0, 12, 0, time.UTC)
	tests := []struct {
		name string
		f    audit.Filter
		seqs []uint64
	}{
		{"everything", audit.Filter{}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}},
		{"container by name", audit.Filter{Container: "rooty"}, []uint64{12, 13, 14, 15}},
		{"container by ID prefix", audit.Filter{Container: "9c1e5b"}, []uint64{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}},
		{"too short an ID prefix matches nothing", audit.Filter{Container: "9c1"}, nil},
		{"exact kind", audit.Filter{Kind: "policy.decision"}, []uint64{5, 14}},
		{"kind glob", audit.Filter{Kind: "seccomp.*"}, []uint64{8}},
		{"since", audit.Filter{Since: since}, []uint64{12, 13, 14, 15, 16}},
		{"combined", audit.Filter{Container: "web", Kind: "container.*", Since: since.Add(-5 * time.Second)}, []uint64{7, 9, 10, 11}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := audit.Show(&out, []string{fixtureTrail}, tc.f, true); err != nil {
				t.Fatal(err)
			}
			var got []uint64
			for _, line := range bytes.SplitAfter(out.Bytes(), []byte{'\n'}) {
				if len(line) == 0 {
					continue
				}
				// --json passes records through unchanged, so each still
				// carries a valid hash.
				r, err := audit.ParseRecord(line)
				if err != nil {
					t.Fatalf("--json line %q: %v", line, err)
				}
				got = append(got, r.Seq)
			}
			if !equalSeqs(got, tc.seqs) {
				t.Errorf("seqs = %v, want %v", got, tc.seqs)
			}
		})
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestShowErrors(t *testing.T) {
	dir := t.TempDir()
	lines := readLines(t, fixtureTrail)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tampered := bytes.Join(lines, nil)
	tampered = bytes.Replace(tampered, []byte(`"name":"rooty"`), []byte(`"name":"r00ty"`), 1)
	tests := []struct {
		name  string
		paths []string
		f     audit.Filter
		want  string
	}{
		{"bad kind pattern", []string{fixtureTrail}, audit.Filter{Kind: "[x"}, "kind pattern"},
		{"edited record", []string{write("edited", tampered)}, audit.Filter{}, "line 12: hash mismatch"},
		{"empty file", []string{write("empty", nil)}, audit.Filter{}, "file is empty"},
		{"garbage", []string{write("garbage", []byte("<html>\n"))}, audit.Filter{}, "not a trail record"},
		{"missing", []string{filepath.Join(dir, "nope")}, audit.Filter{}, "no such file"},
		{"no files", nil, audit.Filter{}, "no trail files"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := audit.Show(&out, tc.paths, tc.f, false)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Show = %v, want an error containing %q", err, tc.want)
			}
		})
	}

	t.Run("torn final line is skipped and mentioned", func(t *testing.T) {
		p := write("torn", append(bytes.Join(lines, nil), `{"@timestamp":"20`...))
		var out bytes.Buffer
		if err := audit.Show(&out, []string{p}, audit.Filter{Kind: "trail.checkpoint"}, false); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), "skipped an incomplete final line") || !strings.Contains(out.String(), "trail.checkpoint") {
			t.Errorf("output:\n%s", out.String())
		}
	})
}
