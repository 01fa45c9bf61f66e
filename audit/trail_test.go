package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/secrun/secrun/audit"
)

// fixedClock returns a clock that advances one second per call.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 11, 23, 10, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

func openTrail(t testing.TB, path string, opts audit.Options) *audit.Trail {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "test-host"
	}
	tr, err := audit.Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

func mustAppend(t testing.TB, tr *audit.Trail, e audit.Event) audit.Record {
	t.Helper()
	r, err := tr.Append(context.Background(), e)
	if err != nil {
		t.Fatalf("Append(%s): %v", e.Kind, err)
	}
	return r
}

func mustVerify(t testing.TB, files []string, pub ed25519.PublicKey) audit.Report {
	t.Helper()
	rep, err := audit.Verify(files, pub)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return rep
}

func trailFiles(t testing.TB, path string) []string {
	t.Helper()
	files, err := audit.Files(path)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func readLines(t testing.TB, path string) [][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func started(id string) audit.Event {
	return audit.Event{
		Kind: audit.KindContainerStarted, Outcome: audit.OutcomeSuccess,
		Container: audit.Container{ID: id, Name: "web", Runtime: "runc", PID: 4242},
		Image:     audit.ImageRef{Name: "example.com/web:1", Digest: "sha256:" + strings.Repeat("ab", 32)},
	}
}

func TestAppendWritesDurableChainedRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "audit")
	path := filepath.Join(dir, "audit.log")
	tr := openTrail(t, path, audit.Options{Now: fixedClock()})

	pol := &audit.PolicyRef{Name: "baseline", Hash: "sha256:p", InputHash: "sha256:i",
		Violations: []any{map[string]any{"id": "no-privileged", "msg": "privileged containers are denied"}}}
	events := []audit.Event{
		{Kind: audit.KindImageResolved, Outcome: audit.OutcomeSuccess, Image: audit.ImageRef{Name: "example.com/web:1"}},
		{Kind: audit.KindPolicyDecision, Outcome: audit.OutcomeDenied, Reason: "1 violation", Policy: pol},
		{Kind: audit.KindPolicyDecision, Outcome: audit.OutcomeAllowed, Policy: &audit.PolicyRef{Name: "baseline"}},
		started("c1"),
		{Kind: audit.KindContainerExited, Container: audit.Container{ID: "c1"},
			Fields: map[string]any{"exit.code": 137, "oom_killed": true, "signal": "SIGKILL"}},
	}
	var got []audit.Record
	for _, e := range events {
		got = append(got, mustAppend(t, tr, e))
	}
	// Seq 1 is the trail.created record Open wrote.
	for i, r := range got {
		if r.Seq != uint64(i+2) {
			t.Errorf("record %d: Seq = %d, want %d", i, r.Seq, i+2)
		}
		if i > 0 && r.PrevHash != got[i-1].Hash {
			t.Errorf("record %d: PrevHash does not chain to the previous record", i)
		}
		if r.Host != "test-host" || r.Actor.PID != os.Getpid() || r.Actor.UID != os.Getuid() {
			t.Errorf("record %d: host/actor = %q/%+v", i, r.Host, r.Actor)
		}
	}
	if got[1].Outcome != audit.OutcomeDenied || got[4].Outcome != audit.OutcomeUnknown {
		t.Errorf("outcomes = %q, %q; want denied, unknown (the default)", got[1].Outcome, got[4].Outcome)
	}

	// Read back: every line parses to the record Append returned.
	lines := readLines(t, path)
	if len(lines) != len(events)+1 {
		t.Fatalf("file has %d lines, want %d", len(lines), len(events)+1)
	}
	first, err := audit.ParseRecord(lines[0])
	if err != nil || first.Kind != audit.KindTrailCreated || first.Seq != 1 {
		t.Fatalf("first record = %+v, %v; want trail.created seq 1", first, err)
	}
	for i, line := range lines[1:] {
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Fatalf("line %d: %v", i+2, err)
		}
		want := got[i]
		if r.Seq != want.Seq || r.Hash != want.Hash || r.Kind != want.Kind || r.Outcome != want.Outcome ||
			!r.Time.Equal(want.Time) || r.Container != want.Container || r.Image != want.Image {
			t.Errorf("line %d parsed as %+v, Append returned %+v", i+2, r, want)
		}
	}
	den, err := audit.ParseRecord(lines[2])
	if err != nil {
		t.Fatal(err)
	}
	if den.Policy == nil || den.Policy.InputHash != "sha256:i" || len(den.Policy.Violations) != 1 {
		t.Errorf("policy round trip = %+v", den.Policy)
	}
	ex, err := audit.ParseRecord(lines[5])
	if err != nil {
		t.Fatal(err)
	}
	if ex.Fields["exit.code"] != float64(137) || ex.Fields["oom_killed"] != true {
		t.Errorf("fields round trip = %v", ex.Fields)
	}

	rep := mustVerify(t, []string{path}, nil)
	if rep.Records != uint64(len(events)+1) || rep.Head != got[len(got)-1].Hash || rep.FirstSeq != 1 {
		t.Errorf("report = %+v", rep)
	}

	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600, path + ".lock": 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %#o, want %#o", p, fi.Mode().Perm(), want)
		}
	}
}

func TestRecordJSONUsesECSNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, audit.Options{Now: fixedClock()})
	mustAppend(t, tr, audit.Event{Kind: audit.KindPolicyDecision, Outcome: audit.OutcomeAllowed, Reason: "ok",
		Container: audit.Container{ID: "cid", Name: "web", Runtime: "runc", PID: 7},
		Image:     audit.ImageRef{Name: "img", Digest: "sha256:d"},
		Policy:    &audit.PolicyRef{Name: "baseline", Hash: "ph", InputHash: "ih"},
		Fields:    map[string]any{"spec.hash": "sha256:s"}})
	line := string(readLines(t, path)[1])
	for _, want := range []string{
		`"@timestamp":"2025-11-23T10:00:0`, `"ecs":{"version":"`, `"host":{"hostname":"test-host"}`,
		`"user":{"id":"`, `"process":{"pid":`, `"container":{"id":"cid","name":"web","runtime":"runc","image":{"name":"img","hash":{"all":["sha256:d"]}}}`,
		`"secrun":{"container_pid":7,"policy":{"name":"baseline","hash":"ph","input_hash":"ih"},"fields":{"spec.hash":"sha256:s"}}`,
		`"event":{"action":"policy.decision","type":["allowed"],"reason":"ok","outcome":"success","sequence":2,"prev_hash":"`,
	} {
		if !strings.Contains(line, want) {
			t.Errorf("record line lacks %s\nline: %s", want, line)
		}
	}
}

func TestAppendRejectsBadEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, audit.Options{})
	tests := []struct {
		name string
		e    audit.Event
		want string
	}{
		{"empty kind", audit.Event{}, "must be 1 to 64"},
		{"upper case kind", audit.Event{Kind: "Container.Started"}, "only lowercase"},
		{"empty dotted word", audit.Event{Kind: "container..started"}, "empty dotted word"},
		{"reserved kind", audit.Event{Kind: audit.KindTrailCheckpoint}, "reserved"},
		{"bad outcome", audit.Event{Kind: "container.started", Outcome: "maybe"}, "outcome"},
		{"field prefix clash", audit.Event{Kind: "container.exited", Fields: map[string]any{"exit": 1, "exit.code": 1}}, "prefix"},
		{"field name with space", audit.Event{Kind: "container.exited", Fields: map[string]any{"exit code": 1}}, "space"},
		{"unencodable field", audit.Event{Kind: "container.exited", Fields: map[string]any{"x": math.NaN()}}, "encoding"},
		{"oversized record", audit.Event{Kind: "container.exited", Reason: strings.Repeat("x", audit.MaxRecordSize)}, "exceeds"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tr.Append(context.Background(), tc.e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Append error = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// None of the refused events reached the file.
	if rep := mustVerify(t, []string{path}, nil); rep.Records != 1 {
		t.Errorf("trail has %d records, want only trail.created", rep.Records)
	}
}

func TestReopenContinuesChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	for i := range 3 {
		tr, err := audit.Open(path, audit.Options{Host: "h"})
		if err != nil {
			t.Fatal(err)
		}
		mustAppend(t, tr, started(fmt.Sprint("c", i)))
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
	}
	rep := mustVerify(t, []string{path}, nil)
	if rep.Records != 4 {
		t.Errorf("Records = %d, want 4 (trail.created + 3)", rep.Records)
	}
}

func TestConcurrentAppendsShareTheChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, audit.Options{})
	const n = 400
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r, err := tr.Append(context.Background(), started(fmt.Sprint("c", i)))
			seqs[i], errs[i] = r.Seq, err
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if seen[seqs[i]] {
			t.Fatalf("seq %d returned twice", seqs[i])
		}
		seen[seqs[i]] = true
	}
	if rep := mustVerify(t, []string{path}, nil); rep.Records != n+1 {
		t.Errorf("Records = %d, want %d", rep.Records, n+1)
	}
}

// Two Trails on one path in one process behave like two processes: each
// has its own lock description and must catch up with the other's writes.
func TestTwoWritersOnOnePathInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := openTrail(t, path, audit.Options{MaxSize: 8 << 10})
	b := openTrail(t, path, audit.Options{MaxSize: 8 << 10})
	var wg sync.WaitGroup
	for _, tr := range []*audit.Trail{a, b} {
		wg.Go(func() {
			for i := range 100 {
				if _, err := tr.Append(context.Background(), started(fmt.Sprint("c", i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	files := trailFiles(t, path)
	if len(files) < 3 {
		t.Errorf("expected rotations at 8 KiB, got files %v", files)
	}
	rep := mustVerify(t, files, nil)
	var created, user int
	for _, f := range files {
		for _, line := range readLines(t, f) {
			r, err := audit.ParseRecord(line)
			if err != nil {
				t.Fatal(err)
			}
			switch r.Kind {
			case audit.KindTrailCreated:
				created++
			case audit.KindContainerStarted:
				user++
			}
		}
	}
	if created != 1 || user != 200 {
		t.Errorf("found %d trail.created and %d appended records, want 1 and 200 (report %+v)", created, user, rep)
	}
}

func TestRotationChainsFilesAndVerifyChecksTheLinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	tr := openTrail(t, path, audit.Options{MaxSize: 4 << 10})
	for i := range 60 {
		mustAppend(t, tr, started(fmt.Sprint("c", i)))
	}
	files := trailFiles(t, path)
	if len(files) < 4 {
		t.Fatalf("files = %v, want several rotations", files)
	}
	for i, f := range files[:len(files)-1] {
		if want := fmt.Sprintf("%s.%d", path, i+1); f != want {
			t.Errorf("files[%d] = %s, want %s", i, f, want)
		}
	}
	rep := mustVerify(t, files, nil)
	if rep.Records != uint64(61+len(files)-1) || rep.Files != len(files) || len(rep.Warnings) != 0 {
		t.Errorf("report = %+v", rep)
	}
	// Every rotated-in file starts with trail.rotated naming its predecessor.
	second, err := audit.ParseRecord(readLines(t, files[1])[0])
	if err != nil {
		t.Fatal(err)
	}
	if second.Kind != audit.KindTrailRotated || second.Fields["trail.previous_file"] != "audit.log.1" {
		t.Errorf("second file starts with %s %v", second.Kind, second.Fields)
	}

	t.Run("tail of the chain alone verifies with a warning", func(t *testing.T) {
		rep := mustVerify(t, files[2:], nil)
		if rep.FirstSeq <= 1 || len(rep.Warnings) == 0 {
			t.Errorf("report = %+v, want a partial chain warning", rep)
		}
	})
	t.Run("files out of order fail", func(t *testing.T) {
		swapped := append([]string{files[1], files[0]}, files[2:]...)
		_, err := audit.Verify(swapped, nil)
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.File != files[0] || ve.Line != 1 {
			t.Fatalf("Verify = %v, want an error at %s line 1", err, files[0])
		}
	})
	t.Run("a missing middle file fails", func(t *testing.T) {
		gap := append([]string{files[0]}, files[2:]...)
		_, err := audit.Verify(gap, nil)
		var ve *audit.VerifyError
		if !errors.As(err, &ve) || ve.File != files[2] || !strings.Contains(ve.Reason, "missing") {
			t.Fatalf("Verify = %v, want records missing at the start of %s", err, files[2])
		}
	})
	t.Run("a middle file alone cannot pose as the start", func(t *testing.T) {
		only := []string{files[1]}
		if rep, err := audit.Verify(only, nil); err != nil || rep.FirstSeq <= 1 {
			t.Fatalf("Verify = %+v, %v", rep, err)
		}
	})
}

func TestCheckpointsAreSignedAndVerified(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := audit.GenerateKey(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := audit.LoadSigningKey(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	tr := openTrail(t, path, audit.Options{SigningKey: key, MaxSize: 4 << 10})
	for i := range 40 {
		mustAppend(t, tr, started(fmt.Sprint("c", i)))
	}
	if err := tr.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
	files := trailFiles(t, path)
	rep := mustVerify(t, files, pub)
	if !rep.Trusted || rep.Checkpoints < len(files) || rep.SignedSeq != rep.LastSeq-1 || rep.KeyID != audit.KeyID(pub) {
		t.Errorf("report = %+v; want a trusted checkpoint per rotation plus the requested one, covering all but itself", rep)
	}
	if rep.CheckpointFile != audit.CheckpointPath(path) {
		t.Errorf("CheckpointFile = %q", rep.CheckpointFile)
	}
	// Each rotated file carries its own checkpoint and verifies alone.
	for _, f := range files[:len(files)-1] {
		if _, err := audit.Verify([]string{f}, pub); err != nil {
			t.Errorf("rotated file %s alone: %v", f, err)
		}
	}

	t.Run("another key is refused", func(t *testing.T) {
		other, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = audit.Verify(files, other)
		if err == nil || !strings.Contains(err.Error(), "not by the trusted key") {
			t.Fatalf("Verify with another key = %v", err)
		}
	})
	t.Run("without a key the signature is only self-consistent", func(t *testing.T) {
		rep := mustVerify(t, files, nil)
		if rep.Trusted || rep.Checkpoints == 0 {
			t.Errorf("report = %+v", rep)
		}
	})
	t.Run("no signing key", func(t *testing.T) {
		plain := openTrail(t, filepath.Join(dir, "plain.log"), audit.Options{})
		if err := plain.Checkpoint(context.Background()); !errors.Is(err, audit.ErrNoSigningKey) {
			t.Fatalf("Checkpoint = %v, want ErrNoSigningKey", err)
		}
		_, err := audit.Verify([]string{filepath.Join(dir, "plain.log")}, pub)
		if err == nil || !strings.Contains(err.Error(), "checkpoint file is missing") {
			t.Fatalf("Verify of an unsigned trail with a key = %v", err)
		}
	})
}

func TestCheckpointOnClose(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	tr, err := audit.Open(path, audit.Options{SigningKey: priv, CheckpointOnClose: true, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	last := mustAppend(t, tr, started("c"))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	cp, err := audit.ReadCheckpointFile(audit.CheckpointPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if cp.Count != last.Seq || cp.Head != last.Hash {
		t.Errorf("closing checkpoint covers %d/%s, want %d/%s", cp.Count, cp.Head, last.Seq, last.Hash)
	}
	mustVerify(t, []string{path}, priv.Public().(ed25519.PublicKey))
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	keyPath, _, err := audit.GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := audit.GenerateKey(dir); err == nil {
		t.Error("GenerateKey overwrote an existing key")
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadSigningKey(keyPath); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("LoadSigningKey of a world-readable key = %v", err)
	}
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadSigningKey(garbage); err == nil {
		t.Error("LoadSigningKey accepted garbage")
	}
	if _, err := audit.LoadPublicKey(garbage); err == nil {
		t.Error("LoadPublicKey accepted garbage")
	}
}

func TestTornTailIsNotAcknowledgedAndIsRecovered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr, err := audit.Open(path, audit.Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	last := mustAppend(t, tr, started("c"))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	// A writer killed mid-write leaves part of a line.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := []byte(`{"@timestamp":"2025-11-23T10:00:00Z","ecs":{"version":"8.11.0"},"host":{"hostna`)
	if _, err := f.Write(torn); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	rep := mustVerify(t, []string{path}, nil)
	if rep.TornBytes != int64(len(torn)) || rep.LastSeq != last.Seq || len(rep.Warnings) == 0 {
		t.Errorf("report = %+v; want the torn line reported and the chain intact", rep)
	}

	tr = openTrail(t, path, audit.Options{})
	next := mustAppend(t, tr, started("d"))
	if next.Seq != last.Seq+2 {
		t.Errorf("next Seq = %d, want %d (after the trail.recovered record)", next.Seq, last.Seq+2)
	}
	rep = mustVerify(t, []string{path}, nil)
	if rep.TornBytes != 0 || rep.Recovered != 1 {
		t.Errorf("report after recovery = %+v", rep)
	}
	lines := readLines(t, path)
	rec, err := audit.ParseRecord(lines[len(lines)-2])
	if err != nil {
		t.Fatal(err)
	}
	if rec.Kind != audit.KindTrailRecovered || rec.Fields["recovered.bytes"] != float64(len(torn)) {
		t.Errorf("recovery record = %s %v", rec.Kind, rec.Fields)
	}
}

func TestOpenRefusesADamagedLastRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr, err := audit.Open(path, audit.Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, tr, started("c"))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(`"name":"web"`), []byte(`"name":"WEB"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.Open(path, audit.Options{Host: "h"}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("Open = %v, want a refusal naming the damaged record", err)
	}
}

func TestOpenRefusesSymlinksAndOddFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "elsewhere")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "audit.log")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if tr, err := audit.Open(link, audit.Options{Host: "h"}); err == nil {
		tr.Close()
		t.Fatal("Open followed a symlink")
	}
	sub := filepath.Join(dir, "dir.log")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if tr, err := audit.Open(sub, audit.Options{Host: "h"}); err == nil {
		tr.Close()
		t.Fatal("Open accepted a directory")
	}
}

func TestAppendAfterCloseAndCancel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr, err := audit.Open(path, audit.Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.Append(ctx, started("c")); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a canceled context = %v", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := tr.Append(context.Background(), started("c")); !errors.Is(err, audit.ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if rep := mustVerify(t, []string{path}, nil); rep.Records != 1 {
		t.Errorf("Records = %d, want 1", rep.Records)
	}
}

// Removing the lock file while writers run must not let two writers in at
// once: a writer that finds its lock file replaced locks the new one.
func TestRemovedLockFileStillSerializes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	a := openTrail(t, path, audit.Options{})
	mustAppend(t, a, started("a0"))
	if err := os.Remove(path + ".lock"); err != nil {
		t.Fatal(err)
	}
	b := openTrail(t, path, audit.Options{})
	var wg sync.WaitGroup
	for _, tr := range []*audit.Trail{a, b} {
		wg.Go(func() {
			for i := range 200 {
				if _, err := tr.Append(context.Background(), started(fmt.Sprint("c", i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if rep := mustVerify(t, []string{path}, nil); rep.Records != 402 {
		t.Errorf("Records = %d, want 402", rep.Records)
	}
}

// AppendAll writes its records in order, contiguous in the chain, even with
// other writers appending at the same time.
func TestAppendAllKeepsOrderAndChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr := openTrail(t, path, audit.Options{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mustAppend(t, tr, started(fmt.Sprintf("other-%d", i)))
		}()
	}
	recs, err := tr.AppendAll(context.Background(), started("a"), started("b"), started("c"))
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3", len(recs))
	}
	for i, r := range recs {
		if want := string(rune('a' + i)); r.Event.Container.ID != want {
			t.Errorf("record %d is for %q, want %q", i, r.Event.Container.ID, want)
		}
		if i > 0 && (r.Seq != recs[i-1].Seq+1 || r.PrevHash != recs[i-1].Hash) {
			t.Errorf("record %d (seq %d) does not follow record %d (seq %d)", i, r.Seq, i-1, recs[i-1].Seq)
		}
	}
	if rep := mustVerify(t, []string{path}, nil); rep.Records != 12 {
		t.Errorf("Records = %d, want 12", rep.Records)
	}
	// A bad event refuses the whole batch before anything is written.
	if _, err := tr.AppendAll(context.Background(), started("d"), audit.Event{}); err == nil {
		t.Error("a batch with an invalid event was accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tr.AppendAll(ctx, started("e")); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendAll with a canceled context = %v", err)
	}
	if rep := mustVerify(t, []string{path}, nil); rep.Records != 12 {
		t.Errorf("after refused batches: Records = %d, want 12", rep.Records)
	}
}
