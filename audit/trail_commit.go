package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// maxBatchBytes bounds one group-commit write.
const maxBatchBytes = 4 << 20

// Trail appends records to an audit trail file. It is safe for concurrent
// use; concurrent Appends share one write and one fdatasync (group commit),
// and other processes appending to the same file are serialized by an flock
// on the sibling file <path>.lock.
type Trail struct {
	path  string
	opts  Options
	actor Actor

	mu       sync.Mutex
	cond     *sync.Cond
	pending  []*appendRequest
	closed   bool
	stopped  chan struct{}
	closeErr error

	// The fields below belong to the committer: Open, then the flusher
	// goroutine, never both at once.
	f     *os.File
	lock  *os.File
	known bool // seq and head describe the end of f while it has (dev, ino, size)
	dev   uint64
	ino   uint64
	size  int64
	seq   uint64
	head  string
	// broken is set when fdatasync failed: the kernel may have dropped the
	// data, so nothing more is acknowledged through this Trail.
	broken error
	buf    []byte
}

type appendRequest struct {
	rec        Record
	body       []byte
	checkpoint bool
	done       chan struct{}
	taken      bool // guarded by Trail.mu: the committer owns it now
	completed  bool // committer only
	err        error
}

func (r *appendRequest) complete(err error) {
	if r.completed {
		return
	}
	r.completed = true
	r.err = err
	close(r.done)
}

// trailEntry is a record on its way into a write.
type trailEntry struct {
	rec  *Record
	body []byte
}

func openTrail(path string, opts Options, actor Actor) (*Trail, error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit trail %s: creating its directory: %w", path, err)
	}
	lock, err := openLockFile(path)
	if err != nil {
		return nil, err
	}
	t := &Trail{path: path, opts: opts, actor: actor, lock: lock, stopped: make(chan struct{})}
	t.cond = sync.NewCond(&t.mu)
	req := &appendRequest{done: make(chan struct{})}
	t.commit([]*appendRequest{req})
	if req.err != nil {
		return nil, errors.Join(req.err, t.closeFiles())
	}
	go t.run()
	return t, nil
}

// Path is the trail file's path.
func (t *Trail) Path() string { return t.path }

// Append records e and returns once the record is durable (written and
// fdatasync'd). An error means the record may not be on disk: treat the
// action it describes as refused. If ctx ends before the record is handed to
// a write, it is dropped and ctx's error returned; after that Append waits
// for the write.
func (t *Trail) Append(ctx context.Context, e Event) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	if err := validateEvent(&e, false); err != nil {
		return Record{}, err
	}
	rec := Record{Time: t.opts.Now().Round(0).UTC(), Host: t.opts.Host, Event: e, Actor: t.actor}
	body, err := encodeBody(rec)
	if err != nil {
		return Record{}, err
	}
	req := &appendRequest{rec: rec, body: body, done: make(chan struct{})}
	if err := t.wait(ctx, req); err != nil {
		return Record{}, err
	}
	return req.rec, nil
}

// AppendAll records events in order, in one write and one fdatasync when
// they fit one batch, and returns once every record is durable. It is for
// steps that are recorded together before the action they lead to (secrun
// records the image, signature and policy decision before a container
// starts): one sync instead of one per record. An error means some records
// may not be on disk: treat the action as refused.
func (t *Trail) AppendAll(ctx context.Context, events ...Event) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	reqs := make([]*appendRequest, 0, len(events))
	now := t.opts.Now().Round(0).UTC()
	for _, e := range events {
		if err := validateEvent(&e, false); err != nil {
			return nil, err
		}
		rec := Record{Time: now, Host: t.opts.Host, Event: e, Actor: t.actor}
		body, err := encodeBody(rec)
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, &appendRequest{rec: rec, body: body, done: make(chan struct{})})
	}
	if err := t.waitAll(ctx, reqs); err != nil {
		return nil, err
	}
	out := make([]Record, len(reqs))
	for i, r := range reqs {
		out[i] = r.rec
	}
	return out, nil
}

// Checkpoint writes a signed checkpoint covering every record so far: a
// "trail.checkpoint" record and the sidecar file CheckpointPath(path).
func (t *Trail) Checkpoint(ctx context.Context) error {
	if t.opts.SigningKey == nil {
		return ErrNoSigningKey
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.wait(ctx, &appendRequest{checkpoint: true, done: make(chan struct{})})
}

// Close waits for pending appends, writes the closing checkpoint if
// configured, and releases the files. Further calls return nil.
func (t *Trail) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		<-t.stopped
		return nil
	}
	t.closed = true
	t.cond.Signal()
	t.mu.Unlock()
	<-t.stopped
	return t.closeErr
}

func (t *Trail) wait(ctx context.Context, req *appendRequest) error {
	return t.waitAll(ctx, []*appendRequest{req})
}

// waitAll queues reqs together, in order, and waits for each. If ctx ends
// first, the requests not yet taken by the committer are dropped and ctx's
// error returned; the taken ones are waited for.
func (t *Trail) waitAll(ctx context.Context, reqs []*appendRequest) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	t.pending = append(t.pending, reqs...)
	t.cond.Signal()
	t.mu.Unlock()

	var errs []error
	for i, req := range reqs {
		select {
		case <-req.done:
			errs = append(errs, req.err)
			continue
		case <-ctx.Done():
		}
		t.mu.Lock()
		for _, r := range reqs[i:] {
			if !r.taken {
				if j := slices.Index(t.pending, r); j >= 0 {
					t.pending = slices.Delete(t.pending, j, j+1)
				}
			}
		}
		var taken []*appendRequest
		for _, r := range reqs[i:] {
			if r.taken {
				taken = append(taken, r)
			}
		}
		t.mu.Unlock()
		for _, r := range taken {
			<-r.done
			errs = append(errs, r.err)
		}
		if len(taken) < len(reqs[i:]) {
			if err := errors.Join(errs...); err != nil {
				return errors.Join(err, ctx.Err())
			}
			return ctx.Err()
		}
		break
	}
	return errors.Join(errs...)
}

// run is the flusher: it takes everything pending (up to maxBatchBytes) and
// commits it as one batch, so appends that arrive during an fdatasync share
// the next one.
func (t *Trail) run() {
	defer close(t.stopped)
	for {
		t.mu.Lock()
		for len(t.pending) == 0 && !t.closed {
			t.cond.Wait()
		}
		if len(t.pending) == 0 {
			t.mu.Unlock()
			t.closeErr = t.finish()
			return
		}
		n, size := 0, 0
		for n < len(t.pending) && (n == 0 || size+len(t.pending[n].body) <= maxBatchBytes) {
			size += len(t.pending[n].body)
			t.pending[n].taken = true
			n++
		}
		batch := slices.Clone(t.pending[:n])
		t.pending = slices.Delete(t.pending, 0, n)
		t.mu.Unlock()
		t.commit(batch)
	}
}

func (t *Trail) finish() error {
	var errs []error
	if t.opts.CheckpointOnClose && t.opts.SigningKey != nil {
		req := &appendRequest{checkpoint: true, done: make(chan struct{})}
		t.commit([]*appendRequest{req})
		if req.err != nil {
			errs = append(errs, fmt.Errorf("audit trail %s: closing checkpoint: %w", t.path, req.err))
		}
	}
	errs = append(errs, t.closeFiles())
	return errors.Join(errs...)
}

func (t *Trail) closeFiles() error {
	var errs []error
	if t.f != nil {
		if err := t.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing audit trail %s: %w", t.path, err))
		}
		t.f = nil
	}
	if t.lock != nil {
		if err := t.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing audit trail lock %s.lock: %w", t.path, err))
		}
		t.lock = nil
	}
	return errors.Join(errs...)
}

// commit writes one batch under the cross-process lock: it catches up with
// the file (another process may have appended or rotated), rotates if the
// file is full, writes the batch in one write, fdatasyncs, and then answers
// the requests, which is where every error goes. A request without a record
// or checkpoint just brings the file into a consistent state (Open uses one
// to recover and to start a new trail).
func (t *Trail) commit(batch []*appendRequest) {
	err := t.commitLocked(batch)
	for _, r := range batch {
		r.complete(err)
	}
}

func (t *Trail) commitLocked(batch []*appendRequest) (err error) {
	if t.broken != nil {
		return t.broken
	}
	if err := t.acquire(); err != nil {
		return err
	}
	defer func() {
		if uerr := unlockFile(t.lock); uerr != nil && err == nil {
			err = fmt.Errorf("audit trail %s: releasing the lock: %w", t.path, uerr)
		}
	}()

	entries, err := t.syncTail()
	if err != nil {
		return err
	}
	if len(entries) == 0 && t.opts.MaxSize > 0 && t.size >= t.opts.MaxSize {
		if err := t.rotate(); err != nil {
			return err
		}
		if entries, err = t.syncTail(); err != nil {
			return err
		}
	}
	var checkpoints []*appendRequest
	var written []*appendRequest
	for _, r := range batch {
		if r.checkpoint {
			checkpoints = append(checkpoints, r)
			continue
		}
		if r.body == nil {
			continue
		}
		entries = append(entries, trailEntry{rec: &r.rec, body: r.body})
		written = append(written, r)
	}
	if len(entries) > 0 {
		if err := t.write(entries); err != nil {
			return err
		}
	}
	for _, r := range written {
		r.complete(nil)
	}
	if len(checkpoints) > 0 {
		return t.checkpointLocked()
	}
	return nil
}

func openLockFile(path string) (*os.File, error) {
	lock, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: opening its lock file: %w", path, err)
	}
	return lock, nil
}

// acquire takes the cross-process lock. If the lock file was removed or
// replaced while we waited, the lock we hold excludes nobody: reopen the
// file at the path and lock again.
func (t *Trail) acquire() error {
	for {
		if err := lockFile(t.lock); err != nil {
			return fmt.Errorf("audit trail %s: taking the lock %s.lock: %w", t.path, t.path, err)
		}
		held, err := t.lock.Stat()
		if err != nil {
			return errors.Join(fmt.Errorf("audit trail %s: %w", t.path, err), unlockFile(t.lock))
		}
		cur, err := os.Lstat(t.path + ".lock")
		if err == nil && os.SameFile(held, cur) {
			return nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return errors.Join(fmt.Errorf("audit trail %s: %w", t.path, err), unlockFile(t.lock))
		}
		// Closing the descriptor releases the stale lock.
		if err := t.lock.Close(); err != nil {
			return fmt.Errorf("audit trail %s: closing a stale lock file: %w", t.path, err)
		}
		if t.lock, err = openLockFile(t.path); err != nil {
			return err
		}
	}
}

// write appends entries as one write and makes them durable.
func (t *Trail) write(entries []trailEntry) error {
	buf := t.buf[:0]
	seq, head := t.seq, t.head
	for _, e := range entries {
		seq++
		var h string
		buf, h = appendLine(buf, e.body, seq, head)
		e.rec.Seq, e.rec.PrevHash, e.rec.Hash = seq, head, h
		head = h
	}
	n, werr := t.f.Write(buf)
	if werr != nil {
		err := fmt.Errorf("writing audit trail %s: %w", t.path, werr)
		if n > 0 {
			// Cut the partial batch off so the file ends on a record
			// boundary again; if that fails, stop using this Trail.
			if terr := t.f.Truncate(t.size); terr != nil {
				t.broken = fmt.Errorf("audit trail %s: a failed write left a partial record that could not be removed: %w", t.path, terr)
				return errors.Join(err, t.broken)
			}
			if serr := fdatasync(t.f); serr != nil {
				t.broken = fmt.Errorf("audit trail %s: fdatasync after undoing a failed write: %w", t.path, serr)
				return errors.Join(err, t.broken)
			}
		}
		return err
	}
	if err := fdatasync(t.f); err != nil {
		t.broken = fmt.Errorf("audit trail %s: fdatasync failed, so recent records may not be on disk: %w; fix the disk and reopen the trail", t.path, err)
		return t.broken
	}
	t.seq, t.head, t.size = seq, head, t.size+int64(n)
	if cap(buf) <= maxBatchBytes {
		t.buf = buf
	}
	return nil
}

// internal builds a record the trail writes about itself.
func (t *Trail) internal(kind, reason string, fields map[string]any, cp *Checkpoint) (trailEntry, error) {
	rec := &Record{
		Time:       t.opts.Now().Round(0).UTC(),
		Host:       t.opts.Host,
		Event:      Event{Kind: kind, Outcome: OutcomeSuccess, Reason: reason, Fields: fields},
		Actor:      t.actor,
		Checkpoint: cp,
	}
	body, err := encodeBody(*rec)
	if err != nil {
		return trailEntry{}, err
	}
	return trailEntry{rec: rec, body: body}, nil
}

// syncTail makes seq and head describe the end of the file at path, under
// the lock. The fast path (nobody else wrote since our last write) is one
// lstat. Otherwise it reopens the file if it was rotated, removes an
// unterminated final line, and reads the last record. It returns the
// records that must precede the batch: "trail.created" or "trail.rotated"
// for a new file, "trail.recovered" after removing a torn line.
func (t *Trail) syncTail() ([]trailEntry, error) {
	fi, err := os.Lstat(t.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		f, err := os.OpenFile(t.path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit trail %s: creating: %w", t.path, err)
		}
		if err := fsyncDir(filepath.Dir(t.path)); err != nil {
			return nil, errors.Join(err, f.Close())
		}
		if fi, err = t.setFile(f); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("audit trail %s: %w", t.path, err)
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("audit trail %s is not a regular file (%s); move it aside", t.path, fi.Mode().Type())
	default:
		dev, ino := fileID(fi)
		if t.f == nil || dev != t.dev || ino != t.ino {
			f, err := os.OpenFile(t.path, os.O_RDWR|os.O_APPEND|oNoFollow, 0)
			if err != nil {
				return nil, fmt.Errorf("audit trail %s: opening: %w", t.path, err)
			}
			if fi, err = t.setFile(f); err != nil {
				return nil, err
			}
		} else if t.known && fi.Size() == t.size {
			return nil, nil
		}
	}
	return t.readTail(fi.Size())
}

// setFile switches to f (closing the previous file) and returns its stat.
func (t *Trail) setFile(f *os.File) (os.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Join(fmt.Errorf("audit trail %s: %w", t.path, err), f.Close())
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.Join(fmt.Errorf("audit trail %s is not a regular file; move it aside", t.path), f.Close())
	}
	if t.f != nil {
		if err := t.f.Close(); err != nil {
			return nil, errors.Join(fmt.Errorf("audit trail %s: closing the previous file: %w", t.path, err), f.Close())
		}
	}
	t.f = f
	t.dev, t.ino = fileID(fi)
	t.known = false
	return fi, nil
}

// readTail reads the last record of the current file of the given size.
func (t *Trail) readTail(size int64) ([]trailEntry, error) {
	var entries []trailEntry
	line, validEnd, err := lastTrailLine(t.f, size)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: %w", t.path, err)
	}
	if validEnd < size {
		// An unterminated final line is a write that never completed: the
		// writer was killed (or the machine lost power) before its
		// fdatasync returned, so no Append acknowledged it. Remove it so the
		// chain can continue, and say so in the trail.
		sum, err := hashRange(t.f, validEnd, size)
		if err != nil {
			return nil, fmt.Errorf("audit trail %s: reading the incomplete final line: %w", t.path, err)
		}
		if err := t.f.Truncate(validEnd); err != nil {
			return nil, fmt.Errorf("audit trail %s: removing the incomplete final line at offset %d: %w", t.path, validEnd, err)
		}
		if err := fdatasync(t.f); err != nil {
			return nil, fmt.Errorf("audit trail %s: %w", t.path, err)
		}
		e, err := t.internal(KindTrailRecovered,
			"removed an unterminated final line left by a writer that stopped mid-write; it was never acknowledged",
			map[string]any{
				"recovered.file":   filepath.Base(t.path),
				"recovered.offset": validEnd,
				"recovered.bytes":  size - validEnd,
				"recovered.sha256": sum,
			}, nil)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
		size = validEnd
	}
	if size == 0 {
		prev, seq, head, err := lastRotated(t.path)
		if err != nil {
			return nil, err
		}
		var first trailEntry
		if prev == "" {
			t.seq, t.head = 0, zeroHash
			first, err = t.internal(KindTrailCreated, "new audit trail", nil, nil)
		} else {
			t.seq, t.head = seq, head
			first, err = t.internal(KindTrailRotated, "continues the chain of the previous file",
				map[string]any{"trail.previous_file": filepath.Base(prev)}, nil)
		}
		if err != nil {
			return nil, err
		}
		entries = append([]trailEntry{first}, entries...)
	} else {
		rec, err := ParseRecord(line)
		if err != nil {
			return nil, fmt.Errorf("audit trail %s: the last record (ending at offset %d) is damaged: %w; run `secrun audit log verify` and move the file aside to start a new trail", t.path, size, err)
		}
		t.seq, t.head = rec.Seq, rec.Hash
	}
	t.size = size
	t.known = true
	return entries, nil
}

// lastTrailLine finds the last newline-terminated line of the first size bytes of
// f. validEnd is the offset just past that line's newline (0 if there is
// none); bytes after it form an unterminated line.
func lastTrailLine(f io.ReaderAt, size int64) (line []byte, validEnd int64, err error) {
	const lineChunk = 64 << 10
	buf := make([]byte, lineChunk)
	validEnd, start := int64(-1), int64(0)
	for end := size; end > 0 && start == 0; {
		off := max(0, end-lineChunk)
		b := buf[:end-off]
		if _, err := f.ReadAt(b, off); err != nil {
			return nil, 0, fmt.Errorf("reading at offset %d: %w", off, err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			pos := off + int64(i)
			if validEnd < 0 {
				validEnd = pos + 1
				continue
			}
			start = pos + 1
			break
		}
		if validEnd >= 0 && start == 0 && validEnd-off > MaxRecordSize+1 {
			return nil, 0, fmt.Errorf("the last line (ending at offset %d) is over %d bytes", validEnd, MaxRecordSize)
		}
		end = off
	}
	if validEnd < 0 {
		return nil, 0, nil
	}
	n := validEnd - 1 - start
	if n > MaxRecordSize {
		return nil, 0, fmt.Errorf("the last line (ending at offset %d) is over %d bytes", validEnd, MaxRecordSize)
	}
	line = make([]byte, n)
	if _, err := f.ReadAt(line, start); err != nil {
		return nil, 0, fmt.Errorf("reading the last line at offset %d: %w", start, err)
	}
	return line, validEnd, nil
}

func hashRange(f io.ReaderAt, from, to int64) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, from, to-from)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lastRotated returns the newest rotated file of the trail at path and its
// last record, or "" if there is none.
func lastRotated(path string) (file string, seq uint64, head string, err error) {
	files, err := rotatedFiles(path)
	if err != nil {
		return "", 0, "", err
	}
	if len(files) == 0 {
		return "", 0, "", nil
	}
	file = files[len(files)-1].path
	f, err := os.Open(file)
	if err != nil {
		return "", 0, "", fmt.Errorf("audit trail: reading the previous file %s: %w", file, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, "", fmt.Errorf("audit trail: %w", err)
	}
	line, validEnd, err := lastTrailLine(f, fi.Size())
	if err != nil {
		return "", 0, "", fmt.Errorf("audit trail %s: %w", file, err)
	}
	if validEnd != fi.Size() || validEnd == 0 {
		return "", 0, "", fmt.Errorf("audit trail: the previous file %s does not end with a complete record; run `secrun audit log verify`", file)
	}
	rec, err := ParseRecord(line)
	if err != nil {
		return "", 0, "", fmt.Errorf("audit trail: the last record of the previous file %s is damaged: %w", file, err)
	}
	return file, rec.Seq, rec.Hash, nil
}

// rotate closes the current file: with a signing key it first writes a
// checkpoint (so the finished file is pinned by a signature, also copied to
// its own sidecar), then renames the file to path.N. The next syncTail
// creates the new file and chains it with a "trail.rotated" record.
func (t *Trail) rotate() error {
	var cp *Checkpoint
	if t.opts.SigningKey != nil {
		var err error
		if cp, err = t.checkpointRecord(); err != nil {
			return err
		}
	}
	files, err := rotatedFiles(t.path)
	if err != nil {
		return err
	}
	n := 1
	if len(files) > 0 {
		n = files[len(files)-1].n + 1
	}
	dst := fmt.Sprintf("%s.%d", t.path, n)
	if err := renameNoReplace(t.path, dst); err != nil {
		return fmt.Errorf("audit trail %s: rotating: %w", t.path, err)
	}
	if cp != nil {
		if err := writeCheckpointFile(CheckpointPath(dst), cp); err != nil {
			return fmt.Errorf("audit trail %s: %w", t.path, err)
		}
	}
	if err := fsyncDir(filepath.Dir(t.path)); err != nil {
		return err
	}
	if err := t.f.Close(); err != nil {
		return fmt.Errorf("audit trail %s: closing the rotated file: %w", dst, err)
	}
	t.f, t.known = nil, false
	return nil
}

// checkpointLocked signs the current head, installs the sidecar, then
// appends the checkpoint record.
func (t *Trail) checkpointLocked() error {
	_, err := t.checkpointRecord()
	return err
}

func (t *Trail) checkpointRecord() (*Checkpoint, error) {
	if t.seq == 0 {
		return nil, fmt.Errorf("audit trail %s: nothing to checkpoint", t.path)
	}
	cp := signCheckpoint(t.opts.SigningKey, t.seq, t.head, t.opts.Now(), t.opts.Host)
	if err := writeCheckpointFile(CheckpointPath(t.path), cp); err != nil {
		return nil, fmt.Errorf("audit trail %s: %w", t.path, err)
	}
	e, err := t.internal(KindTrailCheckpoint, "signed checkpoint", nil, cp)
	if err != nil {
		return nil, err
	}
	if err := t.write([]trailEntry{e}); err != nil {
		return nil, err
	}
	return cp, nil
}

func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("syncing directory %s: %w", dir, err), d.Close())
	}
	if err := d.Close(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
