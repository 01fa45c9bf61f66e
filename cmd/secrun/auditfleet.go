package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/runner"
	"github.com/secrun/secrun/verify"
)

// ExitAuditFindings is the exit status of `secrun audit` when a finding at
// or above --fail-on exists.
const ExitAuditFindings = 1

// fleetFlags are `secrun audit`'s own flags.
type fleetFlags struct {
	format     string
	failOn     string
	watch      time.Duration
	config     string
	noDefaults bool
	noCIS      bool
	docker     string
	containerd []string
	runcRoots  []string
	crunRoots  []string
	podman     []string
	secrun     []string
}

func (f *fleetFlags) bind(c *cobra.Command) {
	fl := c.Flags()
	fl.StringVar(&f.format, "format", "table", "output: table, json or sarif (SARIF 2.1.0)")
	fl.StringVar(&f.failOn, "fail-on", audit.DefaultFailOn, "exit 1 when a finding at or above this severity exists: low, medium, high, critical or none")
	fl.DurationVar(&f.watch, "watch", 0, "re-audit on this interval until interrupted (e.g. 1m)")
	fl.StringVar(&f.config, "config", "", "discovery config (YAML/JSON) listing extra places: docker_socket, containerd_state, runc_roots, crun_roots, podman, secrun_roots")
	fl.BoolVar(&f.noDefaults, "no-default-paths", false, "look only where flags and --config say, not in the engines' default state directories")
	fl.BoolVar(&f.noCIS, "no-cis", false, "do not evaluate the cis-docker library besides --policy")
	fl.StringVar(&f.docker, "docker-socket", "", "Docker API socket (default /var/run/docker.sock; \"none\" to not ask Docker)")
	fl.StringArrayVar(&f.containerd, "containerd-state", nil, "extra containerd state directory (repeatable)")
	fl.StringArrayVar(&f.runcRoots, "runc-root", nil, "extra runc --root directory (repeatable)")
	fl.StringArrayVar(&f.crunRoots, "crun-root", nil, "extra crun state directory (repeatable)")
	fl.StringArrayVar(&f.podman, "podman-storage", nil, "extra podman store ROOT[:RUNROOT] (repeatable)")
	fl.StringArrayVar(&f.secrun, "secrun-root", nil, "extra secrun state directory (repeatable; --root is always included)")
}

// discoverOptions assembles where to look: the defaults (unless
// --no-default-paths), secrun's own --root, --config, then the flags.
func (f *fleetFlags) discoverOptions(g *globals) (audit.DiscoverOptions, error) {
	var o audit.DiscoverOptions
	if !f.noDefaults {
		o = audit.UserPlaces(audit.DefaultUserRuntimeDir, audit.HomeOf).Apply(audit.DefaultDiscoverOptions())
	}
	cfg := audit.DiscoverConfig{SecrunRoots: []string{absPath(g.root)}}
	o = cfg.Apply(o)
	if f.config != "" {
		c, err := audit.LoadDiscoverConfig(f.config)
		if err != nil {
			return o, &usageError{err}
		}
		o = c.Apply(o)
	}
	flags := audit.DiscoverConfig{ContainerdStateDirs: absPaths(f.containerd), RuncRoots: absPaths(f.runcRoots),
		CrunRoots: absPaths(f.crunRoots), SecrunRoots: absPaths(f.secrun)}
	for _, p := range f.podman {
		root, run, _ := strings.Cut(p, ":")
		if root == "" {
			return o, &usageError{fmt.Errorf("--podman-storage %q: want ROOT[:RUNROOT]", p)}
		}
		ps := audit.PodmanStorage{Root: absPath(root)}
		if run != "" {
			ps.RunRoot = absPath(run)
		}
		flags.Podman = append(flags.Podman, ps)
	}
	switch f.docker {
	case "":
	case "none":
		empty := ""
		flags.DockerSocket = &empty
	default:
		s := absPath(f.docker)
		flags.DockerSocket = &s
	}
	return flags.Apply(o), nil
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func absPaths(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = absPath(p)
	}
	return out
}

// runFleetAudit is `secrun audit`: audit every running container, write
// the report, record the run in the audit trail, and set the exit status.
func runFleetAudit(cmd *cobra.Command, g *globals, f *fleetFlags) error {
	write, err := fleetWriter(f.format)
	if err != nil {
		return err
	}
	if err := audit.CheckFailOn(f.failOn); err != nil {
		return &usageError{err}
	}
	if f.watch < 0 || (f.watch > 0 && f.watch < time.Second) {
		return &usageError{fmt.Errorf("--watch %s: want an interval of at least 1s", f.watch)}
	}
	opts, err := f.discoverOptions(g)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	eng, err := policy.Load(ctx, g.policy)
	if err != nil {
		return &runner.Error{Code: runner.ExitDenied, Err: fmt.Errorf("policy %s: %w", g.policyName(), err)}
	}
	var cis *policy.Engine
	if !f.noCIS {
		if cis, err = policy.Load(ctx, "cis-docker"); err != nil {
			return fmt.Errorf("policy cis-docker: %w", err)
		}
	}
	trail, err := g.openTrail()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := trail.Close(); cerr != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "secrun: closing audit trail: %v\n", cerr)
		}
	}()
	host, err := os.Hostname()
	if err != nil {
		host = "" // only a label in the report; the trail records its own
	}
	sig, err := g.fleetSignature()
	if err != nil {
		return err
	}
	fo := audit.FleetOptions{Discover: opts, FailOn: f.failOn, HostName: host, Signature: sig}
	once := func(ctx context.Context) error {
		rep, err := audit.AuditFleet(ctx, eng, cis, fo)
		if err != nil {
			if ctx.Err() == nil {
				// A run that could not audit is recorded too.
				ev := audit.Event{Kind: audit.KindAuditRun, Outcome: audit.OutcomeFailure, Reason: "the fleet audit could not run: " + err.Error()}
				if _, terr := trail.Append(ctx, ev); terr != nil {
					return errors.Join(err, fmt.Errorf("audit trail: %w", terr))
				}
			}
			return err
		}
		if _, err := trail.Append(ctx, rep.Event()); err != nil {
			return fmt.Errorf("audit trail: %w: the audit run was not recorded", err)
		}
		if err := write(rep, cmd.OutOrStdout()); err != nil {
			return err
		}
		g.exitCode = 0
		if rep.Failed() {
			g.exitCode = ExitAuditFindings
		}
		return nil
	}
	if f.watch == 0 {
		return once(ctx)
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, unix.SIGTERM)
	defer stop()
	tick := time.NewTicker(f.watch)
	defer tick.Stop()
	for {
		if err := once(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// fleetSignature checks the signatures of secrun's own containers' images
// with --trust, against the image store they were run from. Other engines'
// images live in those engines' stores, so their signatures stay "not
// checked by audit". Without --trust it returns nil.
func (g *globals) fleetSignature() (func(context.Context, audit.FleetContainer) (policy.SignatureInfo, bool), error) {
	v, err := g.verifier()
	if err != nil || v == nil {
		return nil, err
	}
	st, err := g.store()
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, c audit.FleetContainer) (policy.SignatureInfo, bool) {
		if c.Engine != audit.EngineSecrun || c.Image.Digest == "" {
			return policy.SignatureInfo{}, false
		}
		h, err := v1.NewHash(c.Image.Digest)
		if err != nil {
			return policy.SignatureInfo{Signers: []string{}, Error: fmt.Sprintf("image digest %q: %v", c.Image.Digest, err)}, true
		}
		vd, err := v.Verify(ctx, verify.Subject{Ref: c.Image.Ref, Digest: h, Signatures: st})
		if err != nil {
			return policy.SignatureInfo{Signers: []string{}, Digest: c.Image.Digest, Error: "the signature could not be checked: " + err.Error()}, true
		}
		return vd.PolicyInfo(), true
	}, nil
}

func fleetWriter(format string) (func(audit.FleetReport, io.Writer) error, error) {
	switch format {
	case "table", "":
		return audit.FleetReport.WriteTable, nil
	case "json":
		return audit.FleetReport.WriteJSON, nil
	case "sarif":
		return audit.FleetReport.WriteSARIF, nil
	}
	return nil, &usageError{fmt.Errorf("--format %q: want table, json or sarif", format)}
}
