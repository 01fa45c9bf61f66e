// Package audit owns secrun's tamper-evident audit trail, the kernel's seccomp
// events for supervised containers, and the fleet audit of running containers.
//
// The trail is a file of JSON lines, one record per step of a container's
// life. Every record carries the SHA-256 of the previous one, so deleting,
// reordering or editing a record breaks the chain; optional ed25519-signed
// checkpoints pin the record count so a truncated tail is detectable too.
// Append returns only once the record is on disk, and several processes can
// append to one trail at once. The field names and the hashing rules are
// documented in docs/audit-fields.md.
package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Event kinds written by secrun. Callers may use other kinds of the same shape
// (lowercase dotted words); kinds starting with "trail." are reserved for
// records the trail writes about itself.
const (
	KindImageResolved    = "image.resolved"
	KindSignatureVerdict = "signature.verdict"
	KindPolicyDecision   = "policy.decision"
	KindSpecCreated      = "spec.created"
	KindRuntimeInvoked   = "runtime.invoked"
	KindContainerCreated = "container.created"
	KindContainerStarted = "container.started"
	KindContainerExec    = "container.exec"
	KindContainerSignal  = "container.signal"
	KindContainerExited  = "container.exited"
	KindContainerRemoved = "container.removed"
	KindContainerDenied  = "container.denied"
	KindSeccompDenied    = "seccomp.denied"
	KindSeccompLogged    = "seccomp.logged"
	KindAuditRun         = "audit.run"

	// Records the trail writes itself.
	KindTrailCreated    = "trail.created"
	KindTrailRotated    = "trail.rotated"
	KindTrailRecovered  = "trail.recovered"
	KindTrailCheckpoint = "trail.checkpoint"
)

// Outcomes. "allowed" and "denied" are decisions; they are written as ECS
// event.outcome success/failure plus event.type allowed/denied.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeAllowed = "allowed"
	OutcomeDenied  = "denied"
	OutcomeUnknown = "unknown"
)

// Container identifies the container an event is about.
type Container struct {
	ID      string
	Name    string
	Runtime string
	// PID is the container's init process as the host sees it, 0 if none.
	PID int
}

// ImageRef identifies the image a container runs.
type ImageRef struct {
	Name   string
	Digest string
}

// PolicyRef says which policy decided and on what input.
type PolicyRef struct {
	Name      string
	Hash      string
	InputHash string
	// Violations are stored as JSON; the policy package's violation objects
	// ({id, msg, field, fix}) go here.
	Violations []any
}

// Event is what a caller records. The trail adds sequence, time, host, actor
// and the chain hashes.
type Event struct {
	Kind      string
	Outcome   string
	Reason    string
	Container Container
	Image     ImageRef
	Policy    *PolicyRef
	// Fields are extra facts such as "spec.hash", "exit.code", "oom_killed",
	// "signal". Keys are dotted names; a key must not also be the dotted
	// prefix of another key ("exit" next to "exit.code"), because SIEMs
	// expand dots into objects.
	Fields map[string]any
}

// Actor is the process that wrote a record: secrun, or secrun-runc called
// by an engine.
type Actor struct {
	UID     int
	PID     int
	Command string
}

// Record is one line of the trail.
type Record struct {
	Seq  uint64
	Time time.Time
	Host string
	Event
	Actor Actor
	// Checkpoint is set on "trail.checkpoint" records.
	Checkpoint *Checkpoint
	// PrevHash is the Hash of the record before (64 zeros for the first
	// record of a trail); Hash is the SHA-256 of this record's line up to the
	// hash itself, hex-encoded.
	PrevHash string
	Hash     string
}

// Options configure a trail.
type Options struct {
	// MaxSize rotates the file once it reaches this many bytes; 0 means
	// 64 MiB, a negative value never rotates.
	MaxSize int64
	// SigningKey signs checkpoints; nil writes no checkpoints.
	SigningKey ed25519.PrivateKey
	// CheckpointOnClose writes a signed checkpoint when the trail is closed
	// (needs SigningKey), so the tail each process leaves behind is pinned.
	CheckpointOnClose bool
	// Host names this machine in records; default os.Hostname.
	Host string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Actor overrides the recorded actor (for tests and fixtures); nil
	// records the current process.
	Actor *Actor
}

// DefaultMaxSize is the rotation size when Options.MaxSize is 0.
const DefaultMaxSize = 64 << 20

// MaxRecordSize bounds one record line, newline included.
const MaxRecordSize = 1 << 20

var (
	// ErrClosed is returned by Append and Checkpoint after Close.
	ErrClosed = errors.New("audit trail is closed")
	// ErrNoSigningKey is returned by Checkpoint without Options.SigningKey.
	ErrNoSigningKey = errors.New("audit trail has no signing key: pass --audit-key to write checkpoints")
	// ErrUnsupported is returned by Open and WatchSeccomp on systems other
	// than Linux; Verify and Show work everywhere.
	ErrUnsupported = errors.New("audit trail writing and kernel events need Linux")
)

// validateEvent checks what a caller may record; trail-internal kinds are
// refused so a caller cannot forge a checkpoint or a recovery record.
func validateEvent(e *Event, internal bool) error {
	if err := validKind(e.Kind); err != nil {
		return err
	}
	if !internal && strings.HasPrefix(e.Kind, "trail.") {
		return fmt.Errorf("audit event kind %q: kinds starting with \"trail.\" are reserved for the trail itself", e.Kind)
	}
	switch e.Outcome {
	case "":
		e.Outcome = OutcomeUnknown
	case OutcomeSuccess, OutcomeFailure, OutcomeAllowed, OutcomeDenied, OutcomeUnknown:
	default:
		return fmt.Errorf("audit event %s: outcome %q is not one of success, failure, allowed, denied, unknown", e.Kind, e.Outcome)
	}
	return validFieldKeys(e.Kind, e.Fields)
}

func validKind(k string) error {
	if k == "" || len(k) > 64 {
		return fmt.Errorf("audit event kind %q: must be 1 to 64 characters", k)
	}
	prevDot := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c == '_' || c == '-' || (c >= '0' && c <= '9'):
			if prevDot && !(c >= 'a' && c <= 'z') {
				return fmt.Errorf("audit event kind %q: each dotted word must start with a lowercase letter", k)
			}
			prevDot = false
		case c == '.':
			if prevDot {
				return fmt.Errorf("audit event kind %q: empty dotted word", k)
			}
			prevDot = true
		default:
			return fmt.Errorf("audit event kind %q: only lowercase letters, digits, '_', '-' and '.' are allowed", k)
		}
	}
	if prevDot {
		return fmt.Errorf("audit event kind %q: must not end with '.'", k)
	}
	return nil
}

func validFieldKeys(kind string, fields map[string]any) error {
	for k := range fields {
		if k == "" || len(k) > 128 {
			return fmt.Errorf("audit event %s: field name %q must be 1 to 128 characters", kind, k)
		}
		for _, r := range k {
			if r < 0x21 || r == 0x7f || r == '"' || r == '\\' {
				return fmt.Errorf("audit event %s: field name %q has a space, quote, backslash or control character", kind, k)
			}
		}
		if k[0] == '.' || k[len(k)-1] == '.' || strings.Contains(k, "..") {
			return fmt.Errorf("audit event %s: field name %q has an empty dotted part", kind, k)
		}
		for i := 0; i < len(k); i++ {
			if k[i] != '.' {
				continue
			}
			if _, clash := fields[k[:i]]; clash {
				return fmt.Errorf("audit event %s: field %q is also the prefix of field %q; rename one (SIEMs expand dots into objects)", kind, k[:i], k)
			}
		}
	}
	return nil
}

// currentActor describes this process.
func currentActor() Actor {
	return Actor{UID: os.Getuid(), PID: os.Getpid(), Command: strings.Join(os.Args, " ")}
}

// Open opens (creating it if needed) the trail at path for appending. It
// creates missing directories with mode 0700 and the file with 0600, takes
// the trail's lock, removes an unterminated final line left by a writer that
// was killed mid-write (recording a "trail.recovered" event), and checks the
// last record so the chain continues from it. A new trail starts with a
// "trail.created" record.
func Open(path string, opts Options) (*Trail, error) {
	if path == "" {
		return nil, errors.New("audit trail: empty path; pass --audit-log or set --root")
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("audit trail: reading the host name: %w; set Options.Host", err)
		}
		opts.Host = h
	}
	if err := validText("host name", opts.Host); err != nil {
		return nil, fmt.Errorf("audit trail: %w", err)
	}
	if opts.SigningKey != nil && len(opts.SigningKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("audit trail: signing key has %d bytes, want an ed25519 private key (%d)", len(opts.SigningKey), ed25519.PrivateKeySize)
	}
	actor := currentActor()
	if opts.Actor != nil {
		actor = *opts.Actor
	}
	return openTrail(path, opts, actor)
}

// validText refuses control characters in values that end up in signed
// checkpoint messages.
func validText(what, s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s %q has a control character", what, s)
		}
	}
	return nil
}
