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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/secrun/secrun/profiles"
)

// Option configures Load.
type Option func(*options)

type options struct {
	exemptions string
	now        func() time.Time
	cacheDir   string
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
	query    rego.PreparedEvalQuery
	controls []Control
	compiler *ast.Compiler

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
		e.profile = e.cache.storeProfile(hash, analyze(e.compiler, src.builtin))
	}
	return e, nil
}

// build compiles the policy and prepares its queries; check validates the
// controls it declares.
func (e *Engine) build(ctx context.Context, src *policySource, data map[string]any, check func([]Control) error) error {
	compiler, err := compileSource(src, true)
	if err != nil {
		return err
	}
	if _, ok := compiler.Modules[engineModule]; !ok {
		return errors.New("policy engine module missing after compile")
	}
	if !hasPackage(compiler, policyPackage) {
		return denyLoad(src.name, fmt.Sprintf("policy %s has no `package %s`; a policy must define data.%s.allow", src.name, policyPackage, policyPackage))
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))
	query, err := prepare(ctx, compiler, store, engineQuery)
	if err != nil {
		return denyLoad(src.name, fmt.Sprintf("policy %s: %s", src.name, oneLine(err.Error())))
	}
	controls, err := loadControls(ctx, compiler, store)
	if err != nil {
		return fmt.Errorf("policy %s: %w", src.name, err)
	}
	if err := check(controls); err != nil {
		return err
	}
	e.compiler, e.query, e.controls = compiler, query, controls
	return nil
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

func hasPackage(c *ast.Compiler, pkg string) bool {
	want := ast.MustParseRef("data." + pkg)
	for _, m := range c.Modules {
		if m.Package.Path.Equal(want) {
			return true
		}
	}
	return false
}

// parserOptions: Rego v1 only, and METADATA annotations kept.
var parserOptions = ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true}

// parseModules parses every module, collecting every error with its file
// and line.
func parseModules(src *policySource) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(src.modules)+1)
	var msgs []string
	for _, f := range src.modules {
		m, err := ast.ParseModuleWithOpts(f.name, string(f.content), parserOptions)
		if err != nil {
			msgs = append(msgs, astErrorText(err)...)
			continue
		}
		if m == nil {
			msgs = append(msgs, f.name+": empty module (a module starts with `package`)")
			continue
		}
		mods[f.name] = m
	}
	if len(msgs) > 0 {
		return nil, denyLoad(src.name, fmt.Sprintf("policy %s does not parse: %s", src.name, strings.Join(msgs, "; ")))
	}
	return mods, nil
}

// compileSource parses and compiles a policy with the restricted builtin
// set. withEngine adds the internal decision module.
func compileSource(src *policySource, withEngine bool) (*ast.Compiler, error) {
	mods, err := parseModules(src)
	if err != nil {
		return nil, err
	}
	if withEngine {
		m, err := ast.ParseModuleWithOpts(engineModule, engineRegoText, parserOptions)
		if err != nil {
			return nil, fmt.Errorf("policy engine module: %w", err)
		}
		mods[engineModule] = m
	}
	c := newCompiler()
	if c.Compile(mods); c.Failed() {
		return nil, denyLoad(src.name, fmt.Sprintf("policy %s does not compile: %s", src.name, strings.Join(astErrorText(c.Errors), "; ")))
	}
	return c, nil
}

func newCompiler() *ast.Compiler {
	return ast.NewCompiler().
		WithCapabilities(policyCapabilities()).
		WithDefaultRegoVersion(ast.RegoV1).
		WithEnablePrintStatements(false)
}

// forbiddenBuiltins are left out of the builtins a policy may call: a
// decision must be a function of the input and the policy data, so nothing
// that reaches the network or the process environment.
var forbiddenBuiltins = []string{"http.send", "net.lookup_ip_addr", "opa.runtime"}

func policyCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(slices.Clone(caps.Builtins), func(b *ast.Builtin) bool {
		return slices.Contains(forbiddenBuiltins, b.Name)
	})
	return caps
}

// astErrorText renders OPA errors as "file:line: code: message".
func astErrorText(err error) []string {
	var errs ast.Errors
	if errors.As(err, &errs) {
		out := make([]string, 0, len(errs))
		for _, e := range errs {
			out = append(out, oneLine(e.Error()))
		}
		return out
	}
	return []string{oneLine(err.Error())}
}

func prepare(ctx context.Context, c *ast.Compiler, store storage.Store, query string) (rego.PreparedEvalQuery, error) {
	r := rego.New(
		rego.Query(query),
		rego.Compiler(c),
		rego.Store(store),
		rego.Capabilities(policyCapabilities()),
		// A builtin error (bad regex, bad date) is an evaluation error,
		// and an evaluation error denies.
		rego.StrictBuiltinErrors(true),
	)
	return r.PrepareForEval(ctx)
}

func loadControls(ctx context.Context, c *ast.Compiler, store storage.Store) ([]Control, error) {
	q, err := prepare(ctx, c, store, controlsQuery)
	if err != nil {
		return nil, fmt.Errorf("prepare the controls query: %w", err)
	}
	rs, err := q.Eval(ctx, rego.EvalParsedInput(ast.NewObject()))
	if err != nil {
		return nil, fmt.Errorf("evaluate data.%s.controls: %w", policyPackage, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	raw, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("data.%s.controls must be an object of {severity, description, refs}", policyPackage)
	}
	var out []Control
	for id, v := range raw {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("control %q: %w", id, err)
		}
		ctl := Control{ID: id}
		if err := decodeJSONStrict(b, &ctl, false); err != nil {
			return nil, fmt.Errorf("control %q must be {severity, description, refs}: %w", id, err)
		}
		ctl.ID = id
		if !slices.Contains(Severities, ctl.Severity) {
			return nil, fmt.Errorf("control %q: severity %q is not one of %s", id, ctl.Severity, strings.Join(Severities, ", "))
		}
		out = append(out, ctl)
	}
	slices.SortFunc(out, func(a, b Control) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
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
	v, err := jsonToValue(raw)
	if err != nil {
		d.Reason = "the input cannot be encoded: " + oneLine(err.Error())
		return d, fmt.Errorf("policy: convert input: %w", err)
	}
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(e.now()))
	if err != nil {
		if ctx.Err() != nil {
			d.Reason = "policy evaluation was cancelled: " + oneLine(ctx.Err().Error())
			return d, fmt.Errorf("policy %s: evaluation cancelled: %w", e.name, ctx.Err())
		}
		d.Reason = "policy evaluation failed: " + oneLine(err.Error())
		return d, nil
	}
	decide(&d, rs)
	if key != "" && d.Allowed {
		e.cache.store(key, e.hash, d, e.validUntil(e.now()))
	}
	return d, nil
}

// decide turns the engine module's result into a decision, denying on
// anything but the documented shape.
func decide(d *Decision, rs rego.ResultSet) {
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		d.Reason = "the policy produced no decision (undefined result)"
		return
	}
	res, ok := rs[0].Expressions[0].Value.(map[string]any)
	if !ok {
		d.Reason = "the policy produced a malformed decision"
		return
	}
	var reasons []string
	vs, err := violationsOf(res["deny"])
	if err != nil {
		reasons = append(reasons, "data.secrun.deny "+err.Error())
	}
	d.Violations = vs
	if ex, err := violationsOf(res["exempted"]); err == nil {
		d.Exempted = ex
	} else {
		reasons = append(reasons, "data.secrun.exempted "+err.Error())
	}
	allow, defined := res["allow"]
	switch {
	case !defined:
		reasons = append(reasons, "data.secrun.allow is undefined (a policy needs `default allow := false` in package secrun)")
	default:
		b, isBool := allow.(bool)
		switch {
		case !isBool:
			reasons = append(reasons, fmt.Sprintf("data.secrun.allow is %s, not a boolean", jsonText(allow)))
		case b && len(reasons) == 0 && len(vs) == 0:
			d.Allowed = true
		case !b && len(vs) == 0 && len(reasons) == 0:
			reasons = append(reasons, "the policy did not allow the container and listed no violation")
		}
	}
	d.Reason = strings.Join(reasons, "; ")
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
