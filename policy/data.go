package policy

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gobwas/glob"
	"sigs.k8s.io/yaml"
)

// PolicyData is the data document the built-in policies consult: exemptions
// and the host paths restricted accepts bind mounts from. It is data, not
// Rego, so that an exemption is a reviewed line in a file rather than an
// edit to the policy. The same keys in a custom policy directory's data.json
// are validated the same way.
type PolicyData struct {
	Exemptions []Exemption `json:"exemptions,omitempty"`
	// AllowedHostPaths replaces restricted's default list of directories
	// bind mounts may come from.
	AllowedHostPaths []string `json:"allowed_host_paths,omitempty"`
}

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
		return nil, fmt.Errorf("parse policy data: %w (known keys: exemptions, allowed_host_paths)", err)
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
	for i, p := range pd.AllowedHostPaths {
		switch {
		case !path.IsAbs(p) || path.Clean(p) != p:
			errs = append(errs, fmt.Errorf("allowed_host_paths[%d]: %q must be a clean absolute path", i, p))
		case p == "/":
			errs = append(errs, fmt.Errorf("allowed_host_paths[%d]: allowing / would allow every host path; list directories", i))
		}
	}
	return errors.Join(errs...)
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

// checkDataKeys validates the keys the library gives meaning to, wherever
// the data came from.
func checkDataKeys(data map[string]any) (*PolicyData, error) {
	sub := map[string]any{}
	for _, k := range []string{"exemptions", "allowed_host_paths"} {
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
// exemptions are appended, allowed_host_paths replaces.
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
	return nil
}
