package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/secrun/secrun/profiles"
)

// ErrNoEngine is what a build without the policy engine (the
// secrun_noengine tag: the light secrun front) returns where it would have
// to compile or evaluate a policy: a decision the decision cache does not
// hold. Nothing has been decided or recorded; the caller hands the whole
// request to a build with the engine.
var ErrNoEngine = errors.New("this build of secrun has no policy or signature engine")

// Option configures Load.
type Option func(*options)

type options struct {
	exemptions string
	now        func() time.Time
	cacheDir   string
	memo       *Memo
}

// WithExemptions merges a policy data file (YAML or JSON, see PolicyData)
// into the policy's data: its exemptions are added to the policy's own, its
// allowed_host_paths replaces theirs.
func WithExemptions(path string) Option {
	return func(o *options) { o.exemptions = path }
}

// WithEvalTime sets the clock policies see through time.now_ns (exemption
// expiry); tests inject a fixed time.
func WithEvalTime(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// Engine is a compiled policy, ready to evaluate. Compile once per process
// and call Eval per container; an Engine is safe for concurrent use.
type Engine struct {
	name     string
	hash     string
	now      func() time.Time
	data     map[string]any
	controls []Control
	// compiled is the policy compiled by OPA (engine_rego.go); nil until
	// built, and always nil in a build without the engine.
	compiled *compiled

	// With a decision cache, a policy whose profile is cached is compiled
	// lazily: only when a decision is not in the cache.
	cache   *decisionCache
	profile *cacheProfile
	lazy    func(context.Context) error
	once    sync.Once
	lazyErr error
}

// Control describes one rule of a policy, for `secrun policy explain`.
type Control struct {
	ID          string   `json:"id"`
	Severity    string   `json:"severity"`
	Description string   `json:"description"`
	Refs        []string `json:"refs,omitempty"`
}

// The package every policy must define, and the internal module that reads
// its decision in one evaluation, treating a missing deny as empty and a
// missing allow as a reason to deny.
const (
	policyPackage  = "secrun"
	engineModule   = "secrun-engine.rego"
	enginePackage  = "secrun_internal_engine"
	engineQuery    = "data." + enginePackage + ".result"
	controlsQuery  = "data." + policyPackage + ".controls"
	engineRegoText = `package ` + enginePackage + `

deny := x if {
	x := data.secrun.deny
} else := set()

exempted := x if {
	x := data.secrun.exempted
} else := set()

result := {"allow": a, "deny": deny, "exempted": exempted} if {
	a := data.secrun.allow
} else := {"deny": deny, "exempted": exempted}
`
)

// Load compiles a policy. spec is "" for the default built-in policy, a
// built-in name (restricted, baseline, cis-docker), or the path of a .rego
// file or of a directory of them (with optional data.json/data.yaml). A
// built-in name wins over a file of the same name: write ./restricted for
// the file.
//
// A policy that does not parse or compile (or has no package secrun) is
// returned as a *DeniedError whose reason names the file and line: every
// container would be denied, and the caller reports it as a denial (exit
// 126). Unreadable files and malformed data are ordinary errors.
func Load(ctx context.Context, spec string, opts ...Option) (*Engine, error) {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	src, err := resolveSource(spec, false)
	if err != nil {
		return nil, err
	}
	data, err := mergeData(src.dataFiles)
	if err != nil {
		return nil, err
	}
	own, err := checkDataKeys(data)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", src.name, err)
	}
	var extra *PolicyData
	if o.exemptions != "" {
		b, err := readSource(o.exemptions)
		if err != nil {
			return nil, fmt.Errorf("exemptions: %w", err)
		}
		pd, err := ParsePolicyData(b)
		if err != nil {
			return nil, fmt.Errorf("exemptions %s: %w", o.exemptions, err)
		}
		if err := applyPolicyData(data, pd); err != nil {
			return nil, fmt.Errorf("exemptions %s: %w", o.exemptions, err)
		}
		extra = pd
	}
	hash, err := sourceHash(src, data)
	if err != nil {
		return nil, err
	}
	memoKey := src.name + "\x00" + hash
	if o.memo != nil {
		if e := o.memo.get(memoKey); e != nil {
			return e, nil
		}
	}
	e := &Engine{name: src.name, hash: hash, now: o.now, data: data}
	build := func(ctx context.Context) error {
		return e.build(ctx, src, data, func(controls []Control) error {
			if err := checkExemptionControls(own, controls); err != nil {
				return fmt.Errorf("policy %s: %w", src.name, err)
			}
			if extra != nil {
				if err := checkExemptionControls(extra, controls); err != nil {
					return fmt.Errorf("exemptions %s: %w", o.exemptions, err)
				}
			}
			return nil
		})
	}
	if o.cacheDir != "" {
		e.cache = &decisionCache{dir: o.cacheDir, max: defaultCacheEntries}
		// A policy this cache has seen compile (same hash, same OPA) is
		// compiled only when a decision is not in the cache.
		if prof, ok := e.cache.profile(hash); ok {
			e.profile = prof
			e.lazy = build
			return e, nil
		}
	}
	if err := build(ctx); err != nil {
		return nil, err
	}
	if e.cache != nil {
		e.profile = e.cache.storeProfile(hash, e.compiled.analyze(src.builtin))
	}
	if o.memo != nil {
		o.memo.put(memoKey, e)
	}
	return e, nil
}

// ready compiles a lazily loaded policy, once.
func (e *Engine) ready(ctx context.Context) error {
	e.once.Do(func() {
		if e.lazy != nil {
			e.lazyErr = e.lazy(ctx)
		}
	})
	return e.lazyErr
}

func resolveSource(spec string, withTests bool) (*policySource, error) {
	if spec == "" {
		spec = profiles.DefaultPolicy
	}
	if slices.Contains(profiles.PolicyNames(), spec) {
		return builtinSource(spec, withTests)
	}
	return pathSource(spec, withTests)
}

// denyLoad is a load failure that denies every container.
func denyLoad(policy, reason string) error {
	return &DeniedError{Policy: policy, Reason: reason}
}

// checkExemptionControls refuses exemptions for controls the policy does not
// have: a misspelt id would otherwise exempt nothing, silently.
func checkExemptionControls(pd *PolicyData, controls []Control) error {
	if len(controls) == 0 {
		return nil
	}
	var errs []error
	for i, e := range pd.Exemptions {
		if !slices.ContainsFunc(controls, func(c Control) bool { return c.ID == e.Control }) {
			ids := make([]string, len(controls))
			for j, c := range controls {
				ids[j] = c.ID
			}
			errs = append(errs, fmt.Errorf("exemptions[%d]: control %q is not a control of this policy (%s)", i, e.Control, strings.Join(ids, ", ")))
		}
	}
	return errors.Join(errs...)
}

// Name is the policy's name: the built-in name, or the absolute path.
func (e *Engine) Name() string { return e.name }

// Hash is "sha256:..." over the policy's modules and data; it changes when
// and only when the policy or its data does.
func (e *Engine) Hash() string { return e.hash }

// Controls lists the policy's controls by id; empty for a policy without a
// `controls` object.
func (e *Engine) Controls() []Control {
	if err := e.ready(context.Background()); err != nil {
		return nil
	}
	return slices.Clone(e.controls)
}

// Eval decides on one input. The decision is never Allowed unless the
// policy allowed and listed no violation; evaluation errors and undefined or
// malformed results are denials with a Reason. The error is non-nil only
// when no evaluation could take place (nil input, cancelled context,
// unencodable input); the Decision then denies too.
func (e *Engine) Eval(ctx context.Context, in *Input) (Decision, error) {
	d := Decision{Policy: e.name, PolicyHash: e.hash}
	if in == nil {
		d.Reason = "no input to evaluate"
		return d, errors.New("policy: Eval called with a nil input")
	}
	if err := ctx.Err(); err != nil {
		d.Reason = "policy evaluation was cancelled: " + oneLine(err.Error())
		return d, fmt.Errorf("policy %s: evaluation cancelled: %w", e.name, err)
	}
	raw, err := json.Marshal(in)
	if err != nil {
		d.Reason = "the input cannot be encoded: " + oneLine(err.Error())
		return d, fmt.Errorf("policy: encode input: %w", err)
	}
	d.InputHash = hashBytes(raw)
	var key string
	if e.cache != nil && e.profile != nil && e.profile.Cacheable {
		if key, err = e.profile.key(e.hash, in); err == nil {
			if hit, ok := e.cache.lookup(key, e.hash, e.now()); ok {
				d.Allowed, d.Exempted, d.Cached = true, hit.Exempted, true
				return d, nil
			}
		} else {
			key = ""
		}
	}
	if err := e.ready(ctx); err != nil {
		d.Reason = "the policy could not be compiled: " + oneLine(err.Error())
		return d, fmt.Errorf("policy %s: %w", e.name, err)
	}
	if err := e.compiled.eval(ctx, raw, e.now(), &d); err != nil {
		return d, fmt.Errorf("policy %s: %w", e.name, err)
	}
	if key != "" && d.Allowed {
		e.cache.store(key, e.hash, d, e.validUntil(e.now()))
	}
	return d, nil
}

// violationsOf reads a set (an array after conversion) of violation objects.
// Elements that are not objects still deny: they become violations whose
// message is the element.
func violationsOf(x any) ([]Violation, error) {
	if x == nil {
		return nil, nil
	}
	arr, ok := x.([]any)
	if !ok {
		return nil, fmt.Errorf("is %s, not a set of violation objects", jsonText(x))
	}
	out := make([]Violation, 0, len(arr))
	for _, el := range arr {
		m, ok := el.(map[string]any)
		if !ok {
			out = append(out, Violation{ID: "policy", Msg: jsonText(el)})
			continue
		}
		out = append(out, Violation{
			ID:       stringField(m, "id"),
			Msg:      stringField(m, "msg"),
			Field:    stringField(m, "field"),
			Fix:      stringField(m, "fix"),
			Severity: stringField(m, "severity"),
		})
	}
	sortViolations(out)
	return out, nil
}

func stringField(m map[string]any, k string) string {
	v, ok := m[k]
	if !ok || v == nil {
		return ""
	}
	if s, ok := v.(string); ok {
		return s
	}
	return jsonText(v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	const max = 200
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
