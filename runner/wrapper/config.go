package wrapper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/secrun/secrun/profiles"
	"github.com/secrun/secrun/runner/runcfront"
)

// Where secrun-runc finds its configuration.
const (
	DefaultConfigPath = runcfront.DefaultConfigPath
	ConfigEnv         = runcfront.ConfigEnv
	DefaultAuditLog   = "/var/lib/secrun/audit/audit.log"
	DefaultStateDir   = "/var/lib/secrun/runtime"
	maxConfigSize     = 1 << 20
)

// Modes.
const (
	// ModeEnforce refuses what the policy denies.
	ModeEnforce = "enforce"
	// ModeAuditOnly records what the policy would deny and runs it anyway.
	ModeAuditOnly = "audit-only"
)

// Config is the schema of runtime.yaml. Unknown or misspelt fields are
// errors: a typo must not silently weaken what is enforced.
//
//	runtime: /usr/local/bin/runc      # the real OCI runtime
//	policy: baseline                  # built-in name, .rego file or directory
//	exemptions: exemptions.yaml       # optional policy data
//	trust: trust.yaml                 # optional: check signatures of identified images
//	auditLog: /var/lib/secrun/audit/audit.log
//	mode: enforce                     # or audit-only
//	hardening:
//	  seccomp: default                # the default profile when the caller gave none
//	  noNewPrivileges: true
//
// Relative paths are relative to the directory of the config file.
type Config struct {
	// Runtime is the real runc. Default: runc beside secrun-runc, else runc
	// on PATH (never secrun-runc itself).
	Runtime string `json:"runtime,omitempty"`
	// Policy is a built-in policy name or a .rego file or directory; empty
	// is secrun's default policy (restricted).
	Policy     string `json:"policy,omitempty"`
	Exemptions string `json:"exemptions,omitempty"`
	// Trust is a trust config (see package verify). Without it no signature
	// is checked and every image counts as unsigned.
	Trust string `json:"trust,omitempty"`
	// Verifier is the signature helper run when Trust is set; default
	// secrun-runc-verify beside secrun-runc, else on PATH.
	Verifier string `json:"verifier,omitempty"`
	AuditLog string `json:"auditLog,omitempty"`
	// AuditKey signs audit checkpoints (ed25519 PEM); optional.
	AuditKey string `json:"auditKey,omitempty"`
	// Mode is "enforce" (default) or "audit-only".
	Mode string `json:"mode,omitempty"`
	// StateDir holds the verdict cache.
	StateDir  string    `json:"stateDir,omitempty"`
	Hardening Hardening `json:"hardening"`

	// source is the file the config came from.
	source string
}

// Hardening is what secrun-runc adds to a bundle before the policy sees it.
type Hardening struct {
	// Seccomp is "" (leave the spec as it is) or "default": install secrun's
	// default profile when the spec has no seccomp filter.
	Seccomp string `json:"seccomp,omitempty"`
	// NoNewPrivileges sets no_new_privs on the container process and on
	// every exec'd process.
	NoNewPrivileges bool `json:"noNewPrivileges,omitempty"`
}

var (
	configFields    = []string{"runtime", "policy", "exemptions", "trust", "verifier", "auditLog", "auditKey", "mode", "stateDir", "hardening"}
	hardeningFields = []string{"seccomp", "noNewPrivileges"}
)

// ConfigPath is the config file to read (runcfront.ConfigPath).
func ConfigPath(getenv func(string) string) string { return runcfront.ConfigPath(getenv) }

// LoadConfig reads and checks a config file. Every problem is an error that
// names the file; the caller denies every container start on it.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrun-runc config %s: %w (create it, see docs/secrun-runc.md, or set %s)", path, err, ConfigEnv)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("secrun-runc config %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("secrun-runc config %s is larger than %d bytes", path, maxConfigSize)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("secrun-runc config %s: %w", path, err)
	}
	return ParseConfig(data, abs)
}

// ParseConfig parses config data; source is the file's absolute path, used
// for messages and to resolve relative paths.
func ParseConfig(data []byte, source string) (*Config, error) {
	bad := func(err error) (*Config, error) {
		return nil, fmt.Errorf("secrun-runc config %s is malformed: %w", source, err)
	}
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return bad(oneLineErr(err))
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return bad(oneLineErr(err))
	}
	if doc == nil {
		// An empty file: every setting at its default (enforce, restricted).
		doc, js = map[string]any{}, []byte("{}")
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return bad(errors.New("the document is not a mapping of settings"))
	}
	if err := knownKeys(top, configFields, "top level"); err != nil {
		return bad(err)
	}
	if h, ok := top["hardening"].(map[string]any); ok {
		if err := knownKeys(h, hardeningFields, "hardening"); err != nil {
			return bad(err)
		}
	}
	c := &Config{}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return bad(oneLineErr(err))
	}
	c.source = source
	if c.Mode == "" {
		c.Mode = ModeEnforce
	}
	if c.Mode != ModeEnforce && c.Mode != ModeAuditOnly {
		return bad(fmt.Errorf("mode %q is not %s or %s", c.Mode, ModeEnforce, ModeAuditOnly))
	}
	switch c.Hardening.Seccomp {
	case "", "default":
	default:
		return bad(fmt.Errorf("hardening.seccomp %q is not \"default\" (or empty to leave the spec alone)", c.Hardening.Seccomp))
	}
	if c.AuditLog == "" {
		c.AuditLog = DefaultAuditLog
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	dir := filepath.Dir(source)
	rel := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	// Files are relative to the config file; commands without a slash are
	// looked up on PATH.
	for _, p := range []*string{&c.Exemptions, &c.Trust, &c.AuditLog, &c.AuditKey, &c.StateDir} {
		rel(p)
	}
	for _, p := range []*string{&c.Runtime, &c.Verifier} {
		if strings.ContainsRune(*p, '/') {
			rel(p)
		}
	}
	if c.Policy != "" && !slices.Contains(profiles.PolicyNames(), c.Policy) {
		rel(&c.Policy)
	}
	return c, nil
}

// Source is the file the config was read from.
func (c *Config) Source() string { return c.source }

// AuditOnly reports whether denials are only recorded.
func (c *Config) AuditOnly() bool { return c.Mode == ModeAuditOnly }

// PolicyName names the policy in messages.
func (c *Config) PolicyName() string {
	if c.Policy == "" {
		return "restricted"
	}
	return c.Policy
}

func knownKeys(m map[string]any, allowed []string, where string) error {
	for k := range m {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s: unknown field %q (known: %s)", where, k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// FindRuntime returns the real runtime (runcfront.FindRuntime).
func FindRuntime(configured, self string) (string, error) {
	return runcfront.FindRuntime(configured, self)
}

// FindVerifier returns the signature helper to run.
func (c *Config) FindVerifier(self string) (string, error) {
	if c.Verifier != "" {
		p, err := exec.LookPath(c.Verifier)
		if err != nil {
			return "", fmt.Errorf("signature helper %q not found: set verifier: in %s", c.Verifier, c.source)
		}
		return p, nil
	}
	if self != "" {
		p := filepath.Join(filepath.Dir(self), VerifierName)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(VerifierName)
	if err != nil {
		return "", fmt.Errorf("signature helper %s not found beside secrun-runc or on PATH (make build installs it): needed because %s names a trust config", VerifierName, c.source)
	}
	return p, nil
}

// flatError keeps a wrapped error but prints it on one line.
type flatError struct{ err error }

func (e flatError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e flatError) Unwrap() error { return e.err }

func oneLineErr(err error) error { return flatError{err} }
