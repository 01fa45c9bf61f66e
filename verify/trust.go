package verify

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/secrun/secrun/internal/limitio"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"sigs.k8s.io/yaml"
)

// maxTrustFileSize bounds what LoadTrust reads: a trust file or one key,
// certificate or PEM entry it names.
const maxTrustFileSize = 1 << 20

// TrustConfig is the schema of a trust file (YAML or JSON). Unknown fields
// are errors, so a misspelt "insecureIgnoreTlog" cannot silently change what
// is checked.
//
//	rules:
//	- images: ["127.0.0.1:*/team/*", "oci:**"]
//	  keys: ["keys/team.pub"]          # paths relative to the trust file, or inline PEM
//	  insecureIgnoreTlog: true         # no transparency log reachable offline
//	- images: ["registry.example/prod/**"]
//	  identities: [{issuer: "https://issuer.example", subjectRegExp: "^.*@example\\.com$"}]
//	  roots: ["fulcio-root.pem"]
//	  rekorKeys: ["rekor.pub"]
//	  ctlogKeys: ["ctfe.pub"]
//
// The first rule whose images match the reference decides; an image that
// matches no rule is unsigned by definition.
type TrustConfig struct {
	Rules []Rule `json:"rules"`
}

// Rule says which keys or keyless identities may sign the images it matches.
type Rule struct {
	// Images are reference patterns (see glob.go): * within one path
	// segment, ** across segments, ? one character.
	Images []string `json:"images"`
	// Keys are public keys in PEM, each a path (relative to the trust file)
	// or the PEM text itself.
	Keys []string `json:"keys,omitempty"`
	// Identities admit keyless (certificate) signatures whose certificate
	// chains to Roots and names a matching issuer and subject.
	Identities []Identity `json:"identities,omitempty"`
	// Roots and Intermediates are the CA certificates (Fulcio's, or a
	// private CA's) that keyless certificates must chain to. Offline there
	// is no TUF root to fetch them from, so identities need roots.
	Roots         []string `json:"roots,omitempty"`
	Intermediates []string `json:"intermediates,omitempty"`
	// RekorKeys verify the transparency-log bundle (SET) carried by a
	// signature, offline. Required unless InsecureIgnoreTlog.
	RekorKeys []string `json:"rekorKeys,omitempty"`
	// CTLogKeys verify the certificate transparency SCT embedded in keyless
	// certificates. Required for identities unless InsecureIgnoreSCT.
	CTLogKeys []string `json:"ctlogKeys,omitempty"`
	// InsecureIgnoreTlog accepts signatures without transparency-log proof.
	InsecureIgnoreTlog bool `json:"insecureIgnoreTlog,omitempty"`
	// InsecureIgnoreSCT accepts keyless certificates without an SCT.
	InsecureIgnoreSCT bool `json:"insecureIgnoreSCT,omitempty"`
}

// Identity matches a keyless certificate: exactly one of Issuer and
// IssuerRegExp, and exactly one of Subject and SubjectRegExp. Subject is
// matched against the certificate's subject alternative names (an email or
// URI). Regular expressions are Go syntax and must be anchored (^...$).
type Identity struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
}

// Trust is a loaded, validated trust config: every key and certificate it
// names has been read and parsed.
type Trust struct {
	source string
	rules  []*rule
}

// rule is a Rule with its material parsed and its checkers built.
type rule struct {
	index  int // 1-based, for messages
	images []string

	keys          []trustedKey
	identities    []Identity
	roots         []*x509.Certificate
	intermediates []*x509.Certificate
	rekorKeys     [][]byte // PEM
	ctlogKeys     [][]byte // PEM
	ignoreTlog    bool
	ignoreSCT     bool

	// fingerprints are the sorted fingerprints of every key and root the
	// rule trusts; hash covers the whole rule. Both go into the cache key.
	fingerprints []string
	hash         string

	checkers []sigChecker
}

type trustedKey struct {
	name        string // the trust file entry, for messages
	pub         crypto.PublicKey
	fingerprint string // "sha256:<hex of DER SubjectPublicKeyInfo>"
}

// LoadTrust reads and validates a trust file. Any problem (unreadable file,
// unknown field, unreadable key, a rule that could never verify offline) is
// an error: secrun fails closed rather than run with a half-understood trust
// config.
func LoadTrust(path string) (*Trust, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read trust file: %w", err)
	}
	return ParseTrust(data, filepath.Dir(path), path)
}

// ParseTrust parses trust config data. Relative paths in it are resolved
// against baseDir; source names the config in error messages.
func ParseTrust(data []byte, baseDir, source string) (*Trust, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("trust file %s is malformed: %w", source, flatError{err})
	}
	// encoding/json matches field names case-insensitively; a trust file
	// must spell them exactly, so keys are checked first.
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("trust file %s is malformed: %w", source, flatError{err})
	}
	if err := checkFields(doc); err != nil {
		return nil, fmt.Errorf("trust file %s is malformed: %w", source, err)
	}
	var cfg TrustConfig
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return nil, fmt.Errorf("trust file %s is malformed: %w", source, flatError{err})
	}
	return NewTrust(cfg, baseDir, source)
}

var (
	configFields   = []string{"rules"}
	ruleFields     = []string{"images", "keys", "identities", "roots", "intermediates", "rekorKeys", "ctlogKeys", "insecureIgnoreTlog", "insecureIgnoreSCT"}
	identityFields = []string{"issuer", "issuerRegExp", "subject", "subjectRegExp"}
)

// checkFields rejects any key not spelt exactly as the schema spells it.
func checkFields(doc any) error {
	top, ok := doc.(map[string]any)
	if !ok {
		if doc == nil {
			return nil
		}
		return errors.New("the document is not a mapping with a rules list")
	}
	if err := knownKeys(top, configFields, "top level"); err != nil {
		return err
	}
	rules, _ := top["rules"].([]any)
	for i, r := range rules {
		rm, ok := r.(map[string]any)
		if !ok {
			continue // the typed decode reports it
		}
		where := fmt.Sprintf("rule %d", i+1)
		if err := knownKeys(rm, ruleFields, where); err != nil {
			return err
		}
		ids, _ := rm["identities"].([]any)
		for j, id := range ids {
			if im, ok := id.(map[string]any); ok {
				if err := knownKeys(im, identityFields, fmt.Sprintf("%s identity %d", where, j+1)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func knownKeys(m map[string]any, allowed []string, where string) error {
	for k := range m {
		if !slices.Contains(allowed, k) {
			return fmt.Errorf("%s: unknown field %q (known: %s)", where, k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// flatError keeps a wrapped error but prints it on one line.
type flatError struct{ err error }

func (e flatError) Error() string { return strings.Join(strings.Fields(e.err.Error()), " ") }
func (e flatError) Unwrap() error { return e.err }

// NewTrust validates cfg and loads the material it names.
func NewTrust(cfg TrustConfig, baseDir, source string) (*Trust, error) {
	if len(cfg.Rules) == 0 {
		return nil, fmt.Errorf("trust file %s has no rules: add at least one rule with images and keys or identities", source)
	}
	t := &Trust{source: source}
	for i, rc := range cfg.Rules {
		r, err := compileRule(i+1, rc, baseDir)
		if err != nil {
			return nil, fmt.Errorf("trust file %s: rule %d: %w", source, i+1, err)
		}
		t.rules = append(t.rules, r)
	}
	return t, nil
}

// TrustForKey is the trust used by `secrun verify --key FILE`: every image,
// signed by that one key. There is no transparency log offline and secrun's
// own signatures carry no tlog bundle, so the tlog check is off; Warnings
// says so.
func TrustForKey(pubKeyPath string) (*Trust, error) {
	abs, err := filepath.Abs(pubKeyPath)
	if err != nil {
		return nil, fmt.Errorf("public key %s: %w", pubKeyPath, err)
	}
	cfg := TrustConfig{Rules: []Rule{{
		Images:             []string{"**"},
		Keys:               []string{abs},
		InsecureIgnoreTlog: true,
	}}}
	return NewTrust(cfg, filepath.Dir(abs), "--key "+pubKeyPath)
}

// Source names where the trust came from.
func (t *Trust) Source() string { return t.source }

// Warnings lists the checks the trust config switches off, one line each,
// for the CLI to print: escape hatches are loud.
func (t *Trust) Warnings() []string {
	var w []string
	for _, r := range t.rules {
		what := fmt.Sprintf("%s rule %d (%s)", t.source, r.index, strings.Join(r.images, ", "))
		if r.ignoreTlog {
			w = append(w, what+": insecureIgnoreTlog: signatures are accepted without transparency-log proof")
		}
		if r.ignoreSCT && len(r.identities) > 0 {
			w = append(w, what+": insecureIgnoreSCT: keyless certificates are accepted without certificate-transparency proof")
		}
	}
	return w
}

// match returns the first rule whose patterns match ref, or nil.
func (t *Trust) match(ref string) *rule {
	if ref == "" {
		return nil
	}
	names := matchNames(ref)
	for _, r := range t.rules {
		for _, p := range r.images {
			for _, n := range names {
				if globMatch(p, n) {
					return r
				}
			}
		}
	}
	return nil
}

func compileRule(index int, rc Rule, baseDir string) (*rule, error) {
	r := &rule{
		index:      index,
		images:     slices.Clone(rc.Images),
		identities: slices.Clone(rc.Identities),
		ignoreTlog: rc.InsecureIgnoreTlog,
		ignoreSCT:  rc.InsecureIgnoreSCT,
	}
	if len(rc.Images) == 0 {
		return nil, errors.New("no images: list the image patterns this rule covers")
	}
	for _, p := range rc.Images {
		if err := checkPattern(p); err != nil {
			return nil, err
		}
	}
	if len(rc.Keys) == 0 && len(rc.Identities) == 0 {
		return nil, errors.New("no keys and no identities: name who may sign these images")
	}
	for i, k := range rc.Keys {
		data, label, err := material(k, baseDir)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		pub, err := cryptoutils.UnmarshalPEMToPublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("key %s is not a PEM public key (expected a cosign.pub): %w", label, err)
		}
		fp, err := fingerprint(pub)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", label, err)
		}
		r.keys = append(r.keys, trustedKey{name: label, pub: pub, fingerprint: fp})
	}
	for i, id := range rc.Identities {
		if err := checkIdentity(id); err != nil {
			return nil, fmt.Errorf("identity %d: %w", i+1, err)
		}
	}
	var err error
	if r.roots, err = certificates(rc.Roots, baseDir, "root"); err != nil {
		return nil, err
	}
	if r.intermediates, err = certificates(rc.Intermediates, baseDir, "intermediate"); err != nil {
		return nil, err
	}
	if len(rc.Identities) > 0 && len(r.roots) == 0 {
		return nil, errors.New("identities need roots: list the CA certificates keyless certificates chain to (no TUF root is reachable offline)")
	}
	if len(rc.Identities) == 0 && (len(rc.Roots) > 0 || len(rc.Intermediates) > 0) {
		return nil, errors.New("roots or intermediates without identities: add the identities they certify, or remove them")
	}
	if r.rekorKeys, err = pemEntries(rc.RekorKeys, baseDir, "rekor key"); err != nil {
		return nil, err
	}
	if r.ctlogKeys, err = pemEntries(rc.CTLogKeys, baseDir, "ctlog key"); err != nil {
		return nil, err
	}
	if !r.ignoreTlog && len(r.rekorKeys) == 0 {
		return nil, errors.New("transparency-log proof is required but no rekorKeys are listed: add rekorKeys, or set insecureIgnoreTlog: true to accept signatures without it")
	}
	if len(rc.Identities) > 0 && !r.ignoreSCT && len(r.ctlogKeys) == 0 {
		return nil, errors.New("certificate-transparency proof is required for identities but no ctlogKeys are listed: add ctlogKeys, or set insecureIgnoreSCT: true")
	}
	if err := r.seal(); err != nil {
		return nil, err
	}
	if r.checkers, err = newCheckers(r); err != nil {
		return nil, err
	}
	return r, nil
}

func checkIdentity(id Identity) error {
	if (id.Issuer == "") == (id.IssuerRegExp == "") {
		return errors.New("set exactly one of issuer and issuerRegExp")
	}
	if (id.Subject == "") == (id.SubjectRegExp == "") {
		return errors.New("set exactly one of subject and subjectRegExp")
	}
	for _, re := range []string{id.IssuerRegExp, id.SubjectRegExp} {
		if re == "" {
			continue
		}
		if _, err := regexp.Compile(re); err != nil {
			return fmt.Errorf("bad regular expression %q: %w", re, err)
		}
		// cosign matches regular expressions anywhere in the string, so
		// "example\.com" would also admit "example.com.evil.test".
		if !strings.HasPrefix(re, "^") || !strings.HasSuffix(re, "$") {
			return fmt.Errorf("regular expression %q must be anchored with ^ and $ (unanchored, it matches inside longer names)", re)
		}
	}
	return nil
}

// seal computes the rule's fingerprints and hash from its parsed material, so
// the cache key changes whenever anything the verdict depends on changes.
func (r *rule) seal() error {
	canon := struct {
		Images        []string   `json:"images"`
		Keys          []string   `json:"keys"`
		Identities    []Identity `json:"identities"`
		Roots         []string   `json:"roots"`
		Intermediates []string   `json:"intermediates"`
		RekorKeys     []string   `json:"rekorKeys"`
		CTLogKeys     []string   `json:"ctlogKeys"`
		IgnoreTlog    bool       `json:"ignoreTlog"`
		IgnoreSCT     bool       `json:"ignoreSCT"`
	}{Images: r.images, Identities: r.identities, IgnoreTlog: r.ignoreTlog, IgnoreSCT: r.ignoreSCT}
	for _, k := range r.keys {
		canon.Keys = append(canon.Keys, k.fingerprint)
	}
	for _, c := range r.roots {
		canon.Roots = append(canon.Roots, certFingerprint(c))
	}
	for _, c := range r.intermediates {
		canon.Intermediates = append(canon.Intermediates, certFingerprint(c))
	}
	for _, p := range r.rekorKeys {
		canon.RekorKeys = append(canon.RekorKeys, bytesFingerprint(p))
	}
	for _, p := range r.ctlogKeys {
		canon.CTLogKeys = append(canon.CTLogKeys, bytesFingerprint(p))
	}
	r.fingerprints = append(slices.Clone(canon.Keys), canon.Roots...)
	slices.Sort(r.fingerprints)
	b, err := json.Marshal(canon)
	if err != nil {
		return fmt.Errorf("hash rule: %w", err)
	}
	r.hash = bytesFingerprint(b)
	return nil
}

// material returns the PEM bytes of a path-or-inline-PEM entry and a label
// for messages.
func material(entry, baseDir string) ([]byte, string, error) {
	if strings.Contains(entry, "-----BEGIN ") {
		return []byte(entry), "(inline PEM)", nil
	}
	p := entry
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	data, err := readLimited(p)
	if err != nil {
		return nil, entry, fmt.Errorf("read %s: %w", entry, err)
	}
	return data, entry, nil
}

func certificates(entries []string, baseDir, what string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for i, e := range entries {
		data, label, err := material(e, baseDir)
		if err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, i+1, err)
		}
		cs, err := cryptoutils.UnmarshalCertificatesFromPEM(data)
		if err != nil {
			return nil, fmt.Errorf("%s %s is not a PEM certificate: %w", what, label, err)
		}
		if len(cs) == 0 {
			return nil, fmt.Errorf("%s %s holds no PEM certificate", what, label)
		}
		certs = append(certs, cs...)
	}
	return certs, nil
}

func pemEntries(entries []string, baseDir, what string) ([][]byte, error) {
	var out [][]byte
	for i, e := range entries {
		data, label, err := material(e, baseDir)
		if err != nil {
			return nil, fmt.Errorf("%s %d: %w", what, i+1, err)
		}
		if _, err := cryptoutils.UnmarshalPEMToPublicKey(data); err != nil {
			return nil, fmt.Errorf("%s %s is not a PEM public key: %w", what, label, err)
		}
		out = append(out, data)
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	return limitio.ReadFile(path, maxTrustFileSize)
}

func fingerprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encode public key: %w", err)
	}
	return bytesFingerprint(der), nil
}

func certFingerprint(c *x509.Certificate) string { return bytesFingerprint(c.Raw) }

func bytesFingerprint(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
