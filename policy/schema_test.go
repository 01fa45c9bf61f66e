package policy_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
)

// closedSchema derives a JSON Schema from a Go type in which every object
// lists exactly the fields the type has, so OPA's type checker reports any
// reference to a field the input can never carry.
func closedSchema(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.Pointer:
		return closedSchema(t.Elem())
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		return map[string]any{"type": "array", "items": closedSchema(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": closedSchema(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		props := map[string]any{}
		for f := range t.Fields() {
			name, ok := jsonName(f)
			if !ok {
				continue
			}
			props[name] = closedSchema(f.Type)
		}
		return map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	}
	panic("unhandled kind " + t.Kind().String())
}

func jsonName(f reflect.StructField) (string, bool) {
	if !f.IsExported() {
		return "", false
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return "", false
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		name = f.Name
	}
	return name, true
}

// libraryModules parses the built-in library's policy modules (not tests).
func libraryModules(t *testing.T, policyName string) map[string]*ast.Module {
	t.Helper()
	lib, err := profiles.PolicyLibrary()
	if err != nil {
		t.Fatal(err)
	}
	mods := map[string]*ast.Module{}
	for _, dir := range []string{profiles.PolicyLibraryDir, policyName} {
		entries, err := fs.ReadDir(lib, dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if path.Ext(e.Name()) != ".rego" || strings.HasSuffix(e.Name(), "_test.rego") {
				continue
			}
			b, err := fs.ReadFile(lib, path.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			m, err := ast.ParseModuleWithOpts(path.Join(dir, e.Name()), string(b), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			mods[path.Join(dir, e.Name())] = m
		}
	}
	return mods
}

func typeCheck(mods map[string]*ast.Module) ast.Errors {
	ss := ast.NewSchemaSet()
	ss.Put(ast.SchemaRootRef, closedSchema(reflect.TypeFor[policy.Input]()))
	c := ast.NewCompiler().WithSchemas(ss).WithDefaultRegoVersion(ast.RegoV1)
	c.Compile(mods)
	return c.Errors
}

// Every input field the built-in policies read exists in the input
// document: a misspelt field would be undefined and silently pass.
func TestLibraryReadsOnlyRealInputFields(t *testing.T) {
	for _, name := range profiles.PolicyNames() {
		t.Run(name, func(t *testing.T) {
			if errs := typeCheck(libraryModules(t, name)); len(errs) > 0 {
				t.Fatalf("the policy reads fields the input does not have:\n%v", errs)
			}
		})
	}
	// The check can fail: a typo in a field reached through a local variable.
	mods := libraryModules(t, "restricted")
	typo, err := ast.ParseModuleWithOpts("typo.rego", "package lib.secrun\n\nprobe contains m.sourc if some m in input.spec.mounts\n", ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	mods["typo.rego"] = typo
	if errs := typeCheck(mods); len(errs) == 0 {
		t.Fatal("a misspelt input field passed the type check")
	}
}

// docs/policy-input.schema.json documents exactly the fields of secrun's own
// input types, and the realistic inputs validate against it.
func TestDocumentedSchema(t *testing.T) {
	b, err := os.ReadFile("../docs/policy-input.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	props := func(s map[string]any) []string {
		p, _ := s["properties"].(map[string]any)
		var out []string
		for k := range p {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			defs, _ := doc["definitions"].(map[string]any)
			d, _ := defs[name].(map[string]any)
			return d
		}
		return s
	}
	goFields := func(t reflect.Type) []string {
		var out []string
		for f := range t.Fields() {
			if n, ok := jsonName(f); ok {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	top, _ := doc["properties"].(map[string]any)
	types := map[string]reflect.Type{
		"":          reflect.TypeFor[policy.Input](),
		"request":   reflect.TypeFor[policy.Request](),
		"image":     reflect.TypeFor[policy.ImageInfo](),
		"signature": reflect.TypeFor[policy.SignatureInfo](),
		"host":      reflect.TypeFor[policy.HostInfo](),
	}
	for key, typ := range types {
		s := doc
		if key != "" {
			sub, _ := top[key].(map[string]any)
			s = resolve(sub)
		}
		if got, want := props(s), goFields(typ); !slices.Equal(got, want) {
			t.Errorf("schema %q documents %v, Go type has %v", key, got, want)
		}
	}
	reqProps, _ := resolve(top["request"].(map[string]any))["properties"].(map[string]any)
	vol := resolve(reqProps["volumes"].(map[string]any)["items"].(map[string]any))
	if got, want := props(vol), goFields(reflect.TypeFor[policy.Volume]()); !slices.Equal(got, want) {
		t.Errorf("schema volume documents %v, Go type has %v", got, want)
	}

	// The realistic inputs, as secrun encodes them, match the schema.
	q, err := rego.New(rego.Query("[ok, errs] := json.match_schema(input, data.schema)"),
		rego.Store(inmem.NewFromObject(map[string]any{"schema": doc}))).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"hardened.json", "docker-default.json", "runc-bundle.json"} {
		raw, err := json.Marshal(fixture(t, name))
		if err != nil {
			t.Fatal(err)
		}
		var in any
		if err := json.Unmarshal(raw, &in); err != nil {
			t.Fatal(err)
		}
		rs, err := q.Eval(context.Background(), rego.EvalInput(in))
		if err != nil || len(rs) != 1 {
			t.Fatalf("%s: %v %v", name, rs, err)
		}
		if rs[0].Bindings["ok"] != true {
			t.Errorf("%s does not match the schema: %v", name, rs[0].Bindings["errs"])
		}
	}
	// And the schema can say no.
	rs, err := q.Eval(context.Background(), rego.EvalInput(map[string]any{"request": map[string]any{"privilidged": true}}))
	if err != nil || len(rs) != 1 || rs[0].Bindings["ok"] != false {
		t.Errorf("a malformed input matched the schema: %v %v", rs, err)
	}
}

// The Rego examples in the documentation parse as Rego v1.
func TestDocumentedRegoParses(t *testing.T) {
	b, err := os.ReadFile("../docs/policy-input.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(b), "```rego\n")[1:]
	if len(blocks) == 0 {
		t.Fatal("no rego examples found")
	}
	for i, blk := range blocks {
		src, _, ok := strings.Cut(blk, "```")
		if !ok {
			t.Fatalf("example %d is not closed", i)
		}
		if _, err := ast.ParseModuleWithOpts("example.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1}); err != nil {
			t.Errorf("example %d: %v", i, err)
		}
	}
}
