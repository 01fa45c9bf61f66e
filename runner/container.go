package runner

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/secrun/secrun/policy"
)

// Container is secrun's record of a container, kept in its state directory
// for as long as the container exists (running or exited, until removed).
type Container struct {
	ID          string    `json:"id"`
	Name        string    `json:"name,omitempty"`
	Image       string    `json:"image"`
	ImageDigest string    `json:"image_digest"`
	Args        []string  `json:"args"`
	Created     time.Time `json:"created"`
	IDs         IDRange   `json:"ids"`
	Remove      bool      `json:"remove,omitempty"`
	Detached    bool      `json:"detached,omitempty"`
	// Status is secrun's last known status: created, running or exited.
	// `secrun ps` asks the runtime for the live one.
	Status   string `json:"status"`
	ExitCode int    `json:"exit_code,omitempty"`
	Pid      int    `json:"pid,omitempty"`
	Cgroups  string `json:"cgroups"`
	// Request is what was admitted, kept so that exec and audit can build
	// the same policy input later.
	Request policy.Request `json:"request"`
}

// layout names the files of one host's secrun state under Root.
type layout struct{ Root string }

// A container's directory holds what outlives a crash: its record and,
// detached, its output. What runc needs while it runs (the spec, the rootfs
// mount point and overlay layers, runc's log and pid file) is in bundle/,
// a small tmpfs of its own when the root filesystem is read-only
// (mountBundle). A foreground --rm container with a read-only root has its
// whole directory on the tmpfs.
func (l layout) containers() string         { return filepath.Join(l.Root, "containers") }
func (l layout) dir(id string) string       { return filepath.Join(l.containers(), id) }
func (l layout) record(id string) string    { return filepath.Join(l.dir(id), "container.json") }
func (l layout) outputLog(id string) string { return filepath.Join(l.dir(id), "output.log") }
func (l layout) bundle(id string) string    { return filepath.Join(l.dir(id), "bundle") }
func (l layout) rootfs(id string) string    { return filepath.Join(l.bundle(id), "rootfs") }
func (l layout) fs(id string) string        { return filepath.Join(l.bundle(id), "fs") }
func (l layout) runcLog(id string) string   { return filepath.Join(l.bundle(id), "runc.log") }
func (l layout) pidFile(id string) string   { return filepath.Join(l.bundle(id), "pid") }

// unmount drops what is mounted for container id once it has exited: the
// rootfs, then the bundle's tmpfs. The record and the output log stay,
// unless the container's whole directory is a tmpfs (a foreground --rm
// container's), which goes too.
func (l layout) unmount(id string) error {
	return errors.Join(unmountRootfs(l.fs(id), l.rootfs(id)), unmountBundle(l.bundle(id)), unmountBundle(l.dir(id)))
}

func (l layout) runcRoot() string            { return filepath.Join(l.Root, "runc") }
func (l layout) names() string               { return filepath.Join(l.Root, "names") }
func (l layout) nameFile(name string) string { return filepath.Join(l.names(), name) }
func (l layout) userns() usernsAllocator {
	return usernsAllocator{dir: filepath.Join(l.Root, "userns")}
}

func newID() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("container id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// validNameRE with a length check: a bounded repetition ({0,127}) would
// compile into a program of 128 copies at every start.
var validNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func validName(s string) bool { return len(s) <= 128 && validNameRE.MatchString(s) }

// reserveName claims a container name for id; names are unique per host.
func (l layout) reserveName(name, id string) error {
	if !validName(name) {
		return fmt.Errorf("invalid --name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", name)
	}
	if err := os.MkdirAll(l.names(), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(l.nameFile(name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nameInUseError(name)
	}
	if err != nil {
		return err
	}
	_, werr := f.WriteString(id)
	return errors.Join(werr, f.Close())
}

type nameInUseError string

func (e nameInUseError) Error() string {
	return fmt.Sprintf("the name %q is already in use by another container: remove it with 'secrun rm %s' or choose another --name", string(e), string(e))
}

func (l layout) releaseName(name string) error {
	if name == "" {
		return nil
	}
	err := os.Remove(l.nameFile(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// save writes the record atomically: a reader sees the old or the new record.
func (l layout) save(c *Container) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(l.record(c.ID), data, 0o600)
}

func (l layout) load(id string) (*Container, error) {
	data, err := os.ReadFile(l.record(id))
	if err != nil {
		return nil, err
	}
	var c Container
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("container %s: corrupt record: %w", id, err)
	}
	return &c, nil
}

// find resolves a user's reference (name, full id or unique id prefix).
func (l layout) find(ref string) (*Container, error) {
	if ref == "" {
		return nil, errors.New("no container named")
	}
	if data, err := os.ReadFile(l.nameFile(ref)); err == nil && validName(ref) {
		return l.load(string(data))
	}
	entries, err := os.ReadDir(l.containers())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	var match []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ref) {
			match = append(match, e.Name())
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("no such container: %s", ref)
	case 1:
		return l.load(match[0])
	default:
		return nil, fmt.Errorf("container reference %q is ambiguous: give more of the id", ref)
	}
}

// list returns the containers with a record, newest first, and the ids of
// directories without one: being created or removed right now, or left by
// a host restart (stale_linux.go).
func (l layout) list() (out []*Container, unrecorded []string, err error) {
	entries, err := os.ReadDir(l.containers())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		c, err := l.load(e.Name())
		if errors.Is(err, fs.ErrNotExist) {
			unrecorded = append(unrecorded, e.Name())
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, unrecorded, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it into place, so that a crash leaves the old file or the new one,
// never half of either.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	return replaceFile(path, data, perm, true)
}

// replaceFile is writeFileAtomic with the sync optional: a reader sees the
// old file or the new one, but after a crash the new one may be empty. It
// is for files that a crash makes stale anyway.
func replaceFile(path string, data []byte, perm os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	var serr error
	if sync {
		serr = f.Sync()
	}
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr, os.Chmod(tmp, perm)); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
