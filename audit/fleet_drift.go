package audit

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
)

// SourceDrift and SourceAudit name the findings the audit makes itself:
// drift between the declared config and what the kernel enforces, and
// containers that could not be audited.
const (
	SourceDrift = "drift"
	SourceAudit = "audit"
)

// Controls of drift between the declared config and the kernel's state.
// A drift finding means the spec promises something that is not true of
// the running processes: the runtime ignored it, something changed the
// process afterwards, or a process was added (exec) with weaker settings.
var DriftControls = []policy.Control{
	{ID: "drift-capabilities", Severity: "high", Description: "No process holds a capability (effective or bounding set) beyond those the spec declares."},
	{ID: "drift-memory-limit", Severity: "medium", Description: "The cgroup enforces a memory limit no looser than the spec declares."},
	{ID: "drift-mount-propagation", Severity: "medium", Description: "The root mount does not propagate mounts (shared) unless the spec declares shared propagation."},
	{ID: "drift-namespaces", Severity: "high", Description: "No process shares a namespace with the host that the spec declares private."},
	{ID: "drift-no-new-privileges", Severity: "high", Description: "Every process has no_new_privs set when the spec declares noNewPrivileges."},
	{ID: "drift-pids-limit", Severity: "medium", Description: "The cgroup enforces a pids limit no looser than the spec declares."},
	{ID: "drift-readonly-rootfs", Severity: "medium", Description: "The root filesystem every process sees is read-only when the spec declares it read-only."},
	{ID: "drift-seccomp", Severity: "high", Description: "Every process runs under a seccomp filter when the spec declares one."},
	{ID: "drift-user-namespace", Severity: "high", Description: "Every process's uid and gid maps are the ones the spec declares."},
}

// AuditControls are the audit's own checks.
var AuditControls = []policy.Control{
	{ID: "audit-incomplete", Severity: "high", Description: "The container's declared config and kernel state could be read; a container that cannot be audited fails the audit."},
	{ID: "policy-error", Severity: "high", Description: "The policy produced a decision for the container (an evaluation error or an undefined result fails the audit)."},
}

func controlSeverity(cs []policy.Control, id string) string {
	for _, c := range cs {
		if c.ID == id {
			return c.Severity
		}
	}
	return "high"
}

// Drift compares the declared spec with the kernel's state of the
// container's processes and returns one finding per drifting control,
// naming the processes concerned.
func Drift(s *specs.Spec, e EffectiveState) []Finding {
	if s == nil {
		return nil
	}
	var out []Finding
	add := func(id, msg, field, fix string) {
		out = append(out, Finding{Control: id, Source: SourceDrift, Severity: controlSeverity(DriftControls, id), Message: msg, Field: field, Fix: fix})
	}
	var declAll, declBnd Caps
	nnp := false
	if p := s.Process; p != nil {
		nnp = p.NoNewPrivileges
		if c := p.Capabilities; c != nil {
			declAll = capsOf(c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient)
			declBnd = capsOf(c.Bounding)
		}
	}
	var (
		extraEff, extraBnd         Caps
		capPids, nnpPids, scPids   []string
		roPids, propPids, nsPids   []string
		userPids                   []string
		nsShared                   []string
		declaredNS                 []string
		uidDecl, gidDecl           []specs.LinuxIDMapping
		declaresUser, declaredSecc bool
	)
	if l := s.Linux; l != nil {
		declaredSecc = l.Seccomp != nil
		for _, n := range l.Namespaces {
			if n.Path == "" {
				declaredNS = append(declaredNS, string(n.Type))
				if n.Type == specs.UserNamespace {
					declaresUser = true
				}
			}
		}
		uidDecl, gidDecl = l.UIDMappings, l.GIDMappings
	}
	roDecl := s.Root != nil && s.Root.Readonly
	sharedDecl := s.Linux != nil && (s.Linux.RootfsPropagation == "shared" || s.Linux.RootfsPropagation == "rshared")
	for _, p := range e.Processes {
		who := fmt.Sprintf("%d (%s)", p.Pid, p.Name)
		if x, y := p.CapEff&^declAll, p.CapBnd&^declBnd; x != 0 || y != 0 {
			extraEff, extraBnd = extraEff|x, extraBnd|y
			capPids = append(capPids, who)
		}
		if nnp && !p.NoNewPrivs {
			nnpPids = append(nnpPids, who)
		}
		if declaredSecc && p.Seccomp != 2 {
			scPids = append(scPids, who+" mode "+strconv.Itoa(p.Seccomp))
		}
		if roDecl && !p.RootReadOnly {
			roPids = append(roPids, who)
		}
		if !sharedDecl && p.RootPropagation == "shared" {
			propPids = append(propPids, who)
		}
		var shared []string
		for _, t := range declaredNS {
			if slices.Contains(p.HostNamespaces, t) {
				shared = append(shared, t)
			}
		}
		if len(shared) > 0 {
			nsPids = append(nsPids, who)
			for _, t := range shared {
				if !slices.Contains(nsShared, t) {
					nsShared = append(nsShared, t)
				}
			}
		}
		if declaresUser && (len(uidDecl) > 0 || len(gidDecl) > 0) &&
			(!sameIDMap(uidDecl, p.UIDMap) || !sameIDMap(gidDecl, p.GIDMap)) {
			userPids = append(userPids, who+" uid_map "+idMapText(p.UIDMap)+" gid_map "+idMapText(p.GIDMap))
		}
	}
	if len(capPids) > 0 {
		var parts []string
		if extraEff != 0 {
			parts = append(parts, "effective "+capsText(extraEff))
		}
		if extraBnd != 0 {
			parts = append(parts, "bounding "+capsText(extraBnd))
		}
		add("drift-capabilities",
			fmt.Sprintf("processes hold capabilities the spec does not declare (%s): %s", strings.Join(parts, "; "), procListText(capPids)),
			"/proc/PID/status CapEff,CapBnd vs spec.process.capabilities",
			"find what raised the capabilities (exec --privileged, a runtime ignoring the spec) and recreate the container")
	}
	if len(nnpPids) > 0 {
		add("drift-no-new-privileges",
			"the spec declares noNewPrivileges but no_new_privs is not set on: "+procListText(nnpPids),
			"/proc/PID/status NoNewPrivs=0 vs spec.process.noNewPrivileges=true",
			"recreate the container; exec into it only with no-new-privileges")
	}
	if len(scPids) > 0 {
		add("drift-seccomp",
			"the spec declares a seccomp filter but these processes run without one: "+procListText(scPids),
			"/proc/PID/status Seccomp vs spec.linux.seccomp",
			"recreate the container; exec into it only with its seccomp profile")
	}
	if len(roPids) > 0 {
		add("drift-readonly-rootfs",
			"the spec declares a read-only root filesystem but it is writable for: "+procListText(roPids),
			"/proc/PID/mountinfo / rw vs spec.root.readonly=true",
			"recreate the container; a remount of / means something inside held CAP_SYS_ADMIN")
	}
	if len(propPids) > 0 {
		add("drift-mount-propagation",
			"the root mount is shared with the host's mount peer group, which the spec does not declare: "+procListText(propPids),
			"/proc/PID/mountinfo / shared vs spec.linux.rootfsPropagation",
			"recreate the container with private or slave root propagation")
	}
	if len(nsPids) > 0 {
		slices.Sort(nsShared)
		add("drift-namespaces",
			fmt.Sprintf("the spec declares private %s namespaces but these processes share the host's: %s", strings.Join(nsShared, ", "), procListText(nsPids)),
			"/proc/PID/ns/* vs /proc/1/ns/* and spec.linux.namespaces",
			"find who moved the processes into the host's namespaces (setns, exec with host namespaces) and recreate the container")
	}
	if len(userPids) > 0 {
		add("drift-user-namespace",
			fmt.Sprintf("the spec declares uid_map %s gid_map %s but: %s", idMapText(uidDecl), idMapText(gidDecl), procListText(userPids)),
			"/proc/PID/uid_map,gid_map vs spec.linux.uidMappings,gidMappings",
			"recreate the container with the declared user namespace")
	}
	if res := specResources(s); res != nil {
		if res.Memory != nil && res.Memory.Limit != nil && *res.Memory.Limit > 0 {
			if f, bad := limitDrift(*res.Memory.Limit, e.MemoryLimit, "memory", "bytes"); bad {
				add("drift-memory-limit", f, "cgroup memory.max/memory.limit_in_bytes vs spec.linux.resources.memory.limit",
					"recreate the container, or restore the limit on its cgroup")
			}
		}
		if res.Pids != nil && res.Pids.Limit != nil && *res.Pids.Limit > 0 {
			if f, bad := limitDrift(*res.Pids.Limit, e.PidsLimit, "pids", "pids"); bad {
				add("drift-pids-limit", f, "cgroup pids.max vs spec.linux.resources.pids.limit",
					"recreate the container, or restore the limit on its cgroup")
			}
		}
	}
	sortFindings(out)
	return out
}

func specResources(s *specs.Spec) *specs.LinuxResources {
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Resources
}

// limitDrift: an unreadable limit is not drift (the report shows it as
// unknown); a missing or looser one is.
func limitDrift(declared int64, eff *int64, what, unit string) (string, bool) {
	switch {
	case eff == nil:
		return "", false
	case *eff == Unlimited:
		return fmt.Sprintf("the spec declares a %s limit of %d %s but the container's cgroup has none", what, declared, unit), true
	case *eff > declared:
		return fmt.Sprintf("the spec declares a %s limit of %d %s but the container's cgroup allows %d", what, declared, unit, *eff), true
	}
	return "", false
}

func sameIDMap(a, b []specs.LinuxIDMapping) bool {
	key := func(m specs.LinuxIDMapping) string {
		return fmt.Sprintf("%d:%d:%d", m.ContainerID, m.HostID, m.Size)
	}
	x, y := make([]string, len(a)), make([]string, len(b))
	for i, m := range a {
		x[i] = key(m)
	}
	for i, m := range b {
		y[i] = key(m)
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

func idMapText(m []specs.LinuxIDMapping) string {
	if len(m) == 0 {
		return "[]"
	}
	parts := make([]string, len(m))
	for i, x := range m {
		parts[i] = fmt.Sprintf("%d:%d:%d", x.ContainerID, x.HostID, x.Size)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// capsText names at most eight capabilities, then how many more.
func capsText(c Caps) string {
	const max = 8
	n := c.Names()
	if len(n) <= max {
		return strings.Join(n, ",")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(n[:max], ","), len(n)-max)
}

// listText names at most five processes, then how many more.
func procListText(xs []string) string {
	const max = 5
	if len(xs) <= max {
		return strings.Join(xs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(xs[:max], ", "), len(xs)-max)
}

// sortFindings orders the most severe first, then by source, control,
// field and message.
func sortFindings(fs []Finding) {
	slices.SortFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(SeverityRank(b.Severity), SeverityRank(a.Severity)),
			cmp.Compare(a.Source, b.Source),
			cmp.Compare(a.Control, b.Control),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

// SeverityRank orders policy.Severities: low 0 ... critical 3; an unknown
// severity ranks as high, so that it is never ignored.
func SeverityRank(s string) int {
	if i := slices.Index(policy.Severities, s); i >= 0 {
		return i
	}
	return slices.Index(policy.Severities, "high")
}
