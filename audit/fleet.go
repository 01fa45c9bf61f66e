package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/secrun/secrun/policy"
)

// Fleet audit: every running container on the host, whoever started it,
// judged by the same policy input document that gates `secrun run`, by the
// cis-docker library, and by comparing its declared config with what the
// kernel enforces on its processes.

// Finding is one problem with one container.
type Finding struct {
	// Control is the control id ("privileged", "drift-seccomp").
	Control string `json:"control"`
	// Source is who found it: the policy's name (the active policy, or
	// "cis-docker"), SourceDrift or SourceAudit.
	Source   string `json:"source"`
	Severity string `json:"severity"`
	Message  string `json:"message"`
	Field    string `json:"field,omitempty"`
	Fix      string `json:"fix,omitempty"`
	// Details lists every violation of the control on this container when
	// there is more than one (a capability or a device each); Message,
	// Field and Fix are the first of them.
	Details []Detail `json:"details,omitempty"`
}

// Detail is one violation within a finding.
type Detail struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	Fix     string `json:"fix,omitempty"`
}

// groupFindings merges the violations of one control from one source into
// one finding, so that a container is counted once per failing control
// however many capabilities or devices break it.
func groupFindings(fs []Finding) []Finding {
	sortFindings(fs)
	var out []Finding
	for _, f := range fs {
		if n := len(out); n > 0 && out[n-1].Source == f.Source && out[n-1].Control == f.Control && out[n-1].Severity == f.Severity {
			last := &out[n-1]
			if len(last.Details) == 0 {
				last.Details = []Detail{{Message: last.Message, Field: last.Field, Fix: last.Fix}}
			}
			last.Details = append(last.Details, f.Details...)
			if len(f.Details) == 0 {
				last.Details = append(last.Details, Detail{Message: f.Message, Field: f.Field, Fix: f.Fix})
			}
			continue
		}
		out = append(out, f)
	}
	if out == nil {
		out = []Finding{}
	}
	return out
}

// String is "high cis-docker/host-pid: msg (field); fix".
func (f Finding) String() string {
	s := fmt.Sprintf("%s %s/%s: %s", f.Severity, f.Source, f.Control, f.Message)
	if f.Field != "" {
		s += " (" + f.Field + ")"
	}
	if f.Fix != "" {
		s += "; " + f.Fix
	}
	return strings.Join(strings.Fields(s), " ")
}

// ContainerReport is one audited container.
type ContainerReport struct {
	FleetContainer
	// Input is the policy input document the container was judged on.
	Input *policy.Input `json:"input,omitempty"`
	// Effective is the kernel's view; nil when it could not be read.
	Effective *EffectiveState `json:"effective,omitempty"`
	Findings  []Finding       `json:"findings"`
	// Exempted are policy violations that matched an exemption.
	Exempted []Finding `json:"exempted,omitempty"`
}

// ControlInfo describes a control a finding can name, for SARIF rules.
type ControlInfo struct {
	Source string `json:"source"`
	policy.Control
}

// FleetReport is the result of one fleet audit.
type FleetReport struct {
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
	Host     string        `json:"host,omitempty"`
	// Policy and CIS name the policies evaluated, with their hashes.
	Policy     string `json:"policy,omitempty"`
	PolicyHash string `json:"policy_hash,omitempty"`
	CIS        string `json:"cis,omitempty"`
	CISHash    string `json:"cis_hash,omitempty"`
	// FailOn is the severity at or above which a finding fails the audit.
	FailOn   string          `json:"fail_on"`
	HostInfo policy.HostInfo `json:"host_info"`
	// HostNamespaces is the /proc entry whose namespaces counted as the
	// host's (/proc/1, or /proc/self when pid 1 cannot be inspected).
	HostNamespaces string            `json:"host_namespaces"`
	Containers     []ContainerReport `json:"containers"`
	Controls       []ControlInfo     `json:"controls"`
	// Sources lists every place looked at and what it held.
	Sources []DiscoverySource `json:"sources"`
	// Errors are places that could not be read; containers there may be
	// missing from the report.
	Errors []string `json:"errors,omitempty"`
}

// FleetOptions configure AuditFleet.
type FleetOptions struct {
	Discover DiscoverOptions
	// Host is the host document policies see; nil detects it.
	Host *policy.HostInfo
	// FailOn is low, medium, high (the default), critical, or none.
	FailOn string
	// HostName names the host in the report; "" leaves it out.
	HostName string
	// Signature, when set, supplies a signature verdict for a container
	// whose image is known; ok false keeps "not checked by audit".
	Signature func(ctx context.Context, c FleetContainer) (sig policy.SignatureInfo, ok bool)
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// DefaultFailOn is the severity that fails an audit when FailOn is empty:
// high, because every control that lets a container reach the host
// (privileged, runtime sockets, host namespaces, capabilities, seccomp off)
// is high or critical, while limits and hygiene are medium or low.
const DefaultFailOn = "high"

// FailOnNone never fails an audit on findings.
const FailOnNone = "none"

// CheckFailOn validates a --fail-on value.
func CheckFailOn(s string) error {
	if s == FailOnNone || slices.Contains(policy.Severities, s) {
		return nil
	}
	return fmt.Errorf("--fail-on %q: want one of %s, %s", s, strings.Join(policy.Severities, ", "), FailOnNone)
}

// AuditFleet discovers every running container, reads its effective state,
// and evaluates eng (the active policy; nil skips it) and cis (the
// cis-docker library; nil skips it) over each container's input document.
// Both engines are prepared once by the caller; evaluation runs in parallel.
// The error is non-nil only when no audit could take place; places that
// could not be read are listed in the report's Errors.
func AuditFleet(ctx context.Context, eng, cis *policy.Engine, opts FleetOptions) (FleetReport, error) {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	failOn := opts.FailOn
	if failOn == "" {
		failOn = DefaultFailOn
	}
	if err := CheckFailOn(failOn); err != nil {
		return FleetReport{}, err
	}
	rep := FleetReport{Started: now().UTC(), Host: opts.HostName, FailOn: failOn, Containers: []ContainerReport{}}
	if eng != nil {
		rep.Policy, rep.PolicyHash = eng.Name(), eng.Hash()
	}
	if cis != nil && (eng == nil || cis.Hash() != eng.Hash()) {
		rep.CIS, rep.CISHash = cis.Name(), cis.Hash()
	} else {
		cis = nil
	}
	host := opts.Host
	if host == nil {
		h, err := detectHost()
		if err != nil {
			return rep, err
		}
		host = &h
	}
	rep.HostInfo = *host
	pr, err := newProcReader("/proc")
	if err != nil {
		return rep, err
	}
	rep.HostNamespaces = pr.hostNSFrom
	cs, srcs, err := discover(ctx, opts.Discover, pr.hostNS["mount"])
	rep.Sources = srcs
	if err != nil {
		return rep, err
	}
	for _, s := range srcs {
		if s.Status != "ok" && s.Status != "absent" {
			rep.Errors = append(rep.Errors, fmt.Sprintf("%s %s: %s", s.Kind, s.Path, s.Status))
		}
	}
	reports := make([]ContainerReport, len(cs))
	gone := make([]bool, len(cs))
	errs := make([]error, len(cs))
	fleetParallel(len(cs), func(i int) {
		if ctx.Err() != nil {
			return
		}
		reports[i], gone[i], errs[i] = auditOne(ctx, pr, eng, cis, *host, cs[i], opts.Signature)
	})
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("fleet audit: %w", err)
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	for i, r := range reports {
		if !gone[i] {
			rep.Containers = append(rep.Containers, r)
		}
	}
	rep.Controls = controlsOf(eng, cis)
	rep.Duration = now().Sub(rep.Started)
	return rep, nil
}

// auditOne judges one container. exited is true when its init process went
// away while it was read: it is no longer running and is left out.
func auditOne(ctx context.Context, pr *procReader, eng, cis *policy.Engine, host policy.HostInfo, c FleetContainer,
	sigFn func(context.Context, FleetContainer) (policy.SignatureInfo, bool)) (r ContainerReport, exited bool, err error) {
	if sigFn != nil && c.Image.Identity {
		if sig, ok := sigFn(ctx, c); ok {
			c.Signature = sig
		}
	}
	r = ContainerReport{FleetContainer: c, Findings: []Finding{}}
	incomplete := slices.Clone(c.Problems)
	eff, err := pr.container(c.Pid)
	switch {
	case errors.Is(err, ErrProcessGone):
		return r, true, nil
	case err != nil:
		incomplete = append(incomplete, "kernel state: "+fleetErrText(err))
	default:
		r.Effective = &eff
	}
	if c.Spec != nil {
		req := policy.RequestFromSpec(c.Spec, "audit")
		req.Name = c.Name
		in := &policy.Input{Request: req, Spec: c.Spec, Image: c.Image, Signature: c.Signature, Host: host}
		r.Input = in
		for _, e := range []*policy.Engine{eng, cis} {
			if e == nil {
				continue
			}
			d, err := e.Eval(ctx, in)
			if err != nil {
				if ctx.Err() != nil {
					return r, false, fmt.Errorf("fleet audit: %w", ctx.Err())
				}
				incomplete = append(incomplete, fmt.Sprintf("policy %s: %s", e.Name(), fleetErrText(err)))
				continue
			}
			r.Findings = append(r.Findings, violationFindings(SourceName(e), d.Violations)...)
			r.Exempted = append(r.Exempted, violationFindings(SourceName(e), d.Exempted)...)
			if d.Reason != "" {
				r.Findings = append(r.Findings, Finding{Control: "policy-error", Source: SourceAudit,
					Severity: controlSeverity(AuditControls, "policy-error"),
					Message:  fmt.Sprintf("policy %s: %s", e.Name(), d.Reason), Fix: "fix the policy so it decides on every input"})
			}
		}
		if cis != nil {
			r.Findings = append(r.Findings, portFindings(cis, c)...)
			if r.Effective != nil {
				r.Findings = append(r.Findings, sshdFindings(cis, *r.Effective)...)
			}
		}
		if r.Effective != nil {
			r.Findings = append(r.Findings, Drift(c.Spec, *r.Effective)...)
		}
	}
	if len(incomplete) > 0 {
		r.Findings = append(r.Findings, Finding{Control: "audit-incomplete", Source: SourceAudit,
			Severity: controlSeverity(AuditControls, "audit-incomplete"),
			Message:  "the container could not be fully audited: " + strings.Join(incomplete, "; "),
			Fix:      "make the container's state readable to secrun audit (run it as root, point it at the engine's state directories)"})
	}
	r.Findings = groupFindings(r.Findings)
	if len(r.Exempted) > 0 {
		r.Exempted = groupFindings(r.Exempted)
	}
	return r, false, nil
}

// SourceName is how findings name a policy: its built-in name, or the base
// name of its file or directory without ".rego".
func SourceName(e *policy.Engine) string {
	n := e.Name()
	if strings.ContainsRune(n, filepath.Separator) {
		n = strings.TrimSuffix(filepath.Base(n), ".rego")
	}
	return n
}

func violationFindings(source string, vs []policy.Violation) []Finding {
	out := make([]Finding, 0, len(vs))
	for _, v := range vs {
		sev := v.Severity
		if !slices.Contains(policy.Severities, sev) {
			sev = "high" // a policy that does not say how bad is taken seriously
		}
		out = append(out, Finding{Control: v.ID, Source: source, Severity: sev, Message: v.Msg, Field: v.Field, Fix: v.Fix})
	}
	return out
}

// portFindings is CIS 5.7 (privileged host ports) for engines that report
// published ports outside the OCI spec (Docker's API), under the library's
// own control.
func portFindings(cis *policy.Engine, c FleetContainer) []Finding {
	var out []Finding
	for _, ctl := range cis.Controls() {
		if ctl.ID != "privileged-ports" {
			continue
		}
		for _, p := range c.Ports {
			if p > 0 && p < 1024 {
				out = append(out, Finding{Control: ctl.ID, Source: SourceName(cis), Severity: ctl.Severity,
					Message: fmt.Sprintf("host port %d is a privileged port", p),
					Field:   fmt.Sprintf("%s ports: %d", c.Engine, p),
					Fix:     "publish on a host port of 1024 or above"})
			}
		}
	}
	return out
}

// sshdFindings is CIS 5.6 (no sshd in containers) on the processes that
// run, not only the command the spec starts: a shell script can start sshd.
func sshdFindings(cis *policy.Engine, e EffectiveState) []Finding {
	var out []Finding
	for _, ctl := range cis.Controls() {
		if ctl.ID != "sshd" {
			continue
		}
		for _, p := range e.Processes {
			if p.Name == "sshd" {
				out = append(out, Finding{Control: ctl.ID, Source: SourceName(cis), Severity: ctl.Severity,
					Message: fmt.Sprintf("process %d runs sshd", p.Pid),
					Field:   fmt.Sprintf("/proc/%d/status Name=sshd", p.Pid),
					Fix:     "do not run sshd in containers; use secrun exec"})
			}
		}
	}
	return out
}

func controlsOf(eng, cis *policy.Engine) []ControlInfo {
	var out []ControlInfo
	for _, e := range []*policy.Engine{eng, cis} {
		if e == nil {
			continue
		}
		for _, c := range e.Controls() {
			out = append(out, ControlInfo{Source: SourceName(e), Control: c})
		}
	}
	for _, c := range DriftControls {
		out = append(out, ControlInfo{Source: SourceDrift, Control: c})
	}
	for _, c := range AuditControls {
		out = append(out, ControlInfo{Source: SourceAudit, Control: c})
	}
	return out
}

// Counts are findings per severity.
type Counts struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
}

func (c *Counts) add(sev string) {
	switch sev {
	case "critical":
		c.Critical++
	case "medium":
		c.Medium++
	case "low":
		c.Low++
	default:
		c.High++
	}
}

// Total is the number of findings.
func (c Counts) Total() int { return c.Critical + c.High + c.Medium + c.Low }

// Counts of one container's findings.
func (r ContainerReport) Counts() Counts {
	var c Counts
	for _, f := range r.Findings {
		c.add(f.Severity)
	}
	return c
}

// Counts of every finding in the report.
func (r FleetReport) Counts() Counts {
	var c Counts
	for _, cr := range r.Containers {
		for _, f := range cr.Findings {
			c.add(f.Severity)
		}
	}
	return c
}

// Failing counts the containers with a finding at or above the report's
// FailOn severity.
func (r FleetReport) Failing() int {
	if r.FailOn == FailOnNone {
		return 0
	}
	min := SeverityRank(r.FailOn)
	n := 0
	for _, cr := range r.Containers {
		if slices.ContainsFunc(cr.Findings, func(f Finding) bool { return SeverityRank(f.Severity) >= min }) {
			n++
		}
	}
	return n
}

// Failed reports whether the audit fails: a finding at or above FailOn.
func (r FleetReport) Failed() bool { return r.Failing() > 0 }

// Summary is the one-line result.
func (r FleetReport) Summary() string {
	c := r.Counts()
	engines := map[string]int{}
	for _, cr := range r.Containers {
		engines[cr.Engine]++
	}
	var es []string
	for _, e := range fleetSortedKeys(engines) {
		es = append(es, fmt.Sprintf("%s %d", e, engines[e]))
	}
	s := "audited " + fleetPlural(len(r.Containers), "container")
	if len(es) > 0 {
		s += " (" + strings.Join(es, ", ") + ")"
	}
	s += fmt.Sprintf(" in %s: %d critical, %d high, %d medium, %d low findings", r.Duration.Round(time.Millisecond), c.Critical, c.High, c.Medium, c.Low)
	if r.FailOn != FailOnNone {
		s += fmt.Sprintf("; %s at or above %s", fleetPlural(r.Failing(), "container"), r.FailOn)
	}
	if len(r.Errors) > 0 {
		s += fmt.Sprintf("; %s could not be read", fleetPlural(len(r.Errors), "place"))
	}
	return s
}

func fleetPlural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func fleetSortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Event is the audit trail record of this run ("audit.run"): the counts,
// not the findings, which belong in the report.
func (r FleetReport) Event() Event {
	c := r.Counts()
	outcome := OutcomeSuccess
	if r.Failed() || len(r.Errors) > 0 {
		outcome = OutcomeFailure
	}
	fields := map[string]any{
		"fleet.containers":        len(r.Containers),
		"fleet.failing":           r.Failing(),
		"fleet.fail_on":           r.FailOn,
		"fleet.findings.critical": c.Critical,
		"fleet.findings.high":     c.High,
		"fleet.findings.medium":   c.Medium,
		"fleet.findings.low":      c.Low,
		"fleet.errors":            len(r.Errors),
		"fleet.duration_ms":       r.Duration.Milliseconds(),
	}
	if r.CIS != "" {
		fields["fleet.cis"] = r.CIS
	}
	engines := map[string]int{}
	for _, cr := range r.Containers {
		engines[cr.Engine]++
	}
	for e, n := range engines {
		fields["fleet.engine."+e] = n
	}
	e := Event{Kind: KindAuditRun, Outcome: outcome, Reason: r.Summary(), Fields: fields}
	if r.Policy != "" {
		e.Policy = &PolicyRef{Name: r.Policy, Hash: r.PolicyHash}
	}
	return e
}
