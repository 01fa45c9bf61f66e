package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
)

// ecsVersion is the Elastic Common Schema version whose field names records
// use (docs/audit-fields.md maps every field).
const ecsVersion = "8.11.0"

// zeroHash is the PrevHash of the first record of a trail.
const zeroHash = "0000000000000000000000000000000000000000000000000000000000000000"

// The chain fields close every line, in this order, so the hash input is
// simply the line's bytes up to the hash value:
//
//	{...,"event":{"action":...,"sequence":N,"prev_hash":"P","hash":"H"}}
//
// H = hex(SHA-256(line bytes before H)).
const (
	hashKey  = `","hash":"`
	lineTail = `"}}`
)

// wire is the JSON shape of a record (ECS names, nested). E is the event
// object: without the chain fields while a body is built, with them when
// a line is parsed.
type wire[E any] struct {
	Timestamp string         `json:"@timestamp"`
	ECS       wireECS        `json:"ecs"`
	Host      wireHost       `json:"host"`
	User      wireUser       `json:"user"`
	Process   wireProcess    `json:"process"`
	Container *wireContainer `json:"container,omitempty"`
	Secrun    *wireSecrun    `json:"secrun,omitempty"`
	Event     E              `json:"event"`
}

type wireECS struct {
	Version string `json:"version"`
}

type wireHost struct {
	Hostname string `json:"hostname"`
}

type wireUser struct {
	ID string `json:"id"`
}

type wireProcess struct {
	PID         int    `json:"pid"`
	CommandLine string `json:"command_line"`
}

type wireContainer struct {
	ID      string     `json:"id,omitempty"`
	Name    string     `json:"name,omitempty"`
	Runtime string     `json:"runtime,omitempty"`
	Image   *wireImage `json:"image,omitempty"`
}

type wireImage struct {
	Name string         `json:"name,omitempty"`
	Hash *wireImageHash `json:"hash,omitempty"`
}

type wireImageHash struct {
	All []string `json:"all"`
}

type wireSecrun struct {
	ContainerPID int            `json:"container_pid,omitempty"`
	Policy       *wirePolicy    `json:"policy,omitempty"`
	Checkpoint   *Checkpoint    `json:"checkpoint,omitempty"`
	Fields       map[string]any `json:"fields,omitempty"`
}

type wirePolicy struct {
	Name       string `json:"name,omitempty"`
	Hash       string `json:"hash,omitempty"`
	InputHash  string `json:"input_hash,omitempty"`
	Violations []any  `json:"violations,omitempty"`
}

// wireEventBody must end with a field that is always present (the encoder
// relies on the body ending in "}}").
type wireEventBody struct {
	Action  string   `json:"action"`
	Type    []string `json:"type,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Outcome string   `json:"outcome"`
}

type wireEvent struct {
	Action   string   `json:"action"`
	Type     []string `json:"type,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Outcome  string   `json:"outcome"`
	Sequence uint64   `json:"sequence"`
	PrevHash string   `json:"prev_hash"`
	Hash     string   `json:"hash"`
}

// ecsOutcome maps an Outcome onto ECS event.outcome and event.type.
func ecsOutcome(o string) (string, []string) {
	switch o {
	case OutcomeAllowed:
		return OutcomeSuccess, []string{"allowed"}
	case OutcomeDenied:
		return OutcomeFailure, []string{"denied"}
	case "":
		return OutcomeUnknown, nil
	}
	return o, nil
}

func outcomeFromECS(outcome string, typ []string) (string, error) {
	switch {
	case len(typ) == 0 && (outcome == OutcomeSuccess || outcome == OutcomeFailure || outcome == OutcomeUnknown):
		return outcome, nil
	case len(typ) == 1 && typ[0] == "allowed" && outcome == OutcomeSuccess:
		return OutcomeAllowed, nil
	case len(typ) == 1 && typ[0] == "denied" && outcome == OutcomeFailure:
		return OutcomeDenied, nil
	}
	return "", fmt.Errorf("event.outcome %q with event.type %q is not a secrun outcome", outcome, typ)
}

// recordBody is a record before it joins the chain.
type recordBody struct {
	rec  Record
	body []byte // JSON without the chain fields and the two closing braces
}

// encodeBody renders everything but the chain fields. Doing this before the
// record joins a batch means a bad event fails alone, and the JSON work runs
// in the caller's goroutine rather than under the trail's lock.
func encodeBody(r Record) ([]byte, error) {
	outcome, typ := ecsOutcome(r.Outcome)
	w := wire[wireEventBody]{
		Timestamp: r.Time.UTC().Format(time.RFC3339Nano),
		ECS:       wireECS{Version: ecsVersion},
		Host:      wireHost{Hostname: r.Host},
		User:      wireUser{ID: strconv.Itoa(r.Actor.UID)},
		Process:   wireProcess{PID: r.Actor.PID, CommandLine: r.Actor.Command},
		Event:     wireEventBody{Action: r.Kind, Type: typ, Reason: r.Reason, Outcome: outcome},
	}
	c := r.Container
	img := r.Image
	if c.ID != "" || c.Name != "" || c.Runtime != "" || img.Name != "" || img.Digest != "" {
		wc := &wireContainer{ID: c.ID, Name: c.Name, Runtime: c.Runtime}
		if img.Name != "" || img.Digest != "" {
			wc.Image = &wireImage{Name: img.Name}
			if img.Digest != "" {
				wc.Image.Hash = &wireImageHash{All: []string{img.Digest}}
			}
		}
		w.Container = wc
	}
	if c.PID != 0 || r.Policy != nil || r.Checkpoint != nil || len(r.Fields) > 0 {
		s := &wireSecrun{ContainerPID: c.PID, Checkpoint: r.Checkpoint, Fields: r.Fields}
		if p := r.Policy; p != nil {
			s.Policy = &wirePolicy{Name: p.Name, Hash: p.Hash, InputHash: p.InputHash, Violations: p.Violations}
		}
		w.Secrun = s
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("audit event %s: encoding: %w", r.Kind, err)
	}
	if !bytes.HasSuffix(b, []byte("}}")) {
		return nil, fmt.Errorf("audit event %s: encoder produced an unexpected shape", r.Kind)
	}
	b = b[:len(b)-2]
	if len(b)+len(`,"sequence":18446744073709551615,"prev_hash":"`)+64+len(hashKey)+64+len(lineTail)+1 > MaxRecordSize {
		return nil, fmt.Errorf("audit event %s: record exceeds %d bytes; shorten its fields", r.Kind, MaxRecordSize)
	}
	return b, nil
}

// appendLine appends body joined to the chain after prev as record seq,
// newline included, and returns the record's hash.
func appendLine(dst, body []byte, seq uint64, prev string) ([]byte, string) {
	start := len(dst)
	dst = append(dst, body...)
	dst = append(dst, `,"sequence":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev_hash":"`...)
	dst = append(dst, prev...)
	dst = append(dst, hashKey...)
	sum := sha256.Sum256(dst[start:])
	n := len(dst)
	dst = hex.AppendEncode(dst, sum[:])
	h := string(dst[n:])
	dst = append(dst, lineTail...)
	dst = append(dst, '\n')
	return dst, h
}

// errNotRecord and friends let callers tell damage classes apart.
var (
	errEmptyLine = errors.New("empty line")
	errHash      = errors.New("hash mismatch: the record was changed after it was written")
)

// checkLineHash checks the self-hash of one line (no newline) and returns
// the hash.
func checkLineHash(line []byte) (string, error) {
	h, err := lineHash(line)
	return string(h), err
}

// lineHash is checkLineHash returning the hash as a slice of line.
func lineHash(line []byte) ([]byte, error) {
	if len(line) == 0 {
		return nil, errEmptyLine
	}
	if len(line) >= MaxRecordSize {
		return nil, fmt.Errorf("record is %d bytes, over the %d-byte limit", len(line), MaxRecordSize)
	}
	if !bytes.HasSuffix(line, []byte(lineTail)) || len(line) < len(lineTail)+64+len(hashKey)+1 {
		return nil, errors.New("not a trail record: the line does not end with the event hash")
	}
	hexStart := len(line) - len(lineTail) - 64
	if !bytes.HasSuffix(line[:hexStart], []byte(hashKey)) {
		return nil, errors.New("not a trail record: the line does not end with the event hash")
	}
	// Comparing with the computed lowercase hex also checks the format.
	want := line[hexStart : hexStart+64]
	sum := sha256.Sum256(line[:hexStart])
	var got [64]byte
	hex.Encode(got[:], sum[:])
	if !bytes.Equal(got[:], want) {
		return nil, errHash
	}
	return want, nil
}

var lowerHexDigit = func() (t [256]bool) {
	for _, c := range "0123456789abcdef" {
		t[c] = true
	}
	return t
}()

func isLowerHex(b []byte) bool {
	for _, c := range b {
		if !lowerHexDigit[c] {
			return false
		}
	}
	return true
}

func isHashString(s string) bool {
	return len(s) == 64 && isLowerHex([]byte(s))
}

// ParseRecord parses one trail line (with or without its newline), checking
// its shape and its own hash. It does not check the chain; Verify does.
func ParseRecord(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	h, err := checkLineHash(line)
	if err != nil {
		return Record{}, err
	}
	// The same scan Verify uses: it refuses duplicate event fields, which
	// encoding/json would silently resolve (last one wins).
	info, err := scanLine(line)
	if err != nil {
		return Record{}, fmt.Errorf("not a trail record: %w", err)
	}
	var w wire[wireEvent]
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Record{}, fmt.Errorf("not a trail record: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Record{}, errors.New("not a trail record: data after the JSON object")
	}
	if info.seq != w.Event.Sequence || string(info.prev) != w.Event.PrevHash || string(info.action) != w.Event.Action {
		return Record{}, errors.New("not a trail record: the event fields are ambiguous")
	}
	return fromWire(&w, h)
}

func fromWire(w *wire[wireEvent], h string) (Record, error) {
	if w.Event.Hash != h {
		return Record{}, errors.New("not a trail record: event.hash appears twice")
	}
	if w.Event.Sequence == 0 {
		return Record{}, errors.New("event.sequence is missing or 0")
	}
	if !isHashString(w.Event.PrevHash) {
		return Record{}, errors.New("event.prev_hash is not 64 lowercase hex digits")
	}
	if err := validKind(w.Event.Action); err != nil {
		return Record{}, fmt.Errorf("event.action: %w", err)
	}
	if w.ECS.Version == "" {
		return Record{}, errors.New("ecs.version is missing")
	}
	t, err := time.Parse(time.RFC3339Nano, w.Timestamp)
	if err != nil {
		return Record{}, fmt.Errorf("@timestamp: %w", err)
	}
	outcome, err := outcomeFromECS(w.Event.Outcome, w.Event.Type)
	if err != nil {
		return Record{}, err
	}
	uid, err := strconv.Atoi(w.User.ID)
	if err != nil {
		return Record{}, fmt.Errorf("user.id %q is not a number", w.User.ID)
	}
	r := Record{
		Seq:      w.Event.Sequence,
		Time:     t,
		Host:     w.Host.Hostname,
		Event:    Event{Kind: w.Event.Action, Outcome: outcome, Reason: w.Event.Reason},
		Actor:    Actor{UID: uid, PID: w.Process.PID, Command: w.Process.CommandLine},
		PrevHash: w.Event.PrevHash,
		Hash:     h,
	}
	if c := w.Container; c != nil {
		r.Container = Container{ID: c.ID, Name: c.Name, Runtime: c.Runtime}
		if c.Image != nil {
			r.Image.Name = c.Image.Name
			if c.Image.Hash != nil {
				if len(c.Image.Hash.All) != 1 {
					return Record{}, errors.New("container.image.hash.all must hold exactly one digest")
				}
				r.Image.Digest = c.Image.Hash.All[0]
			}
		}
	}
	if s := w.Secrun; s != nil {
		r.Container.PID = s.ContainerPID
		r.Fields = s.Fields
		r.Checkpoint = s.Checkpoint
		if p := s.Policy; p != nil {
			r.Policy = &PolicyRef{Name: p.Name, Hash: p.Hash, InputHash: p.InputHash, Violations: p.Violations}
		}
	}
	if (r.Kind == KindTrailCheckpoint) != (r.Checkpoint != nil) {
		return Record{}, errors.New("secrun.checkpoint must be present exactly on trail.checkpoint records")
	}
	return r, nil
}

// MarshalJSON renders the record in its trail form (the same field names as
// the line it came from; byte-identical only for records the trail wrote).
func (r Record) MarshalJSON() ([]byte, error) {
	body, err := encodeBody(r)
	if err != nil {
		return nil, err
	}
	b := append(body, `,"sequence":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	for _, kv := range [...][2]string{{"prev_hash", r.PrevHash}, {"hash", r.Hash}} {
		q, err := json.Marshal(kv[1])
		if err != nil {
			return nil, err
		}
		b = append(b, `,"`+kv[0]+`":`...)
		b = append(b, q...)
	}
	return append(b, "}}"...), nil
}
