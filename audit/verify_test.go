package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secrun/secrun/audit"
)

// rehash recomputes a line's chain fields the way docs/audit-fields.md
// describes (an attacker without the signing key can do the same): set
// prev_hash, then hash = SHA-256 of the line up to and including
// `"hash":"`.
func rehash(t *testing.T, line []byte, prev string) ([]byte, string) {
	t.Helper()
	line = bytes.TrimSuffix(line, []byte{'\n'})
	const pk, hk = `"prev_hash":"`, `","hash":"`
	i := bytes.LastIndex(line, []byte(pk))
	j := bytes.LastIndex(line, []byte(hk))
	if i < 0 || j < 0 {
		t.Fatalf("no chain fields in %s", line)
	}
	var b []byte
	b = append(b, line[:i+len(pk)]...)
	b = append(b, prev...)
	b = append(b, hk...)
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	b = append(b, h...)
	b = append(b, `"}}`+"\n"...)
	return b, h
}

// rechain rehashes lines from index from on, as an attacker who edited a
// record would.
func rechain(t *testing.T, lines [][]byte, from int) {
	t.Helper()
	prev := strings.Repeat("0", 64)
	if from > 0 {
		r, err := audit.ParseRecord(lines[from-1])
		if err != nil {
			t.Fatal(err)
		}
		prev = r.Hash
	}
	for i := from; i < len(lines); i++ {
		lines[i], prev = rehash(t, lines[i], prev)
	}
}

// signedTrail writes a trail of 20 events plus a checkpoint and returns its
// directory, path and public key. Lines: 1 trail.created, 2..21 events,
// 22 the checkpoint (covering 21 records).
func signedTrail(t *testing.T) (string, string, ed25519.PublicKey) {
	t.Helper()
	dir := t.TempDir()
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	tr, err := audit.Open(path, audit.Options{SigningKey: priv, Host: "h", Now: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		mustAppend(t, tr, started(fmt.Sprint("c", i)))
	}
	if err := tr.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, path, pub
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyNamesTheFirstBadRecord(t *testing.T) {
	tests := []struct {
		name     string
		tamper   func(t *testing.T, lines [][]byte) [][]byte
		line     int
		seq      uint64
		reason   string
		keepSide bool // keep the checkpoint file (default: remove it, to test the chain alone)
	}{
		{
			name: "edited record",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[4] = bytes.Replace(l[4], []byte(`"id":"c3"`), []byte(`"id":"c9"`), 1)
				return l
			},
			line: 5, seq: 5, reason: "hash mismatch",
		},
		{
			name: "edited record with its own hash recomputed",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				prev, err := audit.ParseRecord(l[3])
				if err != nil {
					t.Fatal(err)
				}
				l[4], _ = rehash(t, bytes.Replace(l[4], []byte(`"outcome":"success"`), []byte(`"outcome":"failure"`), 1), prev.Hash)
				return l
			},
			line: 6, seq: 6, reason: "prev_hash does not match the hash of record 5",
		},
		{
			name: "whole chain recomputed after an edit, caught by the signed checkpoint",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[4] = bytes.Replace(l[4], []byte(`"id":"c3"`), []byte(`"id":"c9"`), 1)
				rechain(t, l, 4)
				return l
			},
			keepSide: true, line: 21, seq: 21, reason: "does not match the signed checkpoint",
		},
		{
			name:   "deleted record",
			tamper: func(t *testing.T, l [][]byte) [][]byte { return append(l[:6:6], l[7:]...) },
			line:   7, seq: 8, reason: "sequence jumps from 6 to 8: 1 record(s) missing",
		},
		{
			name: "reordered records",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[6], l[7] = l[7], l[6]
				return l
			},
			line: 7, seq: 8, reason: "sequence jumps from 6 to 8",
		},
		{
			name:   "duplicated record",
			tamper: func(t *testing.T, l [][]byte) [][]byte { return append(l[:8:8], l[7:]...) },
			line:   9, seq: 8, reason: "sequence 8 follows 8",
		},
		{
			name: "records deleted from the head",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				return l[3:]
			},
			line: 1, seq: 4, reason: "not with trail.created or trail.rotated",
		},
		{
			name:     "tail truncated at a line boundary",
			tamper:   func(t *testing.T, l [][]byte) [][]byte { return l[:15] },
			keepSide: true, line: 15, seq: 15, reason: "the tail was truncated",
		},
		{
			name: "tail truncated in the middle of a line",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[15] = l[15][:40]
				return l[:16]
			},
			keepSide: true, line: 15, seq: 15, reason: "the tail was truncated",
		},
		{
			name: "garbage line",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				return append(l[:10:10], append([][]byte{[]byte("hello world\n")}, l[10:]...)...)
			},
			line: 11, seq: 11, reason: "not a trail record",
		},
		{
			name: "empty line",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				return append(l[:10:10], append([][]byte{[]byte("\n")}, l[10:]...)...)
			},
			line: 11, seq: 11, reason: "empty line",
		},
		{
			name: "CRLF line ending",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[2] = append(bytes.TrimSuffix(l[2], []byte{'\n'}), '\r', '\n')
				return l
			},
			line: 3, seq: 3, reason: "not a trail record",
		},
		{
			name: "forged trail.created in the middle",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[9] = bytes.Replace(l[9], []byte(`"action":"container.started"`), []byte(`"action":"trail.created"`), 1)
				rechain(t, l, 9)
				return l
			},
			line: 10, seq: 10, reason: "trail.created may only start a file",
		},
		{
			name: "checkpoint record with a forged count",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				l[21] = bytes.Replace(l[21], []byte(`"count":21`), []byte(`"count":20`), 1)
				rechain(t, l, 21)
				return l
			},
			line: 22, seq: 22, reason: "checkpoint claims 20 records",
		},
		{
			name: "checkpoint record with a broken signature",
			tamper: func(t *testing.T, l [][]byte) [][]byte {
				r, err := audit.ParseRecord(l[21])
				if err != nil {
					t.Fatal(err)
				}
				old := jsonB64(r.Checkpoint.Signature)
				sig := bytes.Clone(r.Checkpoint.Signature)
				sig[0] ^= 0xff
				l[21] = bytes.Replace(l[21], []byte(old), []byte(jsonB64(sig)), 1)
				rechain(t, l, 21)
				return l
			},
			line: 22, seq: 22, reason: "signature does not verify",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, path, pub := signedTrail(t)
			if rep, err := audit.Verify([]string{path}, pub); err != nil || rep.Records != 22 || rep.SignedSeq != 21 {
				t.Fatalf("untouched trail: %+v, %v", rep, err)
			}
			writeLines(t, path, tc.tamper(t, readLines(t, path)))
			var key ed25519.PublicKey
			if tc.keepSide {
				key = pub
			} else if err := os.Remove(audit.CheckpointPath(path)); err != nil {
				t.Fatal(err)
			}
			_, err := audit.Verify([]string{path}, key)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a *VerifyError", err)
			}
			if ve.File != path || ve.Line != tc.line || ve.Seq != tc.seq || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("Verify error = %q (file %s line %d seq %d)\nwant line %d seq %d reason containing %q",
					ve, ve.File, ve.Line, ve.Seq, tc.line, tc.seq, tc.reason)
			}
			if !strings.Contains(ve.Error(), fmt.Sprintf("line %d", tc.line)) {
				t.Errorf("message %q does not name the line", ve.Error())
			}
		})
	}
}

func jsonB64(b []byte) string {
	s, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	return string(s)
}

func TestVerifyCheckpointFile(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, path string, pub ed25519.PublicKey) ed25519.PublicKey
		reason string
	}{
		{
			name: "missing with a trusted key",
			tamper: func(t *testing.T, path string, pub ed25519.PublicKey) ed25519.PublicKey {
				if err := os.Remove(audit.CheckpointPath(path)); err != nil {
					t.Fatal(err)
				}
				return pub
			},
			reason: "checkpoint file is missing",
		},
		{
			name: "count edited",
			tamper: func(t *testing.T, path string, pub ed25519.PublicKey) ed25519.PublicKey {
				editFile(t, audit.CheckpointPath(path), `"count":21`, `"count":5`)
				return nil
			},
			reason: "signature does not verify",
		},
		{
			name: "replaced by one signed with another key",
			tamper: func(t *testing.T, path string, pub ed25519.PublicKey) ed25519.PublicKey {
				_, other, _ := signedTrail(t)
				data, err := os.ReadFile(audit.CheckpointPath(other))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(audit.CheckpointPath(path), data, 0o600); err != nil {
					t.Fatal(err)
				}
				return pub
			},
			reason: "not by the trusted key",
		},
		{
			name: "not a checkpoint",
			tamper: func(t *testing.T, path string, pub ed25519.PublicKey) ed25519.PublicKey {
				if err := os.WriteFile(audit.CheckpointPath(path), []byte("{]"), 0o600); err != nil {
					t.Fatal(err)
				}
				return nil
			},
			reason: "is not a secrun checkpoint",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, path, pub := signedTrail(t)
			key := tc.tamper(t, path, pub)
			_, err := audit.Verify([]string{path}, key)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || ve.File != audit.CheckpointPath(path) || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("Verify = %v, want an error about %s containing %q", err, audit.CheckpointPath(path), tc.reason)
			}
		})
	}
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s does not contain %s", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Only the checkpoint record itself may go missing from the tail without a
// finding: it restates the checkpoint file, and nothing it protects is lost.
func TestVerifyToleratesATornCheckpointRecord(t *testing.T) {
	_, path, pub := signedTrail(t)
	lines := readLines(t, path)
	lines[21] = lines[21][:30]
	writeLines(t, path, lines)
	rep, err := audit.Verify([]string{path}, pub)
	if err != nil || rep.LastSeq != 21 || rep.TornBytes != 30 || rep.SignedSeq != 21 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestVerifyMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content string
		reason  string
	}{
		{"empty file", "", "file is empty"},
		{"only a partial line", `{"@timestamp":`, "no complete record"},
		{"garbage", "\x00\x01\x02\n", "not a trail record"},
		{"JSON but not a record", `{"a":1}` + "\n", "not a trail record"},
		{"huge line", strings.Repeat("x", audit.MaxRecordSize+10) + "\n", "over"},
		{"binary noise", string(bytes.Repeat([]byte{0xff, '\n', '{'}, 100)), "not a trail record"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := audit.Verify([]string{p}, nil)
			var ve *audit.VerifyError
			if !errors.As(err, &ve) || !strings.Contains(ve.Reason, tc.reason) {
				t.Fatalf("Verify = %v, want a VerifyError containing %q", err, tc.reason)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		_, err := audit.Verify([]string{filepath.Join(dir, "nope")}, nil)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("Verify = %v, want a not-exist error", err)
		}
	})
	t.Run("no files", func(t *testing.T) {
		if _, err := audit.Verify(nil, nil); err == nil {
			t.Fatal("Verify(nil) succeeded")
		}
	})
}
