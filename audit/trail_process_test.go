package audit_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
)

// The tests in this file re-execute the test binary as separate writer
// processes (TestHelperProcess), because cross-process locking and a
// SIGKILL in the middle of a write can only be tested with real processes.

const helperEnv = "SECRUN_AUDIT_HELPER"

// extraHelpers are child bodies defined in platform-specific test files.
var extraHelpers = map[string]func(mode string) error{}

// TestHelperProcess is not a test: it is the body of a child process.
// It appends records and reports each acknowledged one as "seq hash" on fd 3.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process for the multi-process tests")
	}
	if err := helperMain(mode); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain(mode string) error {
	if h, ok := extraHelpers[mode]; ok {
		return h(mode)
	}
	acks := os.NewFile(3, "acks")
	opts := audit.Options{Host: "helper"}
	if v := os.Getenv("AUDIT_MAXSIZE"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		opts.MaxSize = n
	}
	if kp := os.Getenv("AUDIT_KEY"); kp != "" {
		k, err := audit.LoadSigningKey(kp)
		if err != nil {
			return err
		}
		opts.SigningKey = k
	}
	count, err := strconv.Atoi(os.Getenv("AUDIT_COUNT"))
	if err != nil {
		return err
	}
	workers, err := strconv.Atoi(os.Getenv("AUDIT_WORKERS"))
	if err != nil {
		return err
	}
	pad := strings.Repeat("p", atoiOr(os.Getenv("AUDIT_PAD"), 0))
	tr, err := audit.Open(os.Getenv("AUDIT_PATH"), opts)
	if err != nil {
		return err
	}
	if mode == "fsize" {
		// Let the file grow by a few records only; writes past the limit
		// fail with EFBIG part way through a batch.
		fi, err := os.Stat(os.Getenv("AUDIT_PATH"))
		if err != nil {
			return err
		}
		signal.Ignore(syscall.SIGXFSZ)
		lim := uint64(fi.Size()) + 6000
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
			return err
		}
	}
	writer := os.Getenv("AUDIT_WRITER")
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	next := 0
	for range workers {
		wg.Go(func() {
			for {
				mu.Lock()
				if firstErr != nil || (count > 0 && next >= count) {
					mu.Unlock()
					return
				}
				n := next
				next++
				mu.Unlock()
				r, err := tr.Append(context.Background(), audit.Event{
					Kind: audit.KindContainerExec, Outcome: audit.OutcomeSuccess,
					Container: audit.Container{ID: "w" + writer},
					Fields:    map[string]any{"writer": writer, "n": n, "pad": pad},
				})
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				_, werr := fmt.Fprintf(acks, "%d %s\n", r.Seq, r.Hash)
				mu.Unlock()
				if werr != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		if _, err := fmt.Fprintf(acks, "ERR %s\n", strings.ReplaceAll(firstErr.Error(), "\n", " ")); err != nil {
			return err
		}
		return nil
	}
	return tr.Close()
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

type helper struct {
	cmd  *exec.Cmd
	acks *bufio.Scanner
}

func startHelper(t *testing.T, mode string, env ...string) *helper {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode), env...)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("killing helper: %v", err)
			}
			if err := cmd.Wait(); err != nil {
				t.Logf("helper: %v", err)
			}
		}
		if err := r.Close(); err != nil {
			t.Errorf("closing pipe: %v", err)
		}
	})
	return &helper{cmd: cmd, acks: bufio.NewScanner(r)}
}

type ack struct {
	seq  uint64
	hash string
}

func parseAck(t *testing.T, line string) (ack, string) {
	t.Helper()
	if msg, ok := strings.CutPrefix(line, "ERR "); ok {
		return ack{}, msg
	}
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("bad ack line %q", line)
	}
	seq, err := strconv.ParseUint(f[0], 10, 64)
	if err != nil {
		t.Fatalf("bad ack line %q", line)
	}
	return ack{seq: seq, hash: f[1]}, ""
}

// chainHashes maps seq to hash over every record of the trail's files.
func chainHashes(t *testing.T, files []string) map[uint64]audit.Record {
	t.Helper()
	out := map[uint64]audit.Record{}
	for _, f := range files {
		for _, line := range readLines(t, f) {
			if len(line) == 0 || line[len(line)-1] != '\n' {
				continue // the torn tail
			}
			r, err := audit.ParseRecord(line)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[r.Seq] = r
		}
	}
	return out
}

func requireAcked(t *testing.T, files []string, acked []ack) {
	t.Helper()
	recs := chainHashes(t, files)
	for _, a := range acked {
		r, ok := recs[a.seq]
		if !ok {
			t.Fatalf("acknowledged record %d is missing from the trail", a.seq)
		}
		if r.Hash != a.hash {
			t.Fatalf("acknowledged record %d has hash %s in the trail, the writer was told %s", a.seq, r.Hash, a.hash)
		}
	}
}

// A writer killed with SIGKILL in the middle of a stream of appends leaves
// a trail that verifies and holds every record it acknowledged; the next
// writer removes a torn final line and records that it did.
func TestSIGKILLMidWriteKeepsEveryAcknowledgedRecord(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	var acked []ack
	for round, killAfter := range []int{50, 300, 1000, 120} {
		// Large records make batches span pages, so a kill can land
		// inside a write.
		h := startHelper(t, "writer", "AUDIT_PATH="+path, "AUDIT_COUNT=0", "AUDIT_WORKERS=32",
			"AUDIT_PAD=3000", "AUDIT_WRITER="+strconv.Itoa(round), "AUDIT_MAXSIZE=2000000")
		n := 0
		for h.acks.Scan() {
			a, errMsg := parseAck(t, h.acks.Text())
			if errMsg != "" {
				t.Fatalf("writer failed: %s", errMsg)
			}
			acked = append(acked, a)
			n++
			if n == killAfter {
				if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err := h.cmd.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: writer ended with %v, want SIGKILL", round, err)
		}

		files := trailFiles(t, path)
		rep := mustVerify(t, files, nil)
		requireAcked(t, files, acked)
		t.Logf("round %d: %d acknowledged before the kill, %d records, torn tail %d bytes, %d recoveries so far",
			round, n, rep.Records, rep.TornBytes, rep.Recovered)
	}

	// Whatever the kills left, the next writer continues the chain.
	tr := openTrail(t, path, audit.Options{})
	mustAppend(t, tr, started("after"))
	files := trailFiles(t, path)
	rep := mustVerify(t, files, nil)
	if rep.TornBytes != 0 {
		t.Errorf("torn tail survived reopening: %+v", rep)
	}
	requireAcked(t, files, acked)
}

// Eight processes append 1,000 records each to one trail (rotating and
// checkpointing as they go); the chain verifies and holds all 8,000.
func TestEightProcessesAppendConcurrently(t *testing.T) {
	dir := t.TempDir()
	keyPath, pubPath, err := audit.GenerateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := audit.LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "trail", "audit.log")
	const writers, each = 8, 1000
	var hs []*helper
	for w := range writers {
		hs = append(hs, startHelper(t, "writer", "AUDIT_PATH="+path, "AUDIT_COUNT="+strconv.Itoa(each),
			"AUDIT_WORKERS=4", "AUDIT_WRITER="+strconv.Itoa(w), "AUDIT_KEY="+keyPath, "AUDIT_MAXSIZE=300000"))
	}
	var acked []ack
	for w, h := range hs {
		n := 0
		for h.acks.Scan() {
			a, errMsg := parseAck(t, h.acks.Text())
			if errMsg != "" {
				t.Fatalf("writer %d failed: %s", w, errMsg)
			}
			acked = append(acked, a)
			n++
		}
		if err := h.cmd.Wait(); err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
		if n != each {
			t.Fatalf("writer %d acknowledged %d records, want %d", w, n, each)
		}
	}
	files := trailFiles(t, path)
	rep := mustVerify(t, files, ed25519.PublicKey(pub))
	if len(files) < 3 || rep.Checkpoints < len(files)-1 {
		t.Errorf("files %d, checkpoints %d: want rotations, each with a checkpoint", len(files), rep.Checkpoints)
	}
	requireAcked(t, files, acked)
	seen := map[string]bool{}
	for _, r := range chainHashes(t, files) {
		if r.Kind != audit.KindContainerExec {
			continue
		}
		k := fmt.Sprint(r.Fields["writer"], "/", r.Fields["n"])
		if seen[k] {
			t.Fatalf("record %s appears twice", k)
		}
		seen[k] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("trail holds %d writer records, want %d", len(seen), writers*each)
	}
	t.Logf("%d records in %d files, %d checkpoints", rep.Records, len(files), rep.Checkpoints)
}

// A write that fails part way (here: the file size limit) fails the
// Appends in that batch and leaves the file ending on a record boundary.
func TestFailedWriteIsRefusedAndUndone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	tr, err := audit.Open(path, audit.Options{Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, tr, started("before"))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	h := startHelper(t, "fsize", "AUDIT_PATH="+path, "AUDIT_COUNT=0", "AUDIT_WORKERS=8", "AUDIT_PAD=700", "AUDIT_WRITER=f")
	var acked []ack
	var failure string
	for h.acks.Scan() {
		a, errMsg := parseAck(t, h.acks.Text())
		if errMsg != "" {
			failure = errMsg
			continue
		}
		acked = append(acked, a)
	}
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	if !strings.Contains(failure, "file too large") {
		t.Fatalf("writer failure = %q, want the EFBIG write error", failure)
	}
	rep := mustVerify(t, []string{path}, nil)
	if rep.TornBytes != 0 {
		t.Errorf("a failed write left %d torn bytes", rep.TornBytes)
	}
	requireAcked(t, []string{path}, acked)
	if rep.LastSeq != 2+uint64(len(acked)) {
		t.Errorf("trail ends at %d, want %d: only acknowledged records may remain", rep.LastSeq, 2+len(acked))
	}
}
