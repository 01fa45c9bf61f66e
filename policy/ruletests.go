//go:build !secrun_noengine

package policy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/secrun/secrun/profiles"
)

// RunTests runs the Rego tests (`test_*` rules in *_test.rego files) of a
// policy directory or file, as `opa test` does, and writes a report to w.
// dir "" runs the built-in library's own tests: the shared library's, then
// each built-in policy's. A test that errors counts as failed. err is for
// tests that could not run: unreadable or uncompilable sources, no tests.
func RunTests(ctx context.Context, dir string, w io.Writer) (passed, failed int, err error) {
	var srcs []*policySource
	if dir == "" {
		lib, err := libraryTestSource()
		if err != nil {
			return 0, 0, err
		}
		srcs = append(srcs, lib)
		for _, name := range profiles.PolicyNames() {
			src, err := builtinSource(name, true)
			if err != nil {
				return 0, 0, err
			}
			srcs = append(srcs, src)
		}
	} else {
		src, err := pathSource(dir, true)
		if err != nil {
			return 0, 0, err
		}
		srcs = append(srcs, src)
	}
	for _, src := range srcs {
		if len(srcs) > 1 {
			fmt.Fprintf(w, "== %s\n", src.name)
		}
		p, f, err := runSourceTests(ctx, src, w)
		passed += p
		failed += f
		if err != nil {
			return passed, failed, err
		}
	}
	if passed+failed == 0 {
		return 0, 0, fmt.Errorf("no tests found in %s (tests are test_* rules in *_test.rego files)", describeDir(dir))
	}
	return passed, failed, nil
}

func describeDir(dir string) string {
	if dir == "" {
		return "the built-in policy library"
	}
	return dir
}

func runSourceTests(ctx context.Context, src *policySource, w io.Writer) (passed, failed int, err error) {
	mods, err := parseModules(src)
	if err != nil {
		return 0, 0, plainError(err)
	}
	data, err := mergeData(src.dataFiles)
	if err != nil {
		return 0, 0, err
	}
	store := inmem.NewFromObjectWithOpts(data, inmem.OptRoundTripOnWrite(false))
	r := tester.NewRunner().
		SetCompiler(newCompiler().WithEnablePrintStatements(true)).
		SetDefaultRegoVersion(ast.RegoV1).
		SetStore(store).
		SetModules(mods).
		CapturePrintOutput(true).
		RaiseBuiltinErrors(true)
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("policy tests in %s do not compile: %s", src.name, strings.Join(astErrorText(err), "; "))
	}
	var results []*tester.Result
	for res := range ch {
		results = append(results, res)
	}
	// Results arrive as tests finish; report them in source order.
	slices.SortFunc(results, func(a, b *tester.Result) int {
		if c := strings.Compare(a.Location.File, b.Location.File); c != 0 {
			return c
		}
		return a.Location.Row - b.Location.Row
	})
	for _, res := range results {
		switch {
		case res.Skip:
		case res.Fail || res.Error != nil:
			failed++
		default:
			passed++
		}
	}
	replay := make(chan *tester.Result, len(results))
	for _, res := range results {
		replay <- res
	}
	close(replay)
	rep := tester.PrettyReporter{Output: w, FailureLine: true}
	if err := rep.Report(replay); err != nil {
		return passed, failed, fmt.Errorf("report policy tests: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return passed, failed, errors.Join(errors.New("policy tests interrupted"), err)
	}
	return passed, failed, nil
}

// plainError turns a load denial into an ordinary error: a test run that
// cannot compile is a failed command, not a policy decision.
func plainError(err error) error {
	var denied *DeniedError
	if errors.As(err, &denied) {
		return errors.New(denied.Reason)
	}
	return err
}
