package wrapper

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/secrun/secrun/internal/limitio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/profiles"
)

// maxSpecSize bounds the config.json and process files secrun-runc reads.
const maxSpecSize = 16 << 20

// OrigSuffix names the copy of the engine's config.json kept beside an
// adjusted one.
const OrigSuffix = ".orig"

// Bundle is a bundle's spec as the engine wrote it and as runc will run it.
type Bundle struct {
	Dir  string
	Path string // Dir/config.json
	// Orig is the engine's config.json; Final is what runc reads, equal to
	// Orig unless the hardening changed something.
	Orig, Final []byte
	// OrigSpec and Spec are Orig and Final decoded the way runc decodes
	// them (encoding/json into the runtime-spec types).
	OrigSpec, Spec *specs.Spec
	// Changes lists the hardening applied, one short phrase each.
	Changes []string
	// onDisk is config.json as it is now.
	onDisk []byte
}

// ReadBundle reads dir/config.json. When the file is a spec secrun-runc
// adjusted earlier (the bundle is reused), the engine's original beside it
// is what counts, so hardening is applied to it again rather than on top.
func ReadBundle(dir string) (*Bundle, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	b := &Bundle{Dir: abs, Path: filepath.Join(abs, "config.json")}
	if b.onDisk, err = readLimited(b.Path); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", abs, err)
	}
	b.Orig = b.onDisk
	var probe struct {
		Annotations map[string]string `json:"annotations"`
	}
	if json.Unmarshal(b.onDisk, &probe) == nil {
		if want := probe.Annotations[AnnotationOriginal]; want != "" {
			if orig, err := readLimited(b.Path + OrigSuffix); err == nil && hashOf(orig) == want {
				b.Orig = orig
			}
		}
	}
	if b.OrigSpec, err = decodeSpec(b.Orig); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", abs, err)
	}
	b.Final, b.Spec = b.Orig, b.OrigSpec
	return b, nil
}

func decodeSpec(data []byte) (*specs.Spec, error) {
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Harden applies h to the bundle's original spec. The JSON is patched, not
// re-encoded, so fields this build's runtime-spec types do not know reach
// runc unchanged.
func (b *Bundle) Harden(h Hardening) error {
	var changes []string
	top, err := rawObject(b.Orig)
	if err != nil {
		return fmt.Errorf("config.json: %w", err)
	}
	if h.NoNewPrivileges && b.OrigSpec.Process != nil && !b.OrigSpec.Process.NoNewPrivileges {
		proc, err := rawObject(getKey(top, "process"))
		if err != nil {
			return fmt.Errorf("config.json process: %w", err)
		}
		setKey(proc, "noNewPrivileges", json.RawMessage("true"))
		if err := setObject(top, "process", proc); err != nil {
			return err
		}
		changes = append(changes, "process.noNewPrivileges=true")
	}
	if h.Seccomp == "default" && (b.OrigSpec.Linux == nil || b.OrigSpec.Linux.Seccomp == nil) {
		sc, err := DefaultSeccomp(boundingCaps(b.OrigSpec))
		if err != nil {
			return err
		}
		scJSON, err := json.Marshal(sc)
		if err != nil {
			return fmt.Errorf("encoding the default seccomp profile: %w", err)
		}
		linux, err := rawObject(getKey(top, "linux"))
		if err != nil {
			return fmt.Errorf("config.json linux: %w", err)
		}
		setKey(linux, "seccomp", scJSON)
		if err := setObject(top, "linux", linux); err != nil {
			return err
		}
		changes = append(changes, "linux.seccomp=default")
	}
	if len(changes) == 0 {
		return nil
	}
	// The annotation ties the adjusted spec to the original kept beside it.
	ann := map[string]json.RawMessage{}
	if raw := getKey(top, "annotations"); len(raw) > 0 && !bytes.Equal(raw, []byte("null")) {
		if err := json.Unmarshal(raw, &ann); err != nil {
			return fmt.Errorf("config.json annotations: %w", err)
		}
	}
	hash, err := json.Marshal(hashOf(b.Orig))
	if err != nil {
		return err
	}
	setKey(ann, AnnotationOriginal, hash)
	if err := setObject(top, "annotations", ann); err != nil {
		return err
	}
	final, err := json.Marshal(top)
	if err != nil {
		return fmt.Errorf("encoding the adjusted spec: %w", err)
	}
	spec, err := decodeSpec(final)
	if err != nil {
		return fmt.Errorf("the adjusted spec does not decode: %w", err)
	}
	b.Final, b.Spec, b.Changes = final, spec, changes
	return nil
}

// Adjusted reports whether runc must read something other than what is on
// disk now.
func (b *Bundle) Adjusted() bool { return !bytes.Equal(b.Final, b.onDisk) }

// Write puts the final spec in place: the original is kept as
// config.json.orig, then config.json is replaced by rename, so runc reads
// either the old file or the complete new one. Nothing is written when the
// file on disk is already final.
func (b *Bundle) Write() error {
	if !b.Adjusted() {
		return nil
	}
	st, err := os.Stat(b.Path)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", b.Dir, err)
	}
	mode := st.Mode().Perm()
	if !bytes.Equal(b.Final, b.Orig) {
		if err := writeAtomic(b.Path+OrigSuffix, b.Orig, mode); err != nil {
			return fmt.Errorf("keeping the original spec: %w", err)
		}
	}
	if err := writeAtomic(b.Path, b.Final, mode); err != nil {
		return fmt.Errorf("writing the adjusted spec: %w", err)
	}
	return nil
}

// writeAtomic replaces path by rename. There is no fsync: the bundle is
// runtime state that the engine recreates after a crash, and the audit
// record carries the hash of what was written.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".secrun-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Chmod(mode)
	if err := errors.Join(werr, cerr, f.Close()); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}

var defaultSeccompProfile = sync.OnceValues(profiles.DefaultSeccompUnchecked)

// DefaultSeccomp is secrun's default seccomp profile for a container granted
// caps: what runner.DefaultSeccompSource("default", caps) gives `secrun
// run`. That function also checks, by compiling the filter and running it
// in a BPF interpreter, that runc can still get from loading the filter to
// the container's first execve. For the built-in profile the check never
// adds anything, whatever the capabilities and no_new_privs (pinned by
// TestDefaultSeccompPermitsRuntime), and it costs ~30 ms of libseccomp work
// per container, so it runs in that test instead of on every create.
func DefaultSeccomp(caps []string) (*specs.LinuxSeccomp, error) {
	// The embedded profile is validated by its tests (as for `secrun
	// run`): loading libseccomp to check it again costs ~1.5 ms per create.
	p, err := defaultSeccompProfile()
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	s, err := p.ToOCIValidated(caps)
	if err != nil {
		return nil, fmt.Errorf("default seccomp profile: %w", err)
	}
	return s, nil
}

func boundingCaps(s *specs.Spec) []string {
	if s.Process == nil || s.Process.Capabilities == nil {
		return nil
	}
	return slices.Clone(s.Process.Capabilities.Bounding)
}

func rawObject(data []byte) (map[string]json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(data) == 0 || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return m, nil
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	return m, nil
}

// getKey returns m's value for key, matched the way encoding/json matches
// struct fields (case-insensitively, the last one winning).
func getKey(m map[string]json.RawMessage, key string) json.RawMessage {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return nil
}

// setKey sets key in m after removing every spelling of it that
// encoding/json would also read into the same field.
func setKey(m map[string]json.RawMessage, key string, v json.RawMessage) {
	for k := range m {
		if strings.EqualFold(k, key) {
			delete(m, k)
		}
	}
	m[key] = v
}

func setObject[V any](top map[string]json.RawMessage, key string, obj map[string]V) error {
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", key, err)
	}
	setKey(top, key, data)
	return nil
}

func readLimited(path string) ([]byte, error) {
	return limitio.ReadFile(path, maxSpecSize)
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
