//go:build !secrun_noengine

package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// This file is the part of the engine that needs OPA: compiling a policy
// and evaluating an input against it. A build with the secrun_noengine tag
// (the light secrun front, see engine_noengine.go) leaves it out and
// answers only from the decision cache.

// compiled is a policy compiled by OPA, with its decision query prepared.
type compiled struct {
	compiler *ast.Compiler
	query    rego.PreparedEvalQuery
}

// eval evaluates the encoded input raw and fills d. An error means no
// evaluation took place (a cancelled context, an input OPA cannot read);
// an evaluation that failed is a denial with a Reason and no error.
func (c *compiled) eval(ctx context.Context, raw []byte, now time.Time, d *Decision) error {
	v, err := jsonToValue(raw)
	if err != nil {
		d.Reason = "the input cannot be encoded: " + oneLine(err.Error())
		return fmt.Errorf("convert input: %w", err)
	}
	rs, err := c.query.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(now))
	if err != nil {
		if ctx.Err() != nil {
			d.Reason = "policy evaluation was cancelled: " + oneLine(ctx.Err().Error())
			return fmt.Errorf("evaluation cancelled: %w", ctx.Err())
		}
		d.Reason = "policy evaluation failed: " + oneLine(err.Error())
		return nil
	}
	decide(d, rs)
	return nil
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
	e.compiled, e.controls = &compiled{compiler: compiler, query: query}, controls
	return nil
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

// analyze decides whether the compiled policy's decisions may be cached, and
// which volatile fields its key may leave out.
func (cp *compiled) analyze(builtin bool) cacheProfile {
	c := cp.compiler
	p := cacheProfile{Version: cacheVersion, OPA: OPAVersion, Cacheable: true}
	reach := make([]bool, len(volatileFields))
	for _, n := range slices.Sorted(maps.Keys(c.Modules)) {
		m := c.Modules[n]
		ast.NewGenericVisitor(func(x any) bool {
			var op ast.Ref
			switch x := x.(type) {
			case *ast.Expr:
				if x.IsCall() {
					op = x.Operator()
				}
			case ast.Call:
				if len(x) > 0 {
					op, _ = x[0].Value.(ast.Ref)
				}
			case ast.Ref:
				for i, v := range volatileFields {
					if !reach[i] && refMayRead(x, v.path) {
						reach[i] = true
					}
				}
			}
			if op != nil && p.Cacheable {
				name := op.String()
				if b, ok := ast.BuiltinMap[name]; ok && b.Nondeterministic {
					switch {
					case builtin && name == "time.now_ns":
						p.Clock = true
					default:
						p.Cacheable = false
						p.Reason = fmt.Sprintf("%s calls %s, whose result changes between calls", n, name)
					}
				}
			}
			return false
		}).Walk(m)
	}
	for i, v := range volatileFields {
		if !reach[i] {
			p.Ignored = append(p.Ignored, strings.Join(v.path, "."))
		}
	}
	return p
}

// refMayRead reports whether ref, an input reference with variables taken
// as wildcards, can read the field at path or a document containing it.
func refMayRead(ref ast.Ref, path []string) bool {
	if len(ref) == 0 || !ref[0].Equal(ast.InputRootDocument) {
		return false
	}
	for i := 1; i < len(ref) && i-1 < len(path); i++ {
		switch v := ref[i].Value.(type) {
		case ast.String:
			if string(v) != path[i-1] {
				return false
			}
		default:
			if ref[i].IsGround() {
				// A number or another ground value is never this key.
				return false
			}
		}
	}
	return true
}
