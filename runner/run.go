// Package runner turns a request into a running container: it composes the
// hardened OCI spec, has the policy admit it, prepares the bundle and the
// idmapped rootfs, drives runc, and records every step in the audit trail.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/verify"
)

// Runner holds what every container start needs, prepared once per process.
type Runner struct {
	Root     string
	Store    *image.Store
	Verifier verify.Verifier // nil: no trust configured, every image is unsigned
	Policy   *policy.Engine
	Trail    *audit.Trail
	Runtime  *Runtime
	Seccomp  SeccompSource
	// Host reports the host's LSMs; nil means profiles.DetectLSM.
	Host func() profiles.HostLSM
	// Warn receives notes for the user (one line each).
	Warn io.Writer
	// Trace, when set, receives the time each step of the pipeline took.
	Trace io.Writer
}

// phase returns a function that reports how long the named step took.
func (r *Runner) phase(name string) func() {
	if r.Trace == nil {
		return func() {}
	}
	start := time.Now()
	return func() {
		fmt.Fprintf(r.Trace, "secrun: trace: %-16s %s\n", name, time.Since(start).Round(time.Microsecond))
	}
}

func (r *Runner) layout() layout { return layout{Root: r.Root} }

func (r *Runner) warnf(format string, args ...any) {
	if r.Warn != nil {
		fmt.Fprintf(r.Warn, "secrun: "+format+"\n", args...)
	}
}

// prepared is a container that policy admitted and whose bundle is ready.
type prepared struct {
	c     *Container
	plan  *Plan
	image *image.Image
	// undo releases everything prepare made; safe to call once.
	undo func() error
	// pending are records of the start not yet written: they are written
	// with runtime.invoked, before the runtime runs.
	pending []audit.Event
	// saved waits for the container's record to be written; the runtime
	// runs only once it returned nil.
	saved func() error
	// watchdog, when set, is started with the runtime process and returns
	// a function that stops it.
	watchdog func(runc *os.Process, c *Container) (stop func())
}

// record appends audit events, in one durable write; a record that cannot
// be written stops the container from starting (fail closed).
func (r *Runner) record(ctx context.Context, es ...audit.Event) error {
	if r.Trail == nil {
		return &Error{Code: ExitSecrun, Err: errors.New("no audit trail configured: refusing to run unaudited")}
	}
	if _, err := r.Trail.AppendAll(ctx, es...); err != nil {
		return &Error{Code: ExitSecrun, Err: fmt.Errorf("audit trail: %w: refusing to continue; check the audit log's disk and permissions", err)}
	}
	return nil
}

// prepare runs the pipeline up to a bundle ready for runc: image, signature,
// spec, policy, bundle, rootfs. On error nothing it made is left behind.
func (r *Runner) prepare(ctx context.Context, o RunOptions) (p *prepared, err error) {
	l := r.layout()
	id, err := newID()
	if err != nil {
		return nil, err
	}
	var undo []func() error
	cleanup := func() error {
		var errs []error
		for i := len(undo) - 1; i >= 0; i-- {
			errs = append(errs, undo[i]())
		}
		undo = nil
		return errors.Join(errs...)
	}
	var pending []audit.Event
	defer func() {
		if err != nil {
			// What happened before the failure is still recorded, unless
			// the whole request goes to a build with the policy engine,
			// which records it (policy.ErrNoEngine).
			if len(pending) > 0 && !errors.Is(err, policy.ErrNoEngine) {
				if rerr := r.record(context.WithoutCancel(ctx), pending...); rerr != nil {
					r.warnf("%v", rerr)
				}
			}
			if cerr := cleanup(); cerr != nil {
				r.warnf("cleaning up after a failed start: %v", cerr)
			}
		}
	}()
	ctr := audit.Container{ID: id, Name: o.Name, Runtime: r.Runtime.Path}
	// encoding/json builds its encoder for a type on first use: for the
	// policy input and the spec it holds that took 1.5 ms, paid on the
	// decision's path. It is built now, on the other core, while the image
	// is resolved and the spec planned.
	go json.Marshal(&policy.Input{})

	done := r.phase("image")
	img, err := r.Store.Resolve(ctx, o.Image, image.ImportOptions{})
	done()
	if err != nil {
		return nil, err
	}
	imgRef := audit.ImageRef{Name: img.Name, Digest: img.Digest.String()}
	// The steps before the policy decision are recorded with it, in one
	// durable write (or, if the start fails first, when it fails).
	pending = append(pending, audit.Event{Kind: "image.resolved", Outcome: "success", Container: ctr, Image: imgRef})

	done = r.phase("verify")
	sig, err := r.verify(ctx, img)
	done()
	if err != nil {
		return nil, err
	}
	sigOutcome := "success"
	if !sig.Verified {
		sigOutcome = "failure"
	}
	sigFields := map[string]any{"signature.verified": sig.Verified, "signature.signers": sig.Signers}
	if sig.Index != "" {
		sigFields["signature.index"] = sig.Index
	}
	pending = append(pending, audit.Event{Kind: "signature.verdict", Outcome: sigOutcome, Reason: sig.Error, Container: ctr, Image: imgRef, Fields: sigFields})

	done = r.phase("rootfs")
	rootfs, err := r.Store.Rootfs(ctx, img, unpackOptions())
	done()
	if err != nil {
		return nil, err
	}

	if o.Name != "" {
		if err := r.claimName(ctx, o.Name, id); err != nil {
			return nil, err
		}
		undo = append(undo, func() error { return l.releaseName(o.Name) })
	}
	var ids IDRange
	var ns *usernsFD
	defer ns.close()
	// rl is set when secrun runs without root (rootless_linux.go).
	var rl *rootlessSetup
	switch {
	case runningRootless():
		if rl, err = setupRootless(id, o); err != nil {
			return nil, err
		}
	case o.Userns != "host":
		if ids, err = l.userns().allocate(id); err != nil {
			return nil, err
		}
		undo = append(undo, func() error { return l.userns().release(ids) })
		// The idmapped rootfs needs a user namespace with these ids; it is
		// opened while the plan, the policy and the audit write go on.
		ns = openUsernsAsync(ids)
	}
	cg := "/secrun/" + id
	if rl != nil {
		cg = rl.cgroups
	}
	done = r.phase("plan")
	plan, err := MakePlan(PlanInput{Options: o, ID: id, Config: img.Config, Rootfs: rootfs, IDs: ids, Seccomp: r.Seccomp, Cgroups: cg, Rootless: rl.idsOrNil()})
	done()
	if err != nil {
		return nil, err
	}
	// Notes are printed once the policy has been consulted: a request
	// handed to the engine (policy.ErrNoEngine) is planned again there, and
	// its notes would appear twice.
	notes := append(rl.notesOrNil(), plan.Notes...)

	done = r.phase("lsm")
	host := r.host()
	lsmUndo, warnings, err := applyLSM(plan, host, id, filepath.Join(r.Root, "selinux", "mcs"), rl != nil)
	done()
	if lsmUndo != nil {
		undo = append(undo, lsmUndo)
	}
	if err != nil {
		return nil, err
	}
	// Rootless, what the host's LSMs do not confine is worth a line too.
	if len(plan.Request.AppArmor)+len(plan.Request.Label)+len(plan.Request.Landlock) > 0 || rl != nil {
		notes = append(notes, warnings...)
	}

	in := &policy.Input{
		Request:   plan.Request,
		Spec:      plan.Spec,
		Image:     policy.ImageInfo{Ref: img.Name, Digest: img.Digest.String(), Identity: true, Config: configMap(img)},
		Signature: sig,
		Host:      hostInfo(host),
	}
	if rl != nil {
		in.Host.Rootless, in.Host.CgroupLimits = true, rl.cgroups != ""
	}
	done = r.phase("policy+audit")
	// An allow is recorded with runtime.invoked, in one write, before the
	// runtime runs; a denial is recorded now.
	allowed, err := r.decide(ctx, in, ctr, imgRef, pending...)
	if !errors.Is(err, policy.ErrNoEngine) {
		pending = allowed
	}
	done()
	if !errors.Is(err, policy.ErrNoEngine) {
		for _, n := range notes {
			r.warnf("%s", n)
		}
	}
	if err != nil {
		return nil, err
	}

	if err := os.MkdirAll(l.containers(), 0o711); err != nil {
		return nil, err
	}
	if err := os.Mkdir(l.dir(id), 0o711); err != nil {
		return nil, err
	}
	undo = append(undo, func() error { return os.RemoveAll(l.dir(id)) })
	// With a read-only root filesystem, what runc needs while the
	// container runs is on a tmpfs (mountBundle). A foreground --rm
	// container's record goes there too: nothing of it outlives the run.
	tmpfsAt := ""
	if rl == nil && plan.Spec.Root.Readonly {
		tmpfsAt = l.bundle(id)
		if o.Remove && !o.Detach {
			tmpfsAt = l.dir(id)
		}
	}
	mountTmpfs := func(dir string) error {
		if dir != tmpfsAt {
			return nil
		}
		if err := mountBundle(dir); err != nil {
			return err
		}
		undo = append(undo, func() error { return unmountBundle(dir) })
		return nil
	}
	if err := mountTmpfs(l.dir(id)); err != nil {
		return nil, err
	}
	if err := os.Mkdir(l.bundle(id), 0o711); err != nil {
		return nil, err
	}
	if err := mountTmpfs(l.bundle(id)); err != nil {
		return nil, err
	}
	// The decided spec, with its seccomp filter handed to secrun-init when
	// it can load it: runc then does not compile the profile again on
	// every start. Rootless, runc keeps it.
	runSpec := plan.Spec
	created := map[string]any{"lsm.warnings": warnings}
	var initLayer string
	if rl == nil {
		done = r.phase("seccomp")
		s, fields, layer, err := r.seccompByInit(plan.Spec)
		initLayer = layer
		done()
		if err != nil {
			return nil, err
		}
		if s != nil {
			runSpec = s
			maps.Copy(created, fields)
		}
	}
	specJSON, err := json.MarshalIndent(runSpec, "", "  ")
	if err != nil {
		return nil, err
	}
	// Not synced: runc reads it now, and secrun only for a running
	// container, which a crash ends.
	if err := replaceFile(filepath.Join(l.bundle(id), "config.json"), specJSON, 0o600, false); err != nil {
		return nil, fmt.Errorf("writing bundle: %w", err)
	}
	sum := sha256.Sum256(specJSON)
	created["spec.hash"] = "sha256:" + hex.EncodeToString(sum[:])
	// Recorded with runtime.invoked, before the runtime runs.
	pending = append(pending, audit.Event{Kind: "spec.created", Outcome: "success", Container: ctr, Image: imgRef, Fields: created})

	// Rootless, runc bind-mounts the image itself (spec root.path): there
	// is nothing to mount here.
	if rl == nil {
		undo = append(undo, func() error { return unmountRootfs(l.fs(id), l.rootfs(id)) })
		done = r.phase("mount")
		err = mountRootfsFor(rootfs, l.fs(id), l.rootfs(id), ns, initLayer)
		done()
		if err != nil {
			return nil, err
		}
	}

	c := &Container{ID: id, Name: o.Name, Image: img.Name, ImageDigest: img.Digest.String(), Args: plan.Spec.Process.Args,
		Created: time.Now().UTC(), IDs: ids, Remove: o.Remove, Detached: o.Detach, Status: "created", Cgroups: cg, Request: plan.Request}
	// The record is written and synced while the audit trail's write goes
	// on (runForeground, startDetached): both wait for the same journal
	// commit. Nothing runs before saved says it is on disk, and undo waits
	// for it, so the clean-up never races the write.
	saveErr := make(chan error, 1)
	go func() { saveErr <- l.save(c) }()
	saved := sync.OnceValue(func() error { return <-saveErr })
	p = &prepared{c: c, plan: plan, image: img, pending: pending, saved: saved,
		undo: func() error { saved(); return cleanup() }}
	pending = nil
	return p, nil
}

// mountRootfsFor builds the rootfs; with the host user namespace there is
// nothing to shift and the overlay's lower layer is the image itself. top,
// when set, is a layer over the image's (seccompByInit's).
func mountRootfsFor(image, dir, target string, ns *usernsFD, top string) error {
	if ns == nil || ns.ids.HostID == 0 {
		return mountOverlay(image, dir, target, top)
	}
	return mountRootfs(image, dir, target, ns, top)
}

func configMap(img *image.Image) map[string]any {
	if img.Config == nil {
		return nil
	}
	data, err := json.Marshal(img.Config.Config)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

func (r *Runner) host() profiles.HostLSM {
	if r.Host != nil {
		return r.Host()
	}
	return profiles.DetectLSM()
}

func hostInfo(h profiles.HostLSM) policy.HostInfo {
	return policy.DetectHost(h.Active())
}

// applyLSM puts AppArmor, SELinux and Landlock confinement into the plan's
// spec as far as the host enforces them. undo releases what it reserved
// (an SELinux category pair, a loaded AppArmor profile).
// Rootless, secrun cannot load a generated AppArmor profile (see
// profiles.LSMRequest.CannotLoad).
func applyLSM(plan *Plan, host profiles.HostLSM, id, mcsDir string, rootless bool) (undo func() error, warnings []string, err error) {
	req := profiles.LSMRequest{ContainerID: id, AppArmor: plan.Request.AppArmor, Label: plan.Request.Label, CannotLoad: rootless}
	if len(plan.Request.Landlock) > 0 {
		if req.Landlock, err = profiles.ParseLandlock(plan.Request.Landlock); err != nil {
			return nil, nil, err
		}
		if req.InitBinary, err = profiles.FindInitBinary(); err != nil {
			return nil, nil, err
		}
	}
	var release []func() error
	if host.SELinux {
		// Category pairs are reserved on disk so that separate secrun
		// processes never hand out the same pair.
		alloc := &profiles.MCSAllocator{StateDir: mcsDir}
		labels, rel, err := alloc.Allocate(plan.Request.Label)
		if err != nil {
			return nil, nil, err
		}
		req.SELinux = labels
		release = append(release, rel)
		for _, v := range plan.Volumes {
			if v.Relabel == "" {
				continue
			}
			if err := profiles.RelabelVolume(v.Resolved, labels.Mount, v.Relabel == "z"); err != nil {
				return joinRelease(release), nil, fmt.Errorf("relabelling volume %s: %w", v.Source, err)
			}
		}
	}
	loaded := false
	req.LoadAppArmor = func(text string) error {
		if err := profiles.LoadAppArmor(text); err != nil {
			return err
		}
		loaded = true
		return nil
	}
	warnings, err = profiles.ApplyLSM(plan.Spec, host, req)
	if loaded {
		release = append(release, func() error { return profiles.UnloadAppArmor(profiles.AppArmorProfilePrefix + id) })
	}
	return joinRelease(release), warnings, err
}

func joinRelease(fs []func() error) func() error {
	return func() error {
		var errs []error
		for _, f := range fs {
			errs = append(errs, f())
		}
		return errors.Join(errs...)
	}
}

// verify returns the signature verdict. A verifier that cannot check fails
// closed: the error is returned and the container does not start.
func (r *Runner) verify(ctx context.Context, img *image.Image) (policy.SignatureInfo, error) {
	if r.Verifier == nil {
		return policy.SignatureInfo{Signers: []string{}, Digest: img.Digest.String(),
			Error: "no trust configuration: pass --trust FILE or set SECRUN_TRUST to check signatures"}, nil
	}
	subject, err := verify.StoredSubject(r.Store, img)
	var v verify.Verdict
	if err == nil {
		v, err = r.Verifier.Verify(ctx, subject)
	}
	if err != nil {
		return policy.SignatureInfo{}, &Error{Code: ExitDenied, Err: fmt.Errorf("signature of %s could not be checked: %w", img.Name, err)}
	}
	return v.PolicyInfo(), nil
}

// admit evaluates the policy and records the decision durably. It is the
// only way to a running container.
//
// before are records of earlier steps, written in the same durable write.
func (r *Runner) admit(ctx context.Context, in *policy.Input, ctr audit.Container, imgRef audit.ImageRef, before ...audit.Event) error {
	allowed, err := r.decide(ctx, in, ctr, imgRef, before...)
	if err != nil {
		return err
	}
	return r.record(ctx, allowed...)
}

// decide is admit without recording an allow: it returns the records
// (before and the decision) for the caller to write with the start they
// let through, in one fdatasync. A denial is recorded here and returned;
// policy.ErrNoEngine records nothing.
func (r *Runner) decide(ctx context.Context, in *policy.Input, ctr audit.Container, imgRef audit.ImageRef, before ...audit.Event) ([]audit.Event, error) {
	if r.Policy == nil {
		return nil, &Error{Code: ExitDenied, Err: errors.New("no policy loaded: refusing to run")}
	}
	d, evalErr := r.Policy.Eval(ctx, in)
	if errors.Is(evalErr, policy.ErrNoEngine) {
		// Nothing was decided: a build without the engine met a decision
		// its cache does not hold. The caller hands the request over.
		return nil, evalErr
	}
	outcome, kind := "allowed", "policy.decision"
	if evalErr != nil || !d.Allowed {
		outcome = "denied"
	}
	var violations []any
	for _, v := range d.Violations {
		violations = append(violations, v)
	}
	reason := d.Reason
	if evalErr != nil {
		reason = evalErr.Error()
	}
	inputHash := d.InputHash
	if inputHash == "" {
		inputHash = policy.InputHash(in)
	}
	pref := &audit.PolicyRef{Name: r.Policy.Name(), Hash: r.Policy.Hash(), InputHash: inputHash, Violations: violations}
	var fields map[string]any
	if d.Cached {
		fields = map[string]any{"policy.cached": true}
	}
	events := append(slices.Clip(before), audit.Event{Kind: kind, Outcome: outcome, Reason: reason, Container: ctr, Image: imgRef, Policy: pref, Fields: fields})
	denial := d.Err()
	if evalErr != nil {
		denial = fmt.Errorf("denied by policy: %w", evalErr)
	}
	if denial == nil {
		return events, nil
	}
	if err := r.record(ctx, events...); err != nil {
		return nil, err
	}
	return nil, &Error{Code: ExitDenied, Err: denial}
}

// Run runs a container: in the foreground until it exits (returning its exit
// status), or detached (returning 0 once it started).
func (r *Runner) Run(ctx context.Context, o RunOptions, stdio RunIO) (int, error) {
	if o.Detach && o.TTY {
		return ExitSecrun, &Error{Code: ExitSecrun, Err: errors.New("-t needs a foreground container (secrun has no attach): drop -t or -d")}
	}
	p, err := r.prepare(ctx, o)
	if err != nil {
		return ExitCode(err), err
	}
	if o.Detach {
		return 0, r.startDetached(ctx, p, stdio)
	}
	return r.runForeground(ctx, p, stdio)
}

func (r *Runner) auditContainer(c *Container) (audit.Container, audit.ImageRef) {
	return audit.Container{ID: c.ID, Name: c.Name, Runtime: r.Runtime.Path, PID: c.Pid}, audit.ImageRef{Name: c.Image, Digest: c.ImageDigest}
}

func (r *Runner) runForeground(ctx context.Context, p *prepared, stdio RunIO) (code int, err error) {
	l := r.layout()
	c := p.c
	ctr, imgRef := r.auditContainer(c)
	// With an OOM watch, runc run removes the container itself when it
	// exits; without, it keeps it for its cgroup's counters and runc
	// delete (oom_linux.go).
	oom := watchOOM(c.Cgroups)
	defer oom.close()
	finish := func(code int, runErr error) (int, error) {
		exitFields := map[string]any{"exit.code": code}
		if oom != nil {
			if oom.oomed() {
				exitFields["oom_killed"] = true
			}
			oom.close()
		} else if oomKilled(c.Cgroups) {
			exitFields["oom_killed"] = true
		}
		cleanupDone := r.phase("exit+cleanup")
		defer cleanupDone()
		// runc run has returned, so the container has exited: a plain delete
		// suffices (--force would also signal and wait, costing ~100 ms).
		// It runs beside the rest of the clean-up, which does not depend
		// on it: runc's state and cgroups are not the rootfs or the bundle.
		deleted := make(chan error, 1)
		go func() {
			if oom != nil && runErr == nil {
				// runc run returned the container's status: it has removed
				// the container already.
				deleted <- nil
				return
			}
			delErr := r.Runtime.Delete(context.WithoutCancel(ctx), c.ID, false)
			if delErr != nil && !strings.Contains(delErr.Error(), "does not exist") {
				delErr = r.Runtime.Delete(context.WithoutCancel(ctx), c.ID, true)
			}
			deleted <- delErr
		}()
		outcome := "success"
		if runErr != nil {
			outcome, exitFields["error"] = "failure", runErr.Error()
		}
		exited := audit.Event{Kind: "container.exited", Outcome: outcome, Container: ctr, Image: imgRef, Fields: exitFields}
		// A container that never ran (the runtime failed to start it) is
		// removed whatever --rm said: a failed start leaves nothing behind.
		remove := c.Remove || runErr != nil
		var recErr error
		if remove {
			// What secrun made for the container (rootfs, bundle, id
			// range, labels) does not depend on runc's record of it, so it
			// goes while runc delete runs.
			if err := p.undo(); err != nil {
				r.warnf("removing container: %v", err)
			}
		} else {
			recErr = r.record(context.WithoutCancel(ctx), exited)
			if unErr := l.unmount(c.ID); unErr != nil {
				r.warnf("%v", unErr)
			}
		}
		if delErr := <-deleted; delErr != nil && !errors.Is(delErr, os.ErrNotExist) && !strings.Contains(delErr.Error(), "does not exist") {
			r.warnf("%v", delErr)
		}
		if remove {
			// The exit and the removal, in one durable write.
			recErr = r.record(context.WithoutCancel(ctx), exited,
				audit.Event{Kind: "container.removed", Outcome: "success", Container: ctr, Image: imgRef})
		} else {
			c.Status, c.ExitCode, c.Pid = "exited", code, 0
			if err := l.save(c); err != nil {
				r.warnf("saving container record: %v", err)
			}
		}
		if runErr != nil {
			return ExitCode(runErr), runErr
		}
		return code, recErr
	}

	invDone := r.phase("invoke record")
	recErr := r.record(ctx, append(p.pending, audit.Event{Kind: "runtime.invoked", Outcome: "success", Container: ctr, Image: imgRef,
		Fields: map[string]any{"runtime.command": "run"}})...)
	if err := errors.Join(recErr, p.saved()); err != nil {
		invDone()
		return finish(ExitSecrun, err)
	}
	invDone()
	runArgs := []string{"run"}
	if oom == nil {
		runArgs = append(runArgs, "--keep")
	}
	runArgs = append(runArgs, "--bundle", l.bundle(c.ID), "--pid-file", l.pidFile(c.ID), c.ID)
	cmd := r.Runtime.command(ctx, l.runcLog(c.ID), runArgs...)
	cmd.Stdout, cmd.Stderr = stdio.Stdout, stdio.Stderr
	if stdio.Stdin != nil {
		cmd.Stdin = stdio.Stdin
	}
	if !p.plan.Spec.Process.Terminal {
		// Keep terminal-generated signals away from runc: secrun forwards
		// them once, so the container does not get each one twice.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if f, ok := stdio.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			cmd.Stdin = struct{ io.Reader }{f}
		}
	}
	// runc must outlive a cancelled context: it is stopped by signals.
	cmd.Cancel = func() error { return cmd.Process.Signal(unix.SIGTERM) }
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)
	// The kernel watch reads /dev/kmsg from its current end, so it is opened
	// before runc starts: the container's first denials are not missed.
	watchDone := r.phase("watches")
	stopWatch := r.watchKernel(ctx, c)
	stopStarted := r.recordStarted(ctx, c)
	watchDone()
	defer stopStarted()
	if err := cmd.Start(); err != nil {
		stopWatch()
		return finish(ExitSecrun, &Error{Code: ExitSecrun, Err: fmt.Errorf("starting runtime %s: %w", r.Runtime.Path, err)})
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				// runc run forwards what it receives to the container.
				if err := cmd.Process.Signal(s); err == nil {
					if rerr := r.record(context.WithoutCancel(ctx), audit.Event{Kind: "container.signal", Outcome: "success", Container: ctr, Image: imgRef,
						Fields: map[string]any{"signal": s.String()}}); rerr != nil {
						r.warnf("%v", rerr)
					}
				}
			case <-done:
				return
			}
		}
	}()
	stopDog := func() {}
	if p.watchdog != nil {
		stopDog = p.watchdog(cmd.Process, c)
	}
	runDone := r.phase("runc run")
	waitErr := cmd.Wait()
	runDone()
	stopDone := r.phase("watches stop")
	stopStarted()
	stopDog()
	stopWatch()
	close(done)
	stopDone()
	if msg := runcLogError(l.runcLog(c.ID)); msg != "" {
		rerr := &RuntimeError{Op: "run", Msg: msg, Err: waitErr}
		code := ExitSecrun
		if rerr.NotFound() {
			code = ExitNotFound
		}
		return finish(code, &Error{Code: code, Err: rerr})
	}
	var ee *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &ee) {
		return finish(ExitSecrun, &Error{Code: ExitSecrun, Err: fmt.Errorf("runtime: %w", waitErr)})
	}
	return finish(cmd.ProcessState.ExitCode(), nil)
}

// recordStarted records "container.started", with the container's pid,
// when runc writes the pid file: runc run creates the container, writes the
// file, and starts the process. The returned function stops the watch and
// waits for it.
func (r *Runner) recordStarted(ctx context.Context, c *Container) (stop func()) {
	w, err := newPidWatch(r.layout().pidFile(c.ID))
	if err != nil {
		r.warnf("the start of %s is not recorded: %v", short(c.ID), err)
		return func() {}
	}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		pid, err := w.wait()
		if err != nil {
			r.warnf("the start of %s is not recorded: %v", short(c.ID), err)
			return
		}
		if pid == 0 {
			return
		}
		c.Pid = pid
		ctr, imgRef := r.auditContainer(c)
		if err := r.record(context.WithoutCancel(ctx), audit.Event{Kind: "container.started", Outcome: "success", Container: ctr, Image: imgRef}); err != nil {
			r.warnf("%v", err)
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := w.stop(); err != nil {
				r.warnf("%v", err)
			}
			<-finished
			w.close()
		})
	}
}

// forwardedSignals are passed on to the container; SIGWINCH reaches runc from
// the terminal directly.
var forwardedSignals = []os.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2}

// watchKernel attributes the kernel's seccomp audit records to this
// container while secrun supervises it. The returned function stops the
// watch and waits for its last record to be written.
func (r *Runner) watchKernel(ctx context.Context, c *Container) (stop func()) {
	ctr, _ := r.auditContainer(c)
	if c.Cgroups == "" {
		// Rootless without a delegated cgroup: nothing lists the
		// container's processes, so no kernel record could be attributed.
		r.warnf("kernel seccomp events for %s are not recorded: the container has no cgroup of its own to attribute them by (rootless)", short(c.ID))
		return func() {}
	}
	w, err := audit.OpenSeccompWatch(r.Trail, ctr, func() []int { return cgroupPids(c.Cgroups) })
	if err != nil {
		r.warnf("kernel seccomp events for %s are not recorded: %v", short(c.ID), err)
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			r.warnf("kernel seccomp events for %s: %v", short(c.ID), err)
		}
	}()
	return func() {
		cancel()
		<-finished
	}
}

func (r *Runner) startDetached(ctx context.Context, p *prepared, stdio RunIO) error {
	l := r.layout()
	c := p.c
	ctr, imgRef := r.auditContainer(c)
	fail := func(err error) error {
		// The decision and what led to it are recorded even when the start
		// fails before they were written with runtime.invoked.
		if len(p.pending) > 0 {
			if rerr := r.record(context.WithoutCancel(ctx), p.pending...); rerr != nil {
				r.warnf("%v", rerr)
			}
			p.pending = nil
		}
		if derr := r.Runtime.Delete(context.WithoutCancel(ctx), c.ID, true); derr != nil && !strings.Contains(derr.Error(), "does not exist") {
			r.warnf("%v", derr)
		}
		if uerr := p.undo(); uerr != nil {
			r.warnf("cleaning up: %v", uerr)
		}
		return err
	}
	out, err := os.OpenFile(l.outputLog(c.ID), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fail(err)
	}
	defer out.Close()
	if err := r.record(ctx, append(p.pending, audit.Event{Kind: "runtime.invoked", Outcome: "success", Container: ctr, Image: imgRef,
		Fields: map[string]any{"runtime.command": "create"}})...); err != nil {
		p.pending = nil // a write that failed is not retried
		return fail(err)
	}
	p.pending = nil
	if err := p.saved(); err != nil {
		return fail(err)
	}
	if err := r.Runtime.Create(ctx, c.ID, l.bundle(c.ID), l.pidFile(c.ID), l.runcLog(c.ID), RunIO{Stdout: out, Stderr: out}); err != nil {
		var re *RuntimeError
		if errors.As(err, &re) && re.NotFound() {
			return fail(&Error{Code: ExitNotFound, Err: err})
		}
		return fail(err)
	}
	pid, _ := readPid(l.pidFile(c.ID))
	c.Pid = pid
	ctr.PID = pid
	if err := r.record(ctx, audit.Event{Kind: "container.created", Outcome: "success", Container: ctr, Image: imgRef}); err != nil {
		return fail(err)
	}
	if err := r.Runtime.Start(ctx, c.ID, l.runcLog(c.ID)); err != nil {
		return fail(err)
	}
	c.Status = "running"
	if err := l.save(c); err != nil {
		return fail(err)
	}
	if err := r.record(ctx, audit.Event{Kind: "container.started", Outcome: "success", Container: ctr, Image: imgRef}); err != nil {
		r.warnf("%v", err)
	}
	fmt.Fprintln(stdio.Stdout, c.ID)
	return nil
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// cgroupFile returns the path of a file of the container's cgroup for a v1
// controller, or of the unified hierarchy on v2.
func cgroupFile(cgpath, controller, file string) string {
	if policy.CgroupMode() == "v2" {
		return filepath.Join("/sys/fs/cgroup", cgpath, file)
	}
	return filepath.Join("/sys/fs/cgroup", controller, cgpath, file)
}

func cgroupPids(cgpath string) []int {
	if cgpath == "" {
		// No cgroup of its own (rootless): the root cgroup is not it.
		return nil
	}
	data, err := os.ReadFile(cgroupFile(cgpath, "pids", "cgroup.procs"))
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids
}

// oomKilled reports whether the kernel's OOM killer killed a process of the
// container's memory cgroup (read before the runtime removes it).
func oomKilled(cgpath string) bool {
	if cgpath == "" {
		// No memory cgroup of its own (rootless): the root cgroup's count
		// is the host's, not the container's.
		return false
	}
	name, key := "memory.oom_control", "oom_kill"
	if policy.CgroupMode() == "v2" {
		name = "memory.events"
	}
	data, err := os.ReadFile(cgroupFile(cgpath, "memory", name))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == key && f[1] != "0" {
			return true
		}
	}
	return false
}

// specOf reads a container's bundle spec.
func (r *Runner) specOf(id string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(r.layout().bundle(id), "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("container %s: corrupt spec: %w", id, err)
	}
	// The declared spec: a filter secrun-init loads is still the spec's.
	if err := profiles.DeclaredSeccomp(&s); err != nil {
		return nil, fmt.Errorf("container %s: corrupt spec: %w", id, err)
	}
	return &s, nil
}

// PlanOnly derives the spec `secrun run` would use for o, without policy,
// bundle or runtime: for printing generated profiles.
func (r *Runner) PlanOnly(ctx context.Context, o RunOptions) (*Plan, error) {
	img, err := r.Store.Resolve(ctx, o.Image, image.ImportOptions{})
	if err != nil {
		return nil, err
	}
	rootfs, err := r.Store.Rootfs(ctx, img, unpackOptions())
	if err != nil {
		return nil, err
	}
	id := strings.Repeat("0", 64)
	in := PlanInput{Options: o, ID: id, Config: img.Config, Rootfs: rootfs,
		IDs: IDRange{HostID: usernsBase, Size: usernsBlockSize}, Seccomp: r.Seccomp, Cgroups: "/secrun/" + id}
	if runningRootless() {
		rl, err := setupRootless(id, o)
		if err != nil {
			return nil, err
		}
		in.IDs, in.Cgroups, in.Rootless = IDRange{}, rl.cgroups, &rl.ids
	}
	return MakePlan(in)
}
