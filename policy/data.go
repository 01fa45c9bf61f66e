package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"sigs.k8s.io/yaml"
)

// PolicyData is the data document the built-in policies consult: exemptions,
// the host paths restricted accepts bind mounts from, and the OCI hooks the
// built-in policies admit. It is data, not Rego, so that an exemption is a
// reviewed line in a file rather than an edit to the policy. The same keys
// in a custom policy directory's data.json are validated the same way.
type PolicyData struct {
	Exemptions []Exemption `json:"exemptions,omitempty"`
	// AllowedHostPaths replaces restricted's default list of directories
	// bind mounts may come from. A pointer, so that an empty list (no host
	// path at all) is kept apart from no list (the default).
	AllowedHostPaths *[]string `json:"allowed_host_paths,omitempty"`
	// AllowedHooks replaces the built-in policies' default list of OCI
	// hooks they admit (only dockerd's libnetwork-setkey prestart hook). A
	// pointer, so that an empty list (admit no hook at all) is kept apart
	// from no list (the default).
	AllowedHooks *[]HookRule `json:"allowed_hooks,omitempty"`
}

// HookRule admits OCI hooks of one shape. A hook matches when its kind is
// one of Kinds, its path matches Path, it has exactly len(Args) arguments
// and each matches its pattern, and each of its environment entries matches
// one of Env. Patterns are Go (RE2) regular expressions and always match
// the whole string. See default_allowed_hooks in
// profiles/policies/lib/secrun.rego for the reasoning a rule needs.
type HookRule struct {
	// Name identifies the rule to reviewers.
	Name string `json:"name"`
	// Kinds are OCI hook kinds (HookKinds).
	Kinds []string `json:"kinds"`
	// Path is the pattern for the hook's path.
	Path string `json:"path"`
	// Args are the patterns for the hook's arguments, argv[0] first.
	// Required; [] admits only a hook without arguments.
	Args []string `json:"args"`
	// Env are the patterns a hook's environment entries must match; none
	// admits only a hook without environment.
	Env []string `json:"env,omitempty"`
	// Reason says why running this hook on the host is safe. Required.
	Reason string `json:"reason"`
}

// HookKinds are the OCI runtime spec's hook kinds (config.md, "POSIX-platform
// Hooks"). prestart is deprecated by the spec but still what Docker uses.
var HookKinds = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// Exemption lifts one control for images matching a pattern.
type Exemption struct {
	// Control is a control id of the active policy, e.g. "readonly-rootfs".
	Control string `json:"control"`
	// Images are glob patterns over the image reference ("*" stays within
	// one path segment, "**" crosses them) or exact digests
	// ("sha256:..."). Bundles without an image identity never match.
	Images []string `json:"images"`
	// Reason is for the reviewer and the audit trail.
	Reason string `json:"reason,omitempty"`
	// Expires (RFC 3339) ends the exemption; evaluation time decides.
	Expires string `json:"expires,omitempty"`
}

// ParsePolicyData reads a policy data document (YAML or JSON) strictly:
// unknown keys, malformed patterns, relative paths and bad dates are errors
// naming the entry, since a typo in an exemption must not go unnoticed.
func ParsePolicyData(b []byte) (*PolicyData, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("parse policy data: %w", err)
	}
	var pd PolicyData
	if err := decodeJSONStrict(j, &pd, true); err != nil {
		return nil, fmt.Errorf("parse policy data: %w (known keys: %s)", err, strings.Join(dataKeys, ", "))
	}
	if err := pd.validate(); err != nil {
		return nil, err
	}
	return &pd, nil
}

func (pd *PolicyData) validate() error {
	var errs []error
	for i, e := range pd.Exemptions {
		if err := e.validate(); err != nil {
			errs = append(errs, fmt.Errorf("exemptions[%d]: %w", i, err))
		}
	}
	var hostPaths []string
	if pd.AllowedHostPaths != nil {
		hostPaths = *pd.AllowedHostPaths
	}
	for i, p := range hostPaths {
		switch {
		case !path.IsAbs(p) || path.Clean(p) != p:
			errs = append(errs, fmt.Errorf("allowed_host_paths[%d]: %q must be a clean absolute path", i, p))
		case p == "/":
			errs = append(errs, fmt.Errorf("allowed_host_paths[%d]: allowing / would allow every host path; list directories", i))
		}
	}
	if pd.AllowedHooks != nil {
		for i, r := range *pd.AllowedHooks {
			if err := r.validate(); err != nil {
				errs = append(errs, fmt.Errorf("allowed_hooks[%d]: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

func (r HookRule) validate() error {
	var errs []error
	if strings.TrimSpace(r.Name) == "" {
		errs = append(errs, errors.New("name is empty"))
	}
	if strings.TrimSpace(r.Reason) == "" {
		errs = append(errs, errors.New("reason is empty: say why running this hook on the host is safe"))
	}
	if len(r.Kinds) == 0 {
		errs = append(errs, fmt.Errorf("kinds is empty (one or more of %s)", strings.Join(HookKinds, ", ")))
	}
	for j, k := range r.Kinds {
		if !slices.Contains(HookKinds, k) {
			errs = append(errs, fmt.Errorf("kinds[%d] %q is not an OCI hook kind (%s)", j, k, strings.Join(HookKinds, ", ")))
		}
	}
	if r.Path == "" {
		errs = append(errs, errors.New("path is empty"))
	} else if err := checkHookPattern(r.Path); err != nil {
		errs = append(errs, fmt.Errorf("path: %w", err))
	}
	if r.Args == nil {
		errs = append(errs, errors.New("args is missing (one pattern per argument, argv[0] first; [] for a hook without arguments)"))
	}
	for j, a := range r.Args {
		if err := checkHookPattern(a); err != nil {
			errs = append(errs, fmt.Errorf("args[%d]: %w", j, err))
		}
	}
	for j, e := range r.Env {
		if err := checkHookPattern(e); err != nil {
			errs = append(errs, fmt.Errorf("env[%d]: %w", j, err))
		}
	}
	return errors.Join(errs...)
}

// checkHookPattern compiles a pattern as the policy's regex.match will (Go
// RE2). The policy wraps it in ^(?:...)$; compiling it on its own first
// refuses an unbalanced ")" that would otherwise escape the anchors
// ("x)|(.*" would match everything).
func checkHookPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	if _, err := regexp.Compile(p); err != nil {
		return fmt.Errorf("%q is not a valid RE2 pattern: %w", p, err)
	}
	if _, err := regexp.Compile("^(?:" + p + ")$"); err != nil {
		return fmt.Errorf("%q is not a valid RE2 pattern: %w", p, err)
	}
	return nil
}

func (e Exemption) validate() error {
	if strings.TrimSpace(e.Control) == "" {
		return errors.New("control is empty")
	}
	if len(e.Images) == 0 {
		return fmt.Errorf("exemption for %q lists no images (to lift a control everywhere, use a custom policy)", e.Control)
	}
	for j, p := range e.Images {
		if p == "" {
			return fmt.Errorf("images[%d] is empty", j)
		}
		// OPA's glob.match is gobwas/glob; compile the pattern the same
		// way so a bad one fails here instead of at every evaluation.
		if _, err := glob.Compile(p, '/'); err != nil {
			return fmt.Errorf("images[%d] %q is not a valid pattern: %w", j, p, err)
		}
	}
	if e.Expires != "" {
		if _, err := time.Parse(time.RFC3339, e.Expires); err != nil {
			return fmt.Errorf("expires %q is not an RFC 3339 time (e.g. 2026-01-31T00:00:00Z): %w", e.Expires, err)
		}
	}
	return nil
}

// document turns the parsed data into the generic form the OPA store holds.
func (pd *PolicyData) document() (map[string]any, error) {
	b, err := json.Marshal(pd)
	if err != nil {
		return nil, fmt.Errorf("encode policy data: %w", err)
	}
	var m map[string]any
	if err := decodeJSONStrict(b, &m, false); err != nil {
		return nil, fmt.Errorf("encode policy data: %w", err)
	}
	return m, nil
}

// decodeDataDocument reads a data.json or data.yaml file into an object.
func decodeDataDocument(name string, b []byte) (map[string]any, error) {
	j := b
	if ext := filepath.Ext(name); ext == ".yaml" || ext == ".yml" {
		var err error
		if j, err = yaml.YAMLToJSON(b); err != nil {
			return nil, fmt.Errorf("policy data %s: %w", name, err)
		}
	}
	var doc map[string]any
	if err := decodeJSONStrict(j, &doc, false); err != nil {
		return nil, fmt.Errorf("policy data %s: %w", name, err)
	}
	if doc == nil {
		return nil, fmt.Errorf("policy data %s: the document must be an object", name)
	}
	return doc, nil
}

// dataKeys are the keys of the data document the built-in library gives
// meaning to.
var dataKeys = []string{"exemptions", "allowed_host_paths", "allowed_hooks"}

// checkDataKeys validates the keys the library gives meaning to, wherever
// the data came from.
func checkDataKeys(data map[string]any) (*PolicyData, error) {
	sub := map[string]any{}
	for _, k := range dataKeys {
		if v, ok := data[k]; ok {
			sub[k] = v
		}
	}
	b, err := json.Marshal(sub)
	if err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	var pd PolicyData
	if err := decodeJSONStrict(b, &pd, true); err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	if err := pd.validate(); err != nil {
		return nil, fmt.Errorf("policy data: %w", err)
	}
	return &pd, nil
}

// applyPolicyData merges an exemptions file over the policy's own data:
// exemptions are appended, allowed_host_paths and allowed_hooks replace.
func applyPolicyData(data map[string]any, pd *PolicyData) error {
	doc, err := pd.document()
	if err != nil {
		return err
	}
	if ex, ok := doc["exemptions"].([]any); ok {
		old, _ := data["exemptions"].([]any)
		data["exemptions"] = append(slices.Clone(old), ex...)
	}
	if hp, ok := doc["allowed_host_paths"]; ok {
		data["allowed_host_paths"] = hp
	}
	if ah, ok := doc["allowed_hooks"]; ok {
		data["allowed_hooks"] = ah
	}
	return nil
}
