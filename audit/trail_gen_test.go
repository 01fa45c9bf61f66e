package audit

import (
	"bufio"
	"fmt"
	"os"
	"testing"
	"time"
)

// syntheticEvent returns a realistic event; i picks one of the kinds a run
// writes.
func syntheticEvent(i int) Event {
	id := fmt.Sprintf("%064x", i/8+1)
	e := Event{
		Container: Container{ID: id, Name: fmt.Sprintf("web-%d", i/8), Runtime: "/usr/local/sbin/runc", PID: 10000 + i/8},
		Image:     ImageRef{Name: "registry.example.com/team/web:1.4.2", Digest: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	}
	switch i % 8 {
	case 0:
		e.Kind, e.Outcome = KindImageResolved, OutcomeSuccess
	case 1:
		e.Kind, e.Outcome = KindSignatureVerdict, OutcomeSuccess
		e.Fields = map[string]any{"signature.verified": true, "signature.signers": []string{"ci@example.com"}}
	case 2:
		e.Kind, e.Outcome = KindSpecCreated, OutcomeSuccess
		e.Fields = map[string]any{"spec.hash": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}
	case 3:
		e.Kind, e.Outcome = KindPolicyDecision, OutcomeAllowed
		e.Policy = &PolicyRef{Name: "baseline", Hash: "sha256:fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", InputHash: "sha256:3fdba35f04dc8c462986c992bcf875546257113072a909c162f7e470e581e278"}
	case 4:
		e.Kind, e.Outcome = KindRuntimeInvoked, OutcomeSuccess
		e.Fields = map[string]any{"runtime.command": "run"}
	case 5:
		e.Kind, e.Outcome = KindContainerStarted, OutcomeSuccess
	case 6:
		e.Kind, e.Outcome = KindSeccompDenied, OutcomeDenied
		e.Reason = "seccomp errno on syscall ptrace by pid 4242"
		e.Fields = map[string]any{"syscall.name": "ptrace", "syscall.nr": 101, "syscall.arch": "amd64", "seccomp.action": "errno", "process.pid": 4242}
	case 7:
		e.Kind, e.Outcome = KindContainerExited, OutcomeSuccess
		e.Fields = map[string]any{"exit.code": 0}
	}
	return e
}

// writeSyntheticTrail writes a valid n-record trail quickly (no fsync), for
// benchmarks of Verify.
func writeSyntheticTrail(path string, n int) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	actor := Actor{UID: 0, PID: 4321, Command: "secrun run --name web registry.example.com/team/web:1.4.2"}
	t0 := time.Date(2025, 11, 23, 12, 0, 0, 0, time.UTC)
	head := zeroHash
	var line []byte
	var size int64
	for i := 0; i < n; i++ {
		e := Event{Kind: KindTrailCreated, Outcome: OutcomeSuccess, Reason: "new audit trail"}
		if i > 0 {
			e = syntheticEvent(i)
		}
		if err := validateEvent(&e, true); err != nil {
			return 0, err
		}
		body, err := encodeBody(Record{Time: t0.Add(time.Duration(i) * time.Millisecond), Host: "node-1", Event: e, Actor: actor})
		if err != nil {
			return 0, err
		}
		line, head = appendLine(line[:0], body, uint64(i+1), head)
		size += int64(len(line))
		if _, err := w.Write(line); err != nil {
			return 0, err
		}
	}
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

// BenchmarkVerify1M verifies a one-million-record trail per iteration.
func BenchmarkVerify1M(b *testing.B) {
	n := 1_000_000
	if testing.Short() {
		n = 100_000
	}
	path := b.TempDir() + "/audit.log"
	size, err := writeSyntheticTrail(path, n)
	if err != nil {
		b.Fatal(err)
	}
	// Warm the page cache: the figure is verification, not disk reads.
	if _, err := Verify([]string{path}, nil); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		rep, err := Verify([]string{path}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Records != uint64(n) {
			b.Fatalf("verified %d records, want %d", rep.Records, n)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N)*1e6/float64(n), "s/1M-records")
}
