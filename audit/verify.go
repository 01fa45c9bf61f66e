package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
)

// Report summarizes a verified trail.
type Report struct {
	// Files and Records are how many files and records were checked.
	Files   int
	Records uint64
	// FirstSeq and LastSeq bound the chain; FirstSeq is above 1 when the
	// oldest files were not given.
	FirstSeq uint64
	LastSeq  uint64
	// Head is the hash of the last record.
	Head string
	// Checkpoints counts the "trail.checkpoint" records whose signatures
	// verified.
	Checkpoints int
	// SignedSeq is the highest record covered by a verified checkpoint
	// (in the trail or in the checkpoint file); records after it are
	// protected by the chain alone, which cannot reveal a cut tail.
	SignedSeq uint64
	// KeyID names the key the checkpoints are signed with.
	KeyID string
	// Trusted is true when signatures were checked against the caller's
	// public key rather than the key the checkpoints carry.
	Trusted bool
	// CheckpointFile is the sidecar checkpoint that was checked, "" if none.
	CheckpointFile string
	// Recovered counts "trail.recovered" records (torn lines removed by a
	// later writer).
	Recovered int
	// TornFile and TornBytes describe an unterminated final line: a write
	// that never completed and was never acknowledged. It is not part of
	// the chain; the next writer removes it.
	TornFile  string
	TornBytes int64
	// Warnings are findings that do not break the chain.
	Warnings []string
}

// VerifyError names the first bad record: the file, its 1-based line (0 for
// problems with a whole file), the sequence number the record has or should
// have had, and why it is bad.
type VerifyError struct {
	File   string
	Line   int
	Seq    uint64
	Reason string
	Err    error
}

func (e *VerifyError) Error() string {
	switch {
	case e.Line > 0 && e.Seq > 0:
		return fmt.Sprintf("audit trail %s line %d (record %d): %s", e.File, e.Line, e.Seq, e.Reason)
	case e.Line > 0:
		return fmt.Sprintf("audit trail %s line %d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("audit trail %s: %s", e.File, e.Reason)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Verify checks the trail files in chain order (as Files returns them): every
// record's own hash, the sequence numbers, every link to the previous record
// (also across files), every checkpoint signature, and the sidecar checkpoint
// of the last file, which reveals a truncated tail. With pub, signatures must
// be by that key and a checkpoint file must exist. An unterminated final line
// is reported in Report.TornBytes, not as an error: it was never
// acknowledged. On failure the error is a *VerifyError.
func Verify(paths []string, pub ed25519.PublicKey) (Report, error) {
	if len(paths) == 0 {
		return Report{}, errors.New("audit log verify: no trail files given")
	}
	if pub != nil && len(pub) != ed25519.PublicKeySize {
		return Report{}, fmt.Errorf("audit log verify: public key has %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	v := &verifier{pub: pub, rep: Report{Files: len(paths), Trusted: pub != nil}}
	last := paths[len(paths)-1]
	if err := v.loadSidecar(CheckpointPath(last)); err != nil {
		return v.rep, err
	}
	for i, p := range paths {
		if err := v.file(p, i == 0, i == len(paths)-1); err != nil {
			return v.report(), err
		}
	}
	if err := v.finish(last); err != nil {
		return v.report(), err
	}
	return v.report(), nil
}

func (v *verifier) report() Report {
	if v.rep.Records > 0 {
		v.rep.Head = string(v.head[:])
	}
	return v.rep
}

type verifier struct {
	pub ed25519.PublicKey
	rep Report

	seq  uint64
	head [64]byte

	sidecar     *Checkpoint
	sidecarPath string
	sidecarOK   bool

	lastFile string
	lastLine int
	// lastCheckpointSeq is the seq of the last checkpoint record itself.
	lastCheckpointSeq uint64
}

func (v *verifier) loadSidecar(path string) error {
	cp, err := ReadCheckpointFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if v.pub != nil {
			return &VerifyError{File: path, Reason: "checkpoint file is missing, so a truncated tail cannot be ruled out; restore it or verify without a public key", Err: err}
		}
		return nil
	}
	if err != nil {
		return &VerifyError{File: path, Reason: err.Error(), Err: err}
	}
	if err := cp.verify(v.pub); err != nil {
		return &VerifyError{File: path, Reason: err.Error(), Err: err}
	}
	v.sidecar, v.sidecarPath = cp, path
	v.rep.CheckpointFile = path
	v.rep.KeyID = cp.KeyID
	return nil
}

var zeroHashBytes = [64]byte([]byte(zeroHash))

// verifyChunk is how much of a file a verify worker takes at once.
const verifyChunk = 4 << 20

// lineChunk is a run of complete lines of one file, checked by a worker and
// then walked in order by the chain check.
type lineChunk struct {
	buf     []byte // the whole buffer, for reuse
	data    []byte
	results []checkedLine
	done    chan struct{}
	// tail is an unterminated final line; err a read error.
	tail []byte
	err  error
}

// checkedLine is a line checked on its own: its hash, shape and chain
// fields; rec is decoded only for the trail's own records.
type checkedLine struct {
	seq  uint64
	prev [64]byte
	hash [64]byte
	kind string
	rec  *Record
	err  error
}

func (v *verifier) file(path string, first, last bool) error {
	f, err := os.Open(path)
	if err != nil {
		return &VerifyError{File: path, Reason: err.Error(), Err: err}
	}
	defer f.Close()
	v.lastFile, v.lastLine = path, 0

	workers := max(1, runtime.GOMAXPROCS(0))
	work := make(chan *lineChunk, 2*workers)
	ordered := make(chan *lineChunk, 2*workers)
	stop := make(chan struct{})
	defer close(stop)
	chunkSize := verifyChunk
	if fi, err := f.Stat(); err == nil && fi.Size() < verifyChunk {
		chunkSize = int(fi.Size()) + 1
	}
	// Buffers and result slices go around again once the chain check is
	// done with a chunk, which spares the collector most of the garbage of
	// a large trail.
	free := make(chan *lineChunk, 2*workers+2)
	go readChunks(f, chunkSize, free, work, ordered, stop)
	for range workers {
		go func() {
			for c := range work {
				c.results = checkLines(c.data, c.results[:0])
				close(c.done)
			}
		}()
	}

	n := 0
	for c := range ordered {
		<-c.done
		if c.err != nil {
			return &VerifyError{File: path, Line: n + 1, Reason: c.err.Error(), Err: c.err}
		}
		for i := range c.results {
			n++
			if err := v.record(path, n, &c.results[i], first && n == 1, n == 1); err != nil {
				return err
			}
			v.lastLine = n
		}
		select {
		case free <- c:
		default:
		}
		if c.tail != nil {
			n++
			if len(c.tail) > MaxRecordSize {
				return &VerifyError{File: path, Line: n, Seq: v.seq + 1, Reason: fmt.Sprintf("line is over %d bytes", MaxRecordSize)}
			}
			if !last {
				return &VerifyError{File: path, Line: n, Seq: v.seq + 1, Reason: fmt.Sprintf("file ends with an incomplete line (%d bytes) but is not the last file", len(c.tail))}
			}
			v.rep.TornFile, v.rep.TornBytes = path, int64(len(c.tail))
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("%s line %d: incomplete final line (%d bytes) from a write that never finished; it was never acknowledged and is not part of the chain", path, n, len(c.tail)))
			if n == 1 {
				return &VerifyError{File: path, Line: n, Reason: "file holds no complete record"}
			}
		}
	}
	if n == 0 {
		return &VerifyError{File: path, Reason: "file is empty: a trail file always starts with a trail.created or trail.rotated record"}
	}
	return nil
}

// readChunks splits the file into chunks of whole lines and hands each to
// the workers and, in order, to the chain check. It stops early when stop
// closes.
func readChunks(r io.Reader, chunkSize int, free <-chan *lineChunk, work, ordered chan<- *lineChunk, stop <-chan struct{}) {
	defer close(ordered)
	defer close(work)
	send := func(c *lineChunk) bool {
		select {
		case work <- c:
		case <-stop:
			return false
		}
		select {
		case ordered <- c:
			return true
		case <-stop:
			return false
		}
	}
	var carry []byte
	for {
		c := &lineChunk{done: make(chan struct{})}
		var buf []byte
		select {
		case old := <-free:
			c.results = old.results[:0]
			buf = old.buf[:0]
		default:
		}
		if cap(buf) < max(chunkSize, 2*len(carry)) {
			buf = make([]byte, 0, max(chunkSize, 2*len(carry)))
		}
		buf = append(buf, carry...)
		c.buf = buf
		n, err := io.ReadFull(r, buf[len(carry):cap(buf)])
		buf = buf[:len(carry)+n]
		eof := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
		if err != nil && !eof {
			c.err = err
			close(c.done)
			send(c)
			return
		}
		cut := bytes.LastIndexByte(buf, '\n') + 1
		c.data = buf[:cut]
		// carry must not alias buf, which goes back to the pool.
		carry = append(carry[:0:0], buf[cut:]...)
		if eof && len(carry) > 0 {
			c.tail = carry
		} else if !eof && len(carry) > MaxRecordSize {
			c.tail = carry // reported as an over-long line
			eof = true
		}
		if cut == 0 && c.tail == nil && !eof {
			continue
		}
		if !send(c) || eof {
			return
		}
	}
}

// checkLines checks each line of data on its own.
func checkLines(data []byte, out []checkedLine) []checkedLine {
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		line := data[:i]
		data = data[i+1:]
		out = append(out, checkedLine{})
		checkLine(line, &out[len(out)-1])
	}
	return out
}

func checkLine(line []byte, r *checkedLine) {
	h, err := lineHash(line)
	if err != nil {
		r.err = err
		return
	}
	info, err := scanLine(line)
	switch {
	case err != nil:
		r.err = fmt.Errorf("not a trail record: %w", err)
		return
	case !bytes.Equal(h, info.hash):
		r.err = errors.New("not a trail record: event.hash is not the hash at the end of the line")
		return
	case info.seq == 0:
		r.err = errors.New("event.sequence is 0")
		return
	case len(info.prev) != 64 || !isLowerHex(info.prev):
		r.err = errors.New("event.prev_hash is not 64 lowercase hex digits")
		return
	}
	r.seq = info.seq
	copy(r.prev[:], info.prev)
	copy(r.hash[:], h)
	r.kind = internKind(info.action)
	if err := validKind(r.kind); err != nil {
		r.err = fmt.Errorf("event.action: %w", err)
		return
	}
	if info.checkpoint || strings.HasPrefix(r.kind, "trail.") {
		rec, err := ParseRecord(line)
		if err != nil {
			r.err = err
			return
		}
		r.rec = &rec
	}
}

// knownKinds saves an allocation per record for the kinds secrun writes.
var knownKinds = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{KindImageResolved, KindSignatureVerdict, KindPolicyDecision, KindSpecCreated,
		KindRuntimeInvoked, KindContainerCreated, KindContainerStarted, KindContainerExec, KindContainerSignal,
		KindContainerExited, KindContainerRemoved, KindContainerDenied, KindSeccompDenied, KindSeccompLogged,
		KindAuditRun, KindTrailCreated, KindTrailRotated, KindTrailRecovered, KindTrailCheckpoint} {
		m[k] = k
	}
	return m
}()

func internKind(b []byte) string {
	if k, ok := knownKinds[string(b)]; ok {
		return k
	}
	return string(b)
}

func (v *verifier) record(path string, n int, lr *checkedLine, chainStart, fileStart bool) error {
	fail := func(seq uint64, format string, args ...any) error {
		return &VerifyError{File: path, Line: n, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	if lr.err != nil {
		return &VerifyError{File: path, Line: n, Seq: v.seq + 1, Reason: lr.err.Error(), Err: lr.err}
	}
	seq, kind := lr.seq, lr.kind
	switch {
	case chainStart && seq == 1:
		if kind != KindTrailCreated || lr.prev != zeroHashBytes {
			return fail(seq, "record 1 must be trail.created with a zero prev_hash")
		}
		v.rep.FirstSeq = 1
	case chainStart:
		if kind != KindTrailRotated {
			return fail(seq, "the first file starts at record %d with %s, not with trail.created or trail.rotated: records before it were removed", seq, kind)
		}
		v.rep.FirstSeq = seq
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("the chain starts at record %d in %s: the files before it were not given, so their records are not checked", seq, path))
		if sc := v.sidecar; sc != nil && sc.Count == seq-1 {
			if sc.Head != string(lr.prev[:]) {
				return fail(seq, "prev_hash does not match the head of the signed checkpoint %s", v.sidecarPath)
			}
			v.sidecarOK = true
		}
	default:
		if fileStart && kind != KindTrailRotated {
			return fail(seq, "a rotated-in file must start with trail.rotated, found %s: the file order is wrong or its first records were removed", kind)
		}
		if seq != v.seq+1 {
			if seq <= v.seq {
				return fail(seq, "sequence %d follows %d: records are reordered or duplicated", seq, v.seq)
			}
			return fail(seq, "sequence jumps from %d to %d: %d record(s) missing before this one", v.seq, seq, seq-v.seq-1)
		}
		if lr.prev != v.head {
			return fail(seq, "prev_hash does not match the hash of record %d: a record before this one was changed or replaced", v.seq)
		}
	}
	if !chainStart && (kind == KindTrailCreated || kind == KindTrailRotated && !fileStart) {
		return fail(seq, "%s may only start a file", kind)
	}
	if kind == KindTrailRecovered {
		v.rep.Recovered++
	}
	if lr.rec != nil && lr.rec.Checkpoint != nil {
		cp := lr.rec.Checkpoint
		if cp.Count != seq-1 || cp.Head != string(lr.prev[:]) {
			return fail(seq, "checkpoint claims %d records ending in %.12s but follows record %d ending in %.12s", cp.Count, cp.Head, seq-1, lr.prev[:])
		}
		if err := cp.verify(v.pub); err != nil {
			return &VerifyError{File: path, Line: n, Seq: seq, Reason: err.Error(), Err: err}
		}
		v.rep.Checkpoints++
		v.lastCheckpointSeq = seq
		v.rep.SignedSeq = max(v.rep.SignedSeq, cp.Count)
		if v.rep.KeyID == "" {
			v.rep.KeyID = cp.KeyID
		}
	}
	if sc := v.sidecar; sc != nil && sc.Count == seq {
		if sc.Head != string(lr.hash[:]) {
			return fail(seq, "record does not match the signed checkpoint %s (head %.12s, record hash %.12s): the trail was rewritten after the checkpoint", v.sidecarPath, sc.Head, lr.hash[:])
		}
		v.sidecarOK = true
	}
	v.seq, v.head = seq, lr.hash
	v.rep.Records++
	v.rep.LastSeq = seq
	return nil
}

func (v *verifier) finish(last string) error {
	if sc := v.sidecar; sc != nil {
		switch {
		case sc.Count > v.seq:
			return &VerifyError{File: v.lastFile, Line: v.lastLine, Seq: v.seq,
				Reason: fmt.Sprintf("the trail ends at record %d but the signed checkpoint %s covers %d records: the tail was truncated", v.seq, v.sidecarPath, sc.Count)}
		case v.sidecarOK:
			v.rep.SignedSeq = max(v.rep.SignedSeq, sc.Count)
		default:
			v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("checkpoint %s covers record %d, before the given files; it was not compared", v.sidecarPath, sc.Count))
		}
	}
	if v.pub != nil && v.rep.SignedSeq == 0 {
		return &VerifyError{File: last, Reason: "no checkpoint signed by the trusted key covers these files"}
	}
	if v.rep.SignedSeq > 0 && v.rep.LastSeq > max(v.rep.SignedSeq, v.lastCheckpointSeq) {
		v.rep.Warnings = append(v.rep.Warnings, fmt.Sprintf("records %d to %d come after the last signed checkpoint; a cut there would not be detectable", v.rep.SignedSeq+1, v.rep.LastSeq))
	}
	return nil
}
