package wrapper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/policy"
)

// decision is everything one admission needs recorded.
type decision struct {
	trail *audit.Trail
	ctr   audit.Container
	img   audit.ImageRef
	cmd   string
	// decider is the resident server that decided, "" for this process.
	decider string
}

// record appends events in one durable write (one fdatasync): the
// decision and what it lets through are recorded together, before runc
// starts anything.
func (d *decision) record(ctx context.Context, events ...audit.Event) error {
	for i := range events {
		e := &events[i]
		e.Container, e.Image = d.ctr, d.img
		if e.Fields == nil {
			e.Fields = map[string]any{}
		}
		e.Fields["runtime.command"] = d.cmd
		if d.decider != "" {
			e.Fields["runtime.decider"] = d.decider
		}
	}
	if _, err := d.trail.AppendAll(ctx, events...); err != nil {
		return deny("audit trail %s: %w: refusing to start unaudited; check the audit log's disk and permissions", d.trail.Path(), err)
	}
	return nil
}

// refuse records a refusal that is not a policy decision (an unreadable
// bundle, a policy that does not load), after the decision taken so far
// when there is one, and returns it.
func (d *decision) refuse(ctx context.Context, err error, decided ...audit.Event) error {
	events := append(slices.Clip(decided), audit.Event{Kind: audit.KindContainerDenied, Outcome: audit.OutcomeDenied, Reason: OneLine(err)})
	if rerr := d.record(ctx, events...); rerr != nil {
		return &Error{Code: ExitDenied, Err: fmt.Errorf("%s (and the refusal was not recorded: %w)", OneLine(err), rerr)}
	}
	return err
}

type readBundle struct {
	b   *Bundle
	err error
}

type loaded struct {
	eng *policy.Engine
	err error
}

// loadPolicy compiles the configured policy in the background: it is the
// slowest step, and reading the bundle and opening the trail can overlap it.
func (w *Wrapper) loadPolicy(ctx context.Context) <-chan loaded {
	ch := make(chan loaded, 1)
	go func() {
		var opts []policy.Option
		if w.Memo != nil {
			opts = append(opts, policy.WithMemo(w.Memo))
		}
		if w.Config.Exemptions != "" {
			opts = append(opts, policy.WithExemptions(w.Config.Exemptions))
		}
		e, err := policy.Load(ctx, w.Config.Policy, opts...)
		ch <- loaded{e, err}
	}()
	return ch
}

func (w *Wrapper) openTrail() (*audit.Trail, error) {
	opts := audit.Options{Actor: w.Actor}
	if w.Config.AuditKey != "" {
		k, err := audit.LoadSigningKey(w.Config.AuditKey)
		if err != nil {
			return nil, err
		}
		opts.SigningKey = k
	}
	t, err := audit.Open(w.Config.AuditLog, opts)
	if err != nil {
		return nil, fmt.Errorf("audit trail %s: %w: refusing to start unaudited", w.Config.AuditLog, err)
	}
	return t, nil
}

func closeTrail(t *audit.Trail, err *error) {
	if cerr := t.Close(); cerr != nil && *err == nil {
		*err = deny("audit trail %s: %w", t.Path(), cerr)
	}
}

// admitCreate decides on `create` and `run`: read the bundle, harden it,
// evaluate, record, and put the final spec in place for runc.
func (w *Wrapper) admitCreate(ctx context.Context, inv *Invocation) (err error) {
	c := inv.Create
	pol := w.loadPolicy(ctx)
	// The bundle is read and hardened while the trail opens. Its path is
	// made absolute first: the resident server changes directory per call.
	dir := c.Bundle
	if dir == "" {
		dir = "."
	}
	abs, absErr := filepath.Abs(dir)
	bundle := make(chan readBundle, 1)
	if absErr == nil {
		go func() {
			b, err := ReadBundle(abs)
			if err == nil {
				if err = b.Harden(w.Config.Hardening); err != nil {
					err = fmt.Errorf("hardening its spec: %w", err)
				}
			}
			bundle <- readBundle{b, err}
		}()
	}
	trail, err := w.openTrail()
	if err != nil {
		return deny("refusing to start container %s: %w", c.ID, err)
	}
	defer closeTrail(trail, &err)
	rt, err := w.runtime()
	if err != nil {
		return &Error{Code: ExitError, Err: err}
	}
	d := &decision{trail: trail, ctr: audit.Container{ID: c.ID, Runtime: rt}, cmd: inv.Command, decider: w.Decider}

	if absErr != nil {
		return d.refuse(ctx, deny("refusing to start container %s: bundle %s: %w", c.ID, dir, absErr))
	}
	rb := <-bundle
	if rb.err != nil {
		return d.refuse(ctx, deny("refusing to start container %s: %w", c.ID, rb.err))
	}
	b := rb.b
	id := IdentityFromAnnotations(b.Spec.Annotations)
	d.ctr.Name = containerName(b.Spec.Annotations)
	d.img = audit.ImageRef{Name: id.Ref, Digest: id.Digest}
	sig, err := w.signature(ctx, id)
	if err != nil {
		return d.refuse(ctx, deny("refusing to start container %s: %w", c.ID, err))
	}

	req := policy.RequestFromSpec(b.OrigSpec, "runtime")
	// The request says what runs, as for `secrun run`: hardening secrun-runc
	// applied counts as asked for.
	for _, ch := range b.Changes {
		switch ch {
		case "linux.seccomp=default":
			req.Seccomp = "default"
		case "process.noNewPrivileges=true":
			req.NoNewPrivileges = true
		}
	}
	req.Name, req.Runtime = d.ctr.Name, rt
	in := &policy.Input{Request: req, Spec: b.Spec, Image: id.ImageInfo(), Signature: sig, Host: w.Host()}

	fields := map[string]any{"spec.hash": hashOf(b.Final), "bundle": b.Dir}
	if hooks := hookLines(b.Spec.Hooks); len(hooks) > 0 {
		fields["spec.hooks"] = hooks
	}
	if len(b.Changes) > 0 {
		fields["spec.original_hash"] = hashOf(b.Orig)
		fields["spec.hardening"] = b.Changes
	}
	decided, err := w.decide(ctx, d, pol, in, fields)
	if err != nil {
		return err
	}
	if err := b.Write(); err != nil {
		return d.refuse(ctx, deny("refusing to start container %s: %w", c.ID, err), decided)
	}
	return d.record(ctx, decided, audit.Event{Kind: audit.KindRuntimeInvoked, Outcome: audit.OutcomeSuccess, Fields: fields})
}

// hookLines lists a spec's OCI hooks as runc will run them, "kind[i] path
// argv... (env NAME...)": each runs on the host, outside the container, so
// the trail says which ones the policy let through.
func hookLines(h *specs.Hooks) []string {
	if h == nil {
		return nil
	}
	var out []string
	for _, k := range []struct {
		kind  string
		hooks []specs.Hook
	}{
		{"prestart", h.Prestart}, //nolint:staticcheck // deprecated by the spec, still what Docker adds
		{"createRuntime", h.CreateRuntime},
		{"createContainer", h.CreateContainer},
		{"startContainer", h.StartContainer},
		{"poststart", h.Poststart},
		{"poststop", h.Poststop},
	} {
		for i, hk := range k.hooks {
			line := fmt.Sprintf("%s[%d] %s", k.kind, i, strings.Join(append([]string{hk.Path}, hk.Args...), " "))
			if len(hk.Env) > 0 {
				// Names only: values may be credentials.
				names := make([]string, 0, len(hk.Env))
				for _, kv := range hk.Env {
					name, _, _ := strings.Cut(kv, "=")
					names = append(names, name)
				}
				line += " (env " + strings.Join(names, " ") + ")"
			}
			out = append(out, line)
		}
	}
	return out
}

// decide evaluates the policy. In enforce mode a denial is recorded (with
// container.denied) and returned. Otherwise (allowed, or denied in
// audit-only mode) the decision's record is returned, for the caller to
// record together with the start it lets through.
func (w *Wrapper) decide(ctx context.Context, d *decision, pol <-chan loaded, in *policy.Input, fields map[string]any) (audit.Event, error) {
	l := <-pol
	if l.err != nil {
		return audit.Event{}, d.refuse(ctx, deny("refusing to start %s: policy %s: %w", d.what(), w.Config.PolicyName(), l.err))
	}
	dec, evalErr := l.eng.Eval(ctx, in)
	outcome := audit.OutcomeAllowed
	if evalErr != nil || !dec.Allowed {
		outcome = audit.OutcomeDenied
	}
	reason := dec.Reason
	if evalErr != nil {
		reason = evalErr.Error()
	}
	if reason == "" && outcome == audit.OutcomeDenied {
		reason = fmt.Sprintf("%d violations", len(dec.Violations))
	}
	var violations []any
	for _, v := range dec.Violations {
		violations = append(violations, v)
	}
	decFields := map[string]any{"enforcement": w.Config.Mode, "signature.verified": in.Signature.Verified, "signature.signers": in.Signature.Signers}
	if in.Signature.Error != "" {
		decFields["signature.error"] = in.Signature.Error
	}
	if len(dec.Exempted) > 0 {
		exempted := make([]string, 0, len(dec.Exempted))
		for _, v := range dec.Exempted {
			exempted = append(exempted, v.String())
		}
		decFields["policy.exempted"] = exempted
	}
	pref := &audit.PolicyRef{Name: l.eng.Name(), Hash: l.eng.Hash(), InputHash: dec.InputHash, Violations: violations}
	decided := audit.Event{Kind: audit.KindPolicyDecision, Outcome: outcome, Reason: reason, Policy: pref, Fields: decFields}
	if outcome == audit.OutcomeAllowed {
		return decided, nil
	}
	var denial error = &policy.DeniedError{Policy: l.eng.Name(), Violations: dec.Violations, Reason: dec.Reason}
	if evalErr != nil {
		denial = deny("policy %s could not decide: %w", l.eng.Name(), evalErr)
	}
	if w.Config.AuditOnly() {
		fields["enforcement"] = "audit-only: started although the policy denied it"
		return decided, nil
	}
	return audit.Event{}, d.refuse(ctx, &Error{Code: ExitDenied, Err: denial}, decided)
}

func (d *decision) what() string {
	if d.cmd == "exec" {
		return "a process in container " + d.ctr.ID
	}
	return "container " + d.ctr.ID
}

// admitExec decides on `exec`: the container's spec with this process in
// place of its own, as `secrun exec` does.
func (w *Wrapper) admitExec(ctx context.Context, inv *Invocation) (err error) {
	e := inv.Exec
	pol := w.loadPolicy(ctx)
	trail, err := w.openTrail()
	if err != nil {
		return deny("refusing to exec in container %s: %w", e.ID, err)
	}
	defer closeTrail(trail, &err)
	rt, err := w.runtime()
	if err != nil {
		return &Error{Code: ExitError, Err: err}
	}
	d := &decision{trail: trail, ctr: audit.Container{ID: e.ID, Runtime: rt}, cmd: "exec", decider: w.Decider}

	st, err := runtimeState(ctx, rt, inv.Global, e.ID)
	if err != nil {
		return d.refuse(ctx, deny("refusing to exec in container %s: %w", e.ID, err))
	}
	d.ctr.PID = st.Pid
	spec, err := decodeSpecFile(filepath.Join(st.Bundle, "config.json"))
	if err != nil {
		return d.refuse(ctx, deny("refusing to exec in container %s: %w", e.ID, err))
	}
	proc, procRaw, err := execProcess(e, spec)
	if err != nil {
		return d.refuse(ctx, deny("refusing to exec in container %s: %w", e.ID, err))
	}
	var changes []string
	if w.Config.Hardening.NoNewPrivileges && !proc.NoNewPrivileges {
		proc.NoNewPrivileges = true
		changes = append(changes, "process.noNewPrivileges=true")
	}
	id := IdentityFromAnnotations(spec.Annotations)
	d.ctr.Name = containerName(spec.Annotations)
	d.img = audit.ImageRef{Name: id.Ref, Digest: id.Digest}
	sig, err := w.signature(ctx, id)
	if err != nil {
		return d.refuse(ctx, deny("refusing to exec in container %s: %w", e.ID, err))
	}
	execSpec := *spec
	execSpec.Process = proc
	req := policy.RequestFromSpec(&execSpec, "exec")
	req.Name, req.Runtime = d.ctr.Name, rt
	in := &policy.Input{Request: req, Spec: &execSpec, Image: id.ImageInfo(), Signature: sig, Host: w.Host()}
	fields := map[string]any{"process.args": proc.Args}
	if len(changes) > 0 {
		fields["process.hardening"] = changes
	}
	decided, err := w.decide(ctx, d, pol, in, fields)
	if err != nil {
		return err
	}
	if len(changes) > 0 {
		if err := applyExecHardening(inv, procRaw, changes); err != nil {
			return d.refuse(ctx, deny("refusing to exec in container %s: %w", e.ID, err), decided)
		}
	}
	return d.record(ctx, decided, audit.Event{Kind: audit.KindContainerExec, Outcome: audit.OutcomeSuccess, Fields: fields})
}

// State is the part of `runc state` that exec needs.
type State struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
	Bundle string `json:"bundle"`
}

// runtimeState asks the real runtime where a container's bundle is.
func runtimeState(ctx context.Context, rt string, g Global, id string) (*State, error) {
	args := []string{}
	if g.Root != "" {
		args = append(args, "--root", g.Root)
	}
	if g.SystemdCgroup {
		args = append(args, "--systemd-cgroup")
	}
	args = append(args, "state", id)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, rt, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("runc state %s: %s: %w", id, flat(stderr.String()), err)
	}
	var st State
	if err := json.Unmarshal(stdout.Bytes(), &st); err != nil {
		return nil, fmt.Errorf("runc state %s: %w", id, err)
	}
	if st.Bundle == "" {
		return nil, fmt.Errorf("runc state %s names no bundle", id)
	}
	return &st, nil
}

func decodeSpecFile(path string) (*specs.Spec, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, err
	}
	s, err := decodeSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// execProcess is the process runc exec will run: the --process file, or
// the container's process with the command-line overrides, built as runc
// builds it. raw is the --process file's content.
func execProcess(e *ExecArgs, spec *specs.Spec) (*specs.Process, []byte, error) {
	if e.Process != "" {
		raw, err := readLimited(e.Process)
		if err != nil {
			return nil, nil, fmt.Errorf("exec process file: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, nil, fmt.Errorf("exec process file %s: %w", e.Process, err)
		}
		return &p, raw, nil
	}
	if spec.Process == nil {
		return nil, nil, errors.New("the container's spec has no process to exec from")
	}
	p := *spec.Process
	p.Args = append([]string(nil), e.Args...)
	if e.Cwd != "" {
		p.Cwd = e.Cwd
	}
	if e.AppArmor != "" {
		p.ApparmorProfile = e.AppArmor
	}
	if e.ProcessLabel != "" {
		p.SelinuxLabel = e.ProcessLabel
	}
	if len(e.Caps) > 0 {
		c := specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		c.Bounding = append(append([]string(nil), c.Bounding...), e.Caps...)
		c.Effective = append(append([]string(nil), c.Effective...), e.Caps...)
		c.Permitted = append(append([]string(nil), c.Permitted...), e.Caps...)
		if c.Inheritable != nil {
			c.Ambient = append(append([]string(nil), c.Ambient...), e.Caps...)
		}
		p.Capabilities = &c
	}
	p.Env = append(append([]string(nil), p.Env...), e.Env...)
	p.Terminal = e.TTY
	if e.NoNewPrivs != nil {
		p.NoNewPrivileges = *e.NoNewPrivs
	}
	if e.User != "" {
		uids, gids, ok := strings.Cut(e.User, ":")
		if ok {
			gid, err := strconv.Atoi(gids)
			if err != nil {
				return nil, nil, fmt.Errorf("exec --user %q: bad gid: %w", e.User, err)
			}
			p.User.GID = uint32(gid)
		}
		uid, err := strconv.Atoi(uids)
		if err != nil {
			return nil, nil, fmt.Errorf("exec --user %q: bad uid: %w", e.User, err)
		}
		p.User.UID = uint32(uid)
	}
	p.User.AdditionalGids = append([]uint32(nil), p.User.AdditionalGids...)
	for _, g := range e.AdditionalGids {
		if g < 0 || g > 1<<32-1 {
			return nil, nil, fmt.Errorf("exec --additional-gids %d is out of range", g)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	return &p, nil, nil
}

// applyExecHardening makes runc exec run the hardened process: the
// --process file is rewritten (patched, as config.json is), or, when the
// process comes from flags, --no-new-privs is added to them.
func applyExecHardening(inv *Invocation, raw []byte, changes []string) error {
	e := inv.Exec
	if e.Process == "" {
		// Flags: insert --no-new-privs right after "exec". runc exec does
		// not reorder, so it must come before the container id.
		i := inv.CommandIndex
		if i < 0 || i >= len(inv.Args) || inv.Args[i] != "exec" {
			return errors.New("cannot find the exec command in the runc arguments")
		}
		inv.Args = append(append(append([]string(nil), inv.Args[:i+1]...), "--no-new-privs"), inv.Args[i+1:]...)
		return nil
	}
	top, err := rawObject(raw)
	if err != nil {
		return fmt.Errorf("exec process file %s: %w", e.Process, err)
	}
	setKey(top, "noNewPrivileges", json.RawMessage("true"))
	data, err := json.Marshal(top)
	if err != nil {
		return err
	}
	st, err := os.Stat(e.Process)
	if err != nil {
		return err
	}
	return writeAtomic(e.Process, data, st.Mode().Perm())
}

// containerName is the engine's name for the container, when it says.
func containerName(a map[string]string) string {
	for _, k := range []string{"io.kubernetes.cri.container-name", "io.kubernetes.cri-o.ContainerName", "io.podman.annotations.name", "nerdctl/name"} {
		if v := a[k]; v != "" {
			return v
		}
	}
	return ""
}
