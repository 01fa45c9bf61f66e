package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner"
	"github.com/secrun/secrun/verify"
)

// globals are the flags every command shares, with their environment
// variable fallbacks.
type globals struct {
	root     string
	policy   string
	trust    string
	runtime  string
	auditLog string
	auditKey string

	exitCode int
}

func (g *globals) bind(c *cobra.Command) {
	f := c.PersistentFlags()
	f.StringVar(&g.root, "root", envOr("SECRUN_ROOT", defaultRoot()), "state directory: image store, containers, audit log (env SECRUN_ROOT)")
	f.StringVar(&g.policy, "policy", os.Getenv("SECRUN_POLICY"), "policy: a built-in name (restricted, baseline, cis-docker), a .rego file or a directory (env SECRUN_POLICY; default restricted)")
	f.StringVar(&g.trust, "trust", os.Getenv("SECRUN_TRUST"), "trust config: which keys sign which images (env SECRUN_TRUST)")
	f.StringVar(&g.runtime, "runtime", os.Getenv("SECRUN_RUNTIME"), "OCI runtime binary (default: the runc installed by 'make deps', else runc on PATH)")
	f.StringVar(&g.auditLog, "audit-log", os.Getenv("SECRUN_AUDIT_LOG"), "audit trail file (default ROOT/audit/audit.log)")
	f.StringVar(&g.auditKey, "audit-key", os.Getenv("SECRUN_AUDIT_KEY"), "ed25519 private key (PEM) to sign audit checkpoints")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// defaultRoot is /var/lib/secrun for root and the XDG data directory for
// everyone else.
func defaultRoot() string {
	if os.Geteuid() == 0 {
		return "/var/lib/secrun"
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "secrun")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("secrun-%d", os.Geteuid()))
	}
	return filepath.Join(home, ".local", "share", "secrun")
}

// runtimeRoot is runc's state directory (runc --root): ROOT/runc as root.
// Rootless it is $XDG_RUNTIME_DIR/secrun/runc, a per-user tmpfs that runc
// itself defaults to, when that directory is the caller's; else ROOT/runc.
func (g *globals) runtimeRoot() string {
	if os.Geteuid() != 0 {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && filepath.IsAbs(d) && ownedBySelf(d) {
			return filepath.Join(d, "secrun", "runc")
		}
	}
	return filepath.Join(g.root, "runc")
}

func (g *globals) auditPath() string {
	if g.auditLog != "" {
		return g.auditLog
	}
	return filepath.Join(g.root, "audit", "audit.log")
}

func (g *globals) openTrail() (*audit.Trail, error) {
	opts := audit.Options{}
	if g.auditKey != "" {
		k, err := audit.LoadSigningKey(g.auditKey)
		if err != nil {
			return nil, err
		}
		opts.SigningKey = k
		// Every process pins the tail it leaves with a signed checkpoint,
		// so a trail cut at a line boundary is detected too.
		opts.CheckpointOnClose = true
	}
	t, err := audit.Open(g.auditPath(), opts)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: %w: refusing to run unaudited", g.auditPath(), err)
	}
	return t, nil
}

func (g *globals) store() (*image.Store, error) {
	if err := os.MkdirAll(g.root, 0o711); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", g.root, err)
	}
	// The root must be traversable by the containers' mapped ids.
	if err := os.Chmod(g.root, 0o711); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", g.root, err)
	}
	return image.Open(g.root)
}

func (g *globals) verifier() (verify.Verifier, error) {
	if g.trust == "" {
		return nil, nil
	}
	t, err := verify.LoadTrust(g.trust)
	if err != nil {
		return nil, err
	}
	return verify.NewVerifier(t, filepath.Join(g.root, "verdicts")), nil
}

// runner assembles the pipeline. Everything expensive (policy compilation,
// trust keys) is prepared here once.
//
// The audit trail, whose opening reads and checks its last record, opens
// while the store, the policy and the trust configuration load. An error
// of theirs still comes first, and the trail is closed before it is
// returned: a hand-off to the engine must not leave a write in flight.
func (g *globals) runner(cmd *cobra.Command) (*runner.Runner, func(), error) {
	type opened struct {
		trail *audit.Trail
		err   error
	}
	trailc := make(chan opened, 1)
	go func() {
		t, err := g.openTrail()
		trailc <- opened{t, err}
	}()
	fail := func(err error) (*runner.Runner, func(), error) {
		if o := <-trailc; o.trail != nil {
			if cerr := o.trail.Close(); cerr != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "secrun: closing audit trail: %v\n", cerr)
			}
		}
		return nil, nil, err
	}
	st, err := g.store()
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	eng, err := g.loadPolicy(cmd, policy.WithDecisionCache(filepath.Join(g.root, "decisions")))
	if err != nil {
		return fail(err)
	}
	loaded := time.Since(t0)
	v, err := g.verifier()
	if err != nil {
		return fail(&runner.Error{Code: runner.ExitDenied, Err: err})
	}
	rt, err := runner.FindRuntime(g.runtime)
	if err != nil {
		return fail(err)
	}
	o := <-trailc
	if o.err != nil {
		return nil, nil, o.err
	}
	trail := o.trail
	r := &runner.Runner{
		Root:     g.root,
		Store:    st,
		Verifier: v,
		Policy:   eng,
		Trail:    trail,
		Runtime:  &runner.Runtime{Path: rt, Root: g.runtimeRoot()},
		Seccomp:  runner.DefaultSeccompSource,
		Warn:     cmd.ErrOrStderr(),
	}
	if os.Getenv("SECRUN_TRACE") != "" {
		r.Trace = cmd.ErrOrStderr()
		fmt.Fprintf(r.Trace, "secrun: trace: %-16s %s\nsecrun: trace: %-16s %s\nsecrun: trace: %-16s %s\n", "process start", t0.Sub(processStart).Round(time.Microsecond),
			"policy load", loaded.Round(time.Microsecond), "setup", time.Since(t0).Round(time.Microsecond))
	}
	closeFn := func() {
		if err := trail.Close(); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "secrun: closing audit trail: %v\n", err)
		}
	}
	return r, closeFn, nil
}

func (g *globals) policyName() string {
	if g.policy == "" {
		return "restricted"
	}
	return g.policy
}

// processStart is as close to the process's start as Go lets a package see:
// package initialisation of main runs after every dependency's.
var processStart = time.Now()

// loadPolicy loads the active policy. A policy that does not compile is a
// denial (126) that names the file and line; a missing file is an error (125).
func (g *globals) loadPolicy(cmd *cobra.Command, opts ...policy.Option) (*policy.Engine, error) {
	eng, err := policy.Load(cmd.Context(), g.policy, opts...)
	if err == nil {
		return eng, nil
	}
	var de *policy.DeniedError
	if errors.As(err, &de) {
		return nil, &runner.Error{Code: runner.ExitDenied, Err: err}
	}
	return nil, &runner.Error{Code: runner.ExitSecrun, Err: err}
}
