package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Profile is a seccomp profile in Docker's JSON format, a superset of the
// OCI runtime-spec seccomp section: rules may carry a comment and be
// included or excluded by capability, architecture and kernel version, and
// archMap lists sub-architectures per native architecture.
//
// JSON field names and omitempty behaviour follow Docker's format so a
// profile written by secrun loads in Docker and podman. Fields this version
// does not know are kept in Extra and written back unchanged.
type Profile struct {
	DefaultAction    specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet  *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures    []specs.Arch             `json:"architectures,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	ArchMap          []Architecture           `json:"archMap,omitempty"`
	Syscalls         []Syscall                `json:"syscalls"`

	// Extra holds top-level fields unknown to this version, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Architecture is one archMap entry: a native architecture and the
// sub-architectures a process on it may also use.
type Architecture struct {
	Arch      specs.Arch   `json:"architecture"`
	SubArches []specs.Arch `json:"subArchitectures"`
}

// Syscall is one rule: the syscalls it names, the action, optional argument
// conditions, and conditions on the container and host (Includes/Excludes).
type Syscall struct {
	Names    []string                 `json:"names"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	// Name is the single-syscall spelling of old Docker profiles; use Names.
	Name     string  `json:"name,omitempty"`
	Comment  string  `json:"comment,omitempty"`
	Includes *Filter `json:"includes,omitempty"`
	Excludes *Filter `json:"excludes,omitempty"`

	// Extra holds rule fields unknown to this version, verbatim.
	Extra map[string]json.RawMessage `json:"-"`
}

// Filter is a condition on the container and host. In Includes every listed
// capability must be granted, the host architecture must be listed, and the
// kernel must be at least MinKernel. In Excludes any one match drops the rule.
type Filter struct {
	Caps      []string       `json:"caps,omitempty"`
	Arches    []string       `json:"arches,omitempty"`
	MinKernel *KernelVersion `json:"minKernel,omitempty"`
}

// KernelVersion is a "<kernel>.<major>" version such as "5.8".
type KernelVersion struct {
	Kernel uint64
	Major  uint64
}

func (k KernelVersion) String() string {
	if k.Kernel == 0 && k.Major == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%d", k.Kernel, k.Major)
}

// Less reports whether k is an older kernel than o.
func (k KernelVersion) Less(o KernelVersion) bool {
	if k.Kernel != o.Kernel {
		return k.Kernel < o.Kernel
	}
	return k.Major < o.Major
}

// MarshalJSON writes the version as a "<kernel>.<major>" string.
func (k KernelVersion) MarshalJSON() ([]byte, error) {
	return json.Marshal(k.String())
}

// UnmarshalJSON reads a "<kernel>.<major>" string; "" is the zero version.
func (k *KernelVersion) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("minKernel %s: want a string \"<kernel>.<major>\": %w", b, err)
	}
	v, err := ParseKernelVersion(s)
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// ParseKernelVersion parses "<kernel>.<major>" ("5.8"). Like Docker it
// rejects "0.0" and anything but two dot-separated numbers; "" is the zero
// version.
func ParseKernelVersion(s string) (KernelVersion, error) {
	if s == "" {
		return KernelVersion{}, nil
	}
	parts := strings.Split(s, ".")
	if len(parts) != 2 {
		return KernelVersion{}, fmt.Errorf("minKernel %q: want \"<kernel>.<major>\" such as \"5.8\"", s)
	}
	kern, err1 := strconv.ParseUint(parts[0], 10, 8)
	major, err2 := strconv.ParseUint(parts[1], 10, 8)
	if err1 != nil || err2 != nil {
		return KernelVersion{}, fmt.Errorf("minKernel %q: want \"<kernel>.<major>\" such as \"5.8\"", s)
	}
	if kern == 0 && major == 0 {
		return KernelVersion{}, fmt.Errorf("minKernel %q: version cannot be 0.0", s)
	}
	return KernelVersion{Kernel: kern, Major: major}, nil
}

// ProfileError is a profile that cannot be used. It names the profile
// (Source, empty when parsed from memory) and the offending entry (Field,
// such as "syscalls[3]").
type ProfileError struct {
	Source string
	Field  string
	Err    error
}

func (e *ProfileError) Error() string {
	var b strings.Builder
	b.WriteString("seccomp profile")
	if e.Source != "" {
		b.WriteString(" ")
		b.WriteString(e.Source)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ProfileError) Unwrap() error { return e.Err }

// maxProfileSize bounds what LoadFile reads; Docker's default profile is
// about 20 KiB.
const maxProfileSize = 8 << 20

// Parse decodes a Docker-format (or plain OCI) seccomp profile and
// validates it.
func Parse(data []byte) (*Profile, error) {
	var p Profile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, &ProfileError{Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadFile reads and validates a profile file; errors name the file.
func LoadFile(path string) (*Profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxProfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	if len(data) > maxProfileSize {
		return nil, fmt.Errorf("seccomp profile %s: larger than %d bytes", path, maxProfileSize)
	}
	p, err := Parse(data)
	if err != nil {
		var pe *ProfileError
		if errors.As(err, &pe) {
			pe.Source = path
			return nil, pe
		}
		return nil, fmt.Errorf("seccomp profile %s: %w", path, err)
	}
	return p, nil
}

// Marshal writes the profile as indented Docker-format JSON.
func (p *Profile) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Clone returns a deep copy.
func (p *Profile) Clone() *Profile {
	if p == nil {
		return nil
	}
	c := *p
	c.DefaultErrnoRet = cloneUint(p.DefaultErrnoRet)
	c.Architectures = slices.Clone(p.Architectures)
	c.Flags = slices.Clone(p.Flags)
	c.Extra = cloneExtra(p.Extra)
	if p.ArchMap != nil {
		c.ArchMap = make([]Architecture, len(p.ArchMap))
		for i, m := range p.ArchMap {
			c.ArchMap[i] = Architecture{Arch: m.Arch, SubArches: slices.Clone(m.SubArches)}
		}
	}
	if p.Syscalls != nil {
		c.Syscalls = make([]Syscall, len(p.Syscalls))
		for i, s := range p.Syscalls {
			s.Names = slices.Clone(s.Names)
			s.ErrnoRet = cloneUint(s.ErrnoRet)
			s.Args = slices.Clone(s.Args)
			s.Includes = s.Includes.clone()
			s.Excludes = s.Excludes.clone()
			s.Extra = cloneExtra(s.Extra)
			c.Syscalls[i] = s
		}
	}
	return &c
}

func (f *Filter) clone() *Filter {
	if f == nil {
		return nil
	}
	c := Filter{Caps: slices.Clone(f.Caps), Arches: slices.Clone(f.Arches)}
	if f.MinKernel != nil {
		k := *f.MinKernel
		c.MinKernel = &k
	}
	return &c
}

func cloneExtra(m map[string]json.RawMessage) map[string]json.RawMessage {
	if m == nil {
		return nil
	}
	c := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return c
}

var profileFields = []string{"defaultAction", "defaultErrnoRet", "architectures", "flags",
	"listenerPath", "listenerMetadata", "archMap", "syscalls"}

var syscallFields = []string{"names", "action", "errnoRet", "args", "name", "comment",
	"includes", "excludes"}

type profileAlias Profile
type syscallAlias Syscall

// UnmarshalJSON decodes the known fields and keeps the rest in Extra.
func (p *Profile) UnmarshalJSON(b []byte) error {
	var a profileAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	extra, err := unknownFields(b, profileFields)
	if err != nil {
		return err
	}
	a.Extra = extra
	*p = Profile(a)
	return nil
}

// MarshalJSON encodes the known fields in Docker's order, then Extra.
func (p Profile) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(profileAlias(p))
	if err != nil {
		return nil, err
	}
	return appendFields(b, p.Extra, profileFields)
}

// UnmarshalJSON decodes the known fields and keeps the rest in Extra.
func (s *Syscall) UnmarshalJSON(b []byte) error {
	var a syscallAlias
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	extra, err := unknownFields(b, syscallFields)
	if err != nil {
		return err
	}
	a.Extra = extra
	*s = Syscall(a)
	return nil
}

// MarshalJSON encodes the known fields in Docker's order, then Extra.
func (s Syscall) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(syscallAlias(s))
	if err != nil {
		return nil, err
	}
	return appendFields(b, s.Extra, syscallFields)
}

// unknownFields returns the members of the JSON object b whose names match
// none of known. encoding/json matches names case-insensitively, so this
// does too: a member it decoded must not also be kept as extra.
func unknownFields(b []byte, known []string) (map[string]json.RawMessage, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var extra map[string]json.RawMessage
	for k, v := range all {
		if isKnown(k, known) {
			continue
		}
		if extra == nil {
			extra = map[string]json.RawMessage{}
		}
		var c bytes.Buffer
		if err := json.Compact(&c, v); err != nil {
			return nil, err
		}
		extra[k] = c.Bytes()
	}
	return extra, nil
}

func isKnown(k string, known []string) bool {
	for _, n := range known {
		if strings.EqualFold(k, n) {
			return true
		}
	}
	return false
}

// appendFields adds extra members to the JSON object obj, in sorted order.
func appendFields(obj []byte, extra map[string]json.RawMessage, known []string) ([]byte, error) {
	if len(extra) == 0 {
		return obj, nil
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		if !isKnown(k, known) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	body := bytes.TrimSuffix(bytes.TrimSpace(obj), []byte("}"))
	var buf bytes.Buffer
	buf.Write(body)
	for i, k := range keys {
		if i > 0 || !bytes.HasSuffix(bytes.TrimSpace(body), []byte("{")) {
			buf.WriteByte(',')
		}
		kb, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		if !json.Valid(extra[k]) {
			return nil, fmt.Errorf("field %q: invalid JSON value", k)
		}
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}
