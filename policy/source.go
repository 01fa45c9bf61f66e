package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/secrun/secrun/profiles"
)

// maxSourceSize bounds every policy, data and input file secrun reads: a
// policy is text a person wrote, and a larger file is a mistake (or
// /dev/zero).
const maxSourceSize = 8 << 20

// sourceFile is one file of a policy, named as error messages should show it.
type sourceFile struct {
	name    string
	content []byte
}

// policySource is everything a policy is made of, before compiling.
type policySource struct {
	name string
	// builtin is set for secrun's own policies, whose use of the clock
	// (exemption expiry) is known.
	builtin bool
	modules []sourceFile
	// dataFiles are the data documents, each placed at dataPath in data
	// (nil: the root).
	dataFiles []dataFile
}

type dataFile struct {
	sourceFile
	path []string
}

func isTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// dataFileNames are the files of a policy directory loaded into data, as
// `opa` does for data.json: the directory they sit in is their path in data.
var dataFileNames = []string{"data.json", "data.yaml", "data.yml"}

// builtinSource reads a built-in policy (and the shared library) from the
// embedded library. withTests adds the policy's and the fixtures' tests.
func builtinSource(name string, withTests bool) (*policySource, error) {
	lib, err := profiles.PolicyLibrary()
	if err != nil {
		return nil, fmt.Errorf("open the built-in policy library: %w", err)
	}
	src := &policySource{name: name, builtin: true}
	dirs := []string{profiles.PolicyLibraryDir, name}
	if withTests {
		dirs = append(dirs, fixturesDir)
	}
	for _, dir := range dirs {
		entries, err := fs.ReadDir(lib, dir)
		if err != nil {
			return nil, fmt.Errorf("read built-in policy %s: %w", dir, err)
		}
		for _, e := range entries {
			n := e.Name()
			if e.IsDir() || path.Ext(n) != ".rego" {
				continue
			}
			// The library's own tests run once, on their own; a policy
			// run carries only the policy's tests.
			if isTestFile(n) && (!withTests || dir == profiles.PolicyLibraryDir) {
				continue
			}
			b, err := fs.ReadFile(lib, path.Join(dir, n))
			if err != nil {
				return nil, fmt.Errorf("read built-in policy file %s: %w", path.Join(dir, n), err)
			}
			src.modules = append(src.modules, sourceFile{name: "builtin:" + path.Join(dir, n), content: b})
		}
	}
	return src, nil
}

// fixturesDir holds Rego test inputs shared by every built-in policy's tests.
const fixturesDir = "fixtures"

// libraryTestSource is the shared library with its own tests.
func libraryTestSource() (*policySource, error) {
	lib, err := profiles.PolicyLibrary()
	if err != nil {
		return nil, fmt.Errorf("open the built-in policy library: %w", err)
	}
	src := &policySource{name: profiles.PolicyLibraryDir}
	for _, dir := range []string{profiles.PolicyLibraryDir, fixturesDir} {
		entries, err := fs.ReadDir(lib, dir)
		if err != nil {
			return nil, fmt.Errorf("read built-in policy %s: %w", dir, err)
		}
		for _, e := range entries {
			if e.IsDir() || path.Ext(e.Name()) != ".rego" {
				continue
			}
			b, err := fs.ReadFile(lib, path.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("read built-in policy file %s: %w", path.Join(dir, e.Name()), err)
			}
			src.modules = append(src.modules, sourceFile{name: "builtin:" + path.Join(dir, e.Name()), content: b})
		}
	}
	return src, nil
}

// pathSource reads a policy from a .rego file or a directory of them.
// Directories are walked recursively; hidden entries are skipped, and
// data.json/data.yaml files become data at their directory's path.
func pathSource(p string, withTests bool) (*policySource, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", p, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w (give a built-in name %s, a .rego file or a directory)", p, err, strings.Join(profiles.PolicyNames(), ", "))
	}
	src := &policySource{name: abs}
	if !fi.IsDir() {
		b, err := readSource(abs)
		if err != nil {
			return nil, err
		}
		src.modules = append(src.modules, sourceFile{name: abs, content: b})
		return src, nil
	}
	err = filepath.WalkDir(abs, func(fp string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if fp != abs && strings.HasPrefix(name, ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		switch {
		case filepath.Ext(name) == ".rego":
			if isTestFile(name) && !withTests {
				return nil
			}
			b, err := readSource(fp)
			if err != nil {
				return err
			}
			src.modules = append(src.modules, sourceFile{name: fp, content: b})
		case slices.Contains(dataFileNames, name):
			b, err := readSource(fp)
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(abs, filepath.Dir(fp))
			if err != nil {
				return fmt.Errorf("policy data %s: %w", fp, err)
			}
			var dp []string
			if rel != "." {
				dp = strings.Split(filepath.ToSlash(rel), "/")
			}
			src.dataFiles = append(src.dataFiles, dataFile{sourceFile: sourceFile{name: fp, content: b}, path: dp})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policy directory %s: %w", p, err)
	}
	if len(src.modules) == 0 {
		return nil, fmt.Errorf("policy directory %s has no .rego files", p)
	}
	return src, nil
}

// readSource reads a regular file of at most maxSourceSize bytes.
func readSource(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSourceSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	if len(b) > maxSourceSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", p, maxSourceSize)
	}
	return b, nil
}

// mergeData places each data document at its path and merges them. Two
// documents that set the same leaf differently are an error, not a silent
// override.
func mergeData(files []dataFile) (map[string]any, error) {
	root := map[string]any{}
	for _, f := range files {
		doc, err := decodeDataDocument(f.name, f.content)
		if err != nil {
			return nil, err
		}
		if err := mergeAt(root, f.path, doc, f.name); err != nil {
			return nil, err
		}
	}
	return root, nil
}

func mergeAt(root map[string]any, at []string, doc map[string]any, name string) error {
	node := root
	for _, k := range at {
		next, ok := node[k]
		if !ok {
			m := map[string]any{}
			node[k] = m
			node = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return fmt.Errorf("policy data %s: data.%s is already set to a non-object", name, strings.Join(at, "."))
		}
		node = m
	}
	return mergeObjects(node, doc, name, at)
}

func mergeObjects(dst, src map[string]any, name string, at []string) error {
	for k, v := range src {
		old, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		om, ok1 := old.(map[string]any)
		nm, ok2 := v.(map[string]any)
		if !ok1 || !ok2 {
			return fmt.Errorf("policy data %s: data.%s is set by two data files", name, strings.Join(append(slices.Clone(at), k), "."))
		}
		if err := mergeObjects(om, nm, name, append(slices.Clone(at), k)); err != nil {
			return err
		}
	}
	return nil
}

// sourceHash is a stable digest of a policy: its modules by name and
// content, then its data as canonical JSON.
func sourceHash(src *policySource, data map[string]any) (string, error) {
	mods := slices.Clone(src.modules)
	slices.SortFunc(mods, func(a, b sourceFile) int { return strings.Compare(a.name, b.name) })
	h := sha256.New()
	for _, m := range mods {
		// The file name inside the policy, not where it was read from, so
		// the same policy copied elsewhere hashes the same.
		fmt.Fprintf(h, "module %q %d\n", hashName(src, m.name), len(m.content))
		h.Write(m.content)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("hash policy data: %w", err)
	}
	fmt.Fprintf(h, "data %d\n", len(b))
	h.Write(b)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func hashName(src *policySource, name string) string {
	if rel, err := filepath.Rel(src.name, name); err == nil && filepath.IsAbs(name) {
		if rel == "." {
			return filepath.Base(name)
		}
		return filepath.ToSlash(rel)
	}
	return name
}

func hashBytes(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// decodeJSONStrict decodes one JSON value and refuses trailing data.
func decodeJSONStrict(b []byte, v any, disallowUnknown bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if disallowUnknown {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}
