package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/secrun/secrun/policy"
	"github.com/secrun/secrun/profiles"
)

// Engines a FleetContainer can come from.
const (
	EngineSecrun     = "secrun"
	EngineRunc       = "runc"
	EngineCrun       = "crun"
	EngineContainerd = "containerd"
	EngineDocker     = "docker"
	EnginePodman     = "podman"
)

// SignatureNotChecked is the signature error of a container whose image
// the audit knows but did not verify.
const SignatureNotChecked = "not checked by audit"

// DiscoverOptions says where to look for running containers. Every path is
// read, never written; a path that does not exist holds no containers. Tests
// point these at private daemons; DefaultDiscoverOptions is a stock host.
type DiscoverOptions struct {
	// DockerSocket is the Docker API's unix socket, asked for names, images
	// and published ports; "" does not ask Docker.
	DockerSocket string `json:"docker_socket,omitempty"`
	// DockerTimeout bounds each Docker API call; 0 means 5 seconds.
	DockerTimeout time.Duration `json:"-"`
	// ContainerdStateDirs are containerd state directories (containerd's
	// --state, and Docker's embedded containerd): tasks' bundles live in
	// io.containerd.runtime.v2.task/NAMESPACE/ID below them.
	ContainerdStateDirs []string `json:"containerd_state,omitempty"`
	// RuncRoots are runc --root directories: ROOT/ID/state.json, or
	// ROOT/NAMESPACE/ID/state.json as containerd's shim lays them out.
	RuncRoots []string `json:"runc_roots,omitempty"`
	// CrunRoots are crun state directories: ROOT/ID/status.
	CrunRoots []string `json:"crun_roots,omitempty"`
	// Podman are podman/containers-storage stores.
	Podman []PodmanStorage `json:"podman,omitempty"`
	// SecrunRoots are secrun state directories (secrun --root): its runc
	// state is ROOT/runc, its records ROOT/containers/ID/container.json.
	SecrunRoots []string `json:"secrun_roots,omitempty"`
}

// PodmanStorage is one containers-storage store: Root is podman --root
// (bundles in Root/DRIVER-containers/ID/userdata), RunRoot is --runroot
// (the container's pidfile).
type PodmanStorage struct {
	Root    string `json:"root"`
	RunRoot string `json:"runroot"`
}

// DefaultDiscoverOptions are the places engines keep their state on a stock
// Linux host run as root.
func DefaultDiscoverOptions() DiscoverOptions {
	return DiscoverOptions{
		DockerSocket:        "/var/run/docker.sock",
		ContainerdStateDirs: []string{"/run/containerd", "/run/docker/containerd/daemon"},
		RuncRoots:           []string{"/run/runc", "/run/containerd/runc", "/run/docker/runtime-runc"},
		CrunRoots:           []string{"/run/crun"},
		Podman:              []PodmanStorage{{Root: "/var/lib/containers/storage", RunRoot: "/run/containers/storage"}},
		SecrunRoots:         []string{"/var/lib/secrun"},
	}
}

// FleetContainer is one running container as found on the host.
type FleetContainer struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Engine is who started it: secrun, docker, podman, containerd, runc
	// or crun (the last two for containers no engine claims).
	Engine string `json:"engine"`
	// Namespace is the containerd namespace ("moby" for Docker).
	Namespace string `json:"namespace,omitempty"`
	// Pid is the container's init process as the host sees it.
	Pid int `json:"pid"`
	// Bundle is the directory holding the config.json that was read.
	Bundle string `json:"bundle,omitempty"`
	// Sources are where the container was found (state files, API).
	Sources   []string             `json:"sources"`
	Image     policy.ImageInfo     `json:"image"`
	Signature policy.SignatureInfo `json:"signature"`
	// Ports are host ports the engine says it publishes.
	Ports []int `json:"ports,omitempty"`
	// Spec is the declared OCI config; nil when it could not be read.
	Spec *specs.Spec `json:"-"`
	// Problems say what could not be read about this container.
	Problems []string `json:"problems,omitempty"`

	start    uint64 // init start time from the runtime's state, 0 if unknown
	created  bool   // runtime state says created, not yet started
	live     bool   // the pid came from the engine's API just now
	priority int
}

// DiscoverySource is one place discovery looked at and what it held.
type DiscoverySource struct {
	Kind  string `json:"kind"`
	Path  string `json:"path"`
	Found int    `json:"found"`
	// Status is "ok", "absent" or the error.
	Status string `json:"status"`
}

// Discover finds every running container in the places opts names and reads
// its declared config. Containers that were found are returned even when
// some place could not be read; err then joins what failed.
func Discover(ctx context.Context, opts DiscoverOptions) ([]FleetContainer, error) {
	var hostMnt uint64
	if ns, _, err := hostNamespaces("/proc"); err == nil {
		hostMnt = ns["mount"]
	}
	cs, srcs, err := discover(ctx, opts, hostMnt)
	var errs []error
	for _, s := range srcs {
		if s.Status != "ok" && s.Status != "absent" {
			errs = append(errs, fmt.Errorf("%s %s: %s", s.Kind, s.Path, s.Status))
		}
	}
	return cs, errors.Join(append(errs, err)...)
}

// priorities: when several places know one container, the most specific
// engine names it.
const (
	prioRunc = iota
	prioContainerd
	prioSecrun
	prioPodman
	prioDocker
)

type discoverer struct {
	opts    DiscoverOptions
	hostMnt uint64
	mu      sync.Mutex
	byPid   map[int]*FleetContainer
	srcs    []DiscoverySource
}

func discover(ctx context.Context, opts DiscoverOptions, hostMnt uint64) ([]FleetContainer, []DiscoverySource, error) {
	d := &discoverer{opts: opts, hostMnt: hostMnt, byPid: map[int]*FleetContainer{}}
	for _, r := range opts.SecrunRoots {
		d.scanRuncRoot(filepath.Join(r, "runc"), "secrun")
	}
	for _, r := range opts.RuncRoots {
		d.scanRuncRoot(r, "runc")
	}
	for _, r := range opts.CrunRoots {
		d.scanCrunRoot(r)
	}
	for _, s := range opts.ContainerdStateDirs {
		d.scanContainerd(s)
	}
	for _, p := range opts.Podman {
		d.scanPodman(p)
	}
	for _, r := range opts.SecrunRoots {
		d.enrichSecrun(r)
	}
	if opts.DockerSocket != "" {
		d.askDocker(ctx, opts.DockerSocket)
	}
	if err := ctx.Err(); err != nil {
		return nil, d.srcs, err
	}
	var out []FleetContainer
	for _, c := range d.byPid {
		if c.created {
			continue
		}
		out = append(out, *c)
	}
	fleetParallel(len(out), func(i int) { loadSpec(&out[i]) })
	for i := range out {
		fillIdentity(&out[i])
	}
	slices.SortFunc(out, func(a, b FleetContainer) int {
		return cmp.Or(cmp.Compare(a.Engine, b.Engine), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return out, d.srcs, nil
}

func (d *discoverer) source(kind, path string, found int, err error) {
	s := DiscoverySource{Kind: kind, Path: path, Found: found, Status: "ok"}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.Status = "absent"
	case err != nil:
		s.Status = fleetErrText(err)
	}
	d.srcs = append(d.srcs, s)
}

// add merges what one place knows about a container into what others
// knew, keyed by its init pid (unique among live processes). A pid whose
// process is gone, or is not the process the runtime started, is skipped.
func (d *discoverer) add(c FleetContainer, cgroupHint string) bool {
	if c.Pid <= 0 {
		return false
	}
	if !d.alive(c, cgroupHint) {
		return false
	}
	if len(c.Sources) > 0 {
		if err := userStateClaims(c.Sources[0], c.Pid); err != nil {
			d.mu.Lock()
			d.source("ownership", c.Sources[0], 0, err)
			d.mu.Unlock()
			return false
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	have, ok := d.byPid[c.Pid]
	if !ok {
		cc := c
		d.byPid[c.Pid] = &cc
		return true
	}
	if c.priority > have.priority {
		have.Engine, have.priority = c.Engine, c.priority
	}
	have.Sources = append(have.Sources, c.Sources...)
	have.Name = cmp.Or(have.Name, c.Name)
	have.ID = cmp.Or(have.ID, c.ID)
	have.Namespace = cmp.Or(have.Namespace, c.Namespace)
	have.Bundle = cmp.Or(have.Bundle, c.Bundle)
	have.Image.Ref = cmp.Or(have.Image.Ref, c.Image.Ref)
	have.Image.Digest = cmp.Or(have.Image.Digest, c.Image.Digest)
	have.created = have.created || c.created
	if have.start == 0 {
		have.start = c.start
	}
	return true
}

// alive checks that pid is still the container's init: its start time
// matches the runtime's record when there is one; otherwise it must live in
// a mount namespace of its own (runtimes always unshare it) and in a cgroup
// that names the container, so that a stale pid file cannot pin a host
// process or another container on this one.
func (d *discoverer) alive(c FleetContainer, cgroupHint string) bool {
	stat, err := readBounded(filepath.Join("/proc", strconv.Itoa(c.Pid), "stat"))
	if err != nil {
		return false
	}
	start, err := parseStatStart(stat)
	if err != nil {
		return false
	}
	if c.start != 0 {
		return start == c.start
	}
	if c.live {
		return true
	}
	link, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(c.Pid), "ns", "mnt"))
	if err != nil {
		return false
	}
	if ino, err := parseNSLink("mnt", link); err != nil || ino == d.hostMnt {
		return false
	}
	raw, err := readBounded(filepath.Join("/proc", strconv.Itoa(c.Pid), "cgroup"))
	if err != nil {
		return false
	}
	lines, err := parseProcCgroup(raw)
	if err != nil {
		return false
	}
	for _, l := range lines {
		if (c.ID != "" && strings.Contains(l.Path, c.ID)) || (cgroupHint != "" && strings.HasSuffix(l.Path, cgroupHint)) {
			return true
		}
	}
	return false
}

// scanRuncRoot reads runc state directories: ROOT/ID/state.json, and
// ROOT/NS/ID/state.json for containerd's and Docker's shims.
func (d *discoverer) scanRuncRoot(root, kind string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		d.source(kind, root, 0, err)
		return
	}
	type job struct{ dir, ns string }
	var jobs []job
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
			jobs = append(jobs, job{dir: dir})
			continue
		}
		sub, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, s := range sub {
			if s.IsDir() {
				jobs = append(jobs, job{dir: filepath.Join(dir, s.Name()), ns: e.Name()})
			}
		}
	}
	var found int
	var mu sync.Mutex
	var errs []error
	fleetParallel(len(jobs), func(i int) {
		j := jobs[i]
		raw, err := readBounded(filepath.Join(j.dir, "state.json"))
		if errors.Is(err, fs.ErrNotExist) {
			return // removed meanwhile, or not a container directory
		}
		var st runcState
		if err == nil {
			st, err = parseRuncState(raw)
		}
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("%s: %w", j.dir, err))
			mu.Unlock()
			return
		}
		_, ferr := os.Lstat(filepath.Join(j.dir, "exec.fifo"))
		c := FleetContainer{ID: st.ID, Pid: st.InitPid, Namespace: j.ns, Bundle: st.bundleLabel,
			Sources: []string{filepath.Join(j.dir, "state.json")}, start: st.InitStart, created: ferr == nil}
		d.classify(&c, kind)
		if d.add(c, "") {
			mu.Lock()
			found++
			mu.Unlock()
		}
	})
	d.source(kind, root, found, errors.Join(errs...))
}

// classify names the engine of a container found in a runtime's state
// directory by where its bundle lives.
func (d *discoverer) classify(c *FleetContainer, kind string) {
	c.Engine, c.priority = EngineRunc, prioRunc
	switch kind {
	case "crun":
		c.Engine = EngineCrun
	case "secrun":
		c.Engine, c.priority = EngineSecrun, prioSecrun
		return
	}
	b := c.Bundle
	for _, r := range d.opts.SecrunRoots {
		if pathWithin(b, filepath.Join(r, "containers")) {
			c.Engine, c.priority = EngineSecrun, prioSecrun
			return
		}
	}
	for _, p := range d.opts.Podman {
		if pathWithin(b, p.Root) {
			c.Engine, c.priority = EnginePodman, prioPodman
			return
		}
	}
	inContainerd := slices.ContainsFunc(d.opts.ContainerdStateDirs, func(s string) bool { return pathWithin(b, s) })
	// A runc root laid out ROOT/NAMESPACE/ID is a containerd shim's.
	if inContainerd || c.Namespace != "" {
		c.Engine, c.priority = EngineContainerd, prioContainerd
		if c.Namespace == "moby" {
			c.Engine, c.priority = EngineDocker, prioDocker
		}
	}
}

func pathWithin(p, dir string) bool {
	if p == "" || dir == "" {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

func (d *discoverer) scanCrunRoot(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		d.source("crun", root, 0, err)
		return
	}
	var found int
	var errs []error
	for _, e := range ents {
		dir := filepath.Join(root, e.Name())
		raw, err := readBounded(filepath.Join(dir, "status"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var st crunStatus
		if err == nil {
			st, err = parseCrunStatus(raw)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", dir, err))
			continue
		}
		_, ferr := os.Lstat(filepath.Join(dir, "exec.fifo"))
		c := FleetContainer{ID: e.Name(), Pid: st.Pid, Bundle: st.Bundle, Sources: []string{filepath.Join(dir, "status")},
			start: st.StartTime, created: ferr == nil}
		d.classify(&c, "crun")
		if d.add(c, st.Cgroup) {
			found++
		}
	}
	d.source("crun", root, found, errors.Join(errs...))
}

// scanContainerd reads containerd's task directories: each holds the
// bundle's config.json, init.pid, and options.json naming the runc root.
func (d *discoverer) scanContainerd(state string) {
	if _, err := os.Stat(state); err != nil {
		d.source("containerd", state, 0, err)
		return
	}
	var found int
	var errs []error
	for _, rt := range []string{"io.containerd.runtime.v2.task", "io.containerd.runtime.v1.linux"} {
		nss, err := os.ReadDir(filepath.Join(state, rt))
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		for _, ns := range nss {
			ids, err := os.ReadDir(filepath.Join(state, rt, ns.Name()))
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, id := range ids {
				dir := filepath.Join(state, rt, ns.Name(), id.Name())
				raw, err := readBounded(filepath.Join(dir, "init.pid"))
				if errors.Is(err, fs.ErrNotExist) {
					continue // no task process (yet)
				}
				var pid int
				if err == nil {
					pid, err = parsePidFile(raw)
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", dir, err))
					continue
				}
				c := FleetContainer{ID: id.Name(), Pid: pid, Namespace: ns.Name(), Bundle: dir,
					Engine: EngineContainerd, priority: prioContainerd, Sources: []string{dir}}
				if ns.Name() == "moby" {
					c.Engine, c.priority = EngineDocker, prioDocker
				}
				c.start, c.created = containerdRuncState(dir, ns.Name(), id.Name())
				if d.add(c, "") {
					found++
				}
			}
		}
	}
	d.source("containerd", state, found, errors.Join(errs...))
}

// containerdRuncState finds the runc state of a containerd task through the
// shim's options.json (its runc root; containerd's default otherwise).
func containerdRuncState(taskDir, ns, id string) (start uint64, created bool) {
	root := "/run/containerd/runc"
	if raw, err := readBounded(filepath.Join(taskDir, "options.json")); err == nil {
		var o struct {
			Root string `json:"root"`
		}
		if json.Unmarshal(raw, &o) == nil && o.Root != "" {
			root = o.Root
		}
	}
	dir := filepath.Join(root, ns, id)
	raw, err := readBounded(filepath.Join(dir, "state.json"))
	if err != nil {
		return 0, false
	}
	st, err := parseRuncState(raw)
	if err != nil {
		return 0, false
	}
	_, ferr := os.Lstat(filepath.Join(dir, "exec.fifo"))
	return st.InitStart, ferr == nil
}

// storageContainer is an entry of containers-storage's containers.json.
type storageContainer struct {
	ID       string   `json:"id"`
	Names    []string `json:"names"`
	Image    string   `json:"image"`
	Metadata string   `json:"metadata"`
}

type storageImage struct {
	ID     string   `json:"id"`
	Digest string   `json:"digest"`
	Names  []string `json:"names"`
}

// scanPodman reads a containers-storage store: containers.json for ids,
// names and images, images.json for digests, and each container's pidfile
// under the run root. podman itself is never run.
func (d *discoverer) scanPodman(p PodmanStorage) {
	lists, err := filepath.Glob(filepath.Join(p.Root, "*-containers", "containers.json"))
	if err == nil && len(lists) == 0 {
		_, err = os.Stat(p.Root)
		if err == nil {
			err = fs.ErrNotExist
		}
	}
	if err != nil {
		d.source("podman", p.Root, 0, err)
		return
	}
	var found int
	var errs []error
	for _, list := range lists {
		driverDir := filepath.Dir(list) // ROOT/DRIVER-containers
		driver := strings.TrimSuffix(filepath.Base(driverDir), "-containers")
		raw, err := readBounded(list)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cs, err := parseStorageContainers(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", list, err))
			continue
		}
		images := map[string]storageImage{}
		if raw, err := readBounded(filepath.Join(p.Root, driver+"-images", "images.json")); err == nil {
			if is, err := parseStorageImages(raw); err == nil {
				for _, im := range is {
					images[im.ID] = im
				}
			}
		}
		for _, sc := range cs {
			userdata := filepath.Join(driverDir, sc.ID, "userdata")
			runData := filepath.Join(p.RunRoot, driver+"-containers", sc.ID, "userdata")
			raw, err := readBounded(filepath.Join(runData, "pidfile"))
			if err != nil {
				continue // not running
			}
			pid, err := parsePidFile(raw)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", runData, err))
				continue
			}
			c := FleetContainer{ID: sc.ID, Pid: pid, Bundle: userdata, Engine: EnginePodman, priority: prioPodman,
				Sources: []string{filepath.Join(runData, "pidfile")}}
			if len(sc.Names) > 0 {
				c.Name = sc.Names[0]
			}
			var meta struct {
				ImageName string `json:"image-name"`
			}
			if sc.Metadata != "" && json.Unmarshal([]byte(sc.Metadata), &meta) == nil {
				c.Image.Ref = meta.ImageName
			}
			if im, ok := images[sc.Image]; ok {
				c.Image.Digest = im.Digest
				if c.Image.Ref == "" && len(im.Names) > 0 {
					c.Image.Ref = im.Names[0]
				}
			}
			if d.add(c, "") {
				found++
			}
		}
	}
	d.source("podman", p.Root, found, errors.Join(errs...))
}

func parseStorageContainers(b []byte) ([]storageContainer, error) {
	var cs []storageContainer
	if err := json.Unmarshal(b, &cs); err != nil {
		return nil, fmt.Errorf("containers.json: %w", err)
	}
	return cs, nil
}

func parseStorageImages(b []byte) ([]storageImage, error) {
	var is []storageImage
	if err := json.Unmarshal(b, &is); err != nil {
		return nil, fmt.Errorf("images.json: %w", err)
	}
	return is, nil
}

// secrunRecord is the part of secrun's container.json the audit shows.
type secrunRecord struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Image       string `json:"image"`
	ImageDigest string `json:"image_digest"`
}

// enrichSecrun names secrun's own containers from their records.
func (d *discoverer) enrichSecrun(root string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.byPid {
		if c.Engine != EngineSecrun || c.ID == "" {
			continue
		}
		rec := filepath.Join(root, "containers", c.ID, "container.json")
		raw, err := readBounded(rec)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another secrun root's container
		}
		var r secrunRecord
		if err == nil {
			err = json.Unmarshal(raw, &r)
		}
		if err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("secrun record %s: %s", rec, fleetErrText(err)))
			continue
		}
		c.Name = cmp.Or(c.Name, r.Name)
		c.Image.Ref = cmp.Or(c.Image.Ref, r.Image)
		c.Image.Digest = cmp.Or(c.Image.Digest, r.ImageDigest)
		c.Sources = append(c.Sources, rec)
		if c.Bundle == "" {
			c.Bundle = filepath.Join(root, "containers", c.ID)
		}
	}
}

// loadSpec reads the container's declared config from its bundle.
func loadSpec(c *FleetContainer) {
	if c.Bundle == "" {
		c.Problems = append(c.Problems, "no bundle found for the container, so its declared config is unknown")
		return
	}
	p := filepath.Join(c.Bundle, "config.json")
	raw, err := readBounded(p)
	if err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("declared config %s: %s", p, fleetErrText(err)))
		return
	}
	var s specs.Spec
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&s); err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("declared config %s: %s", p, fleetErrText(err)))
		return
	}
	// secrun hands a container's seccomp filter to secrun-init and keeps
	// the profile in an annotation: that profile is declared all the same
	// (the drift check compares it with the kernel's view).
	if err := profiles.DeclaredSeccomp(&s); err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("declared config %s: %s", p, fleetErrText(err)))
	}
	c.Spec = &s
}

// fillIdentity sets the image identity flag and the signature verdict the
// audit can state without checking signatures.
func fillIdentity(c *FleetContainer) {
	c.Image.Identity = c.Image.Ref != "" || c.Image.Digest != ""
	c.Signature = policy.SignatureInfo{Verified: false, Signers: []string{}, Error: SignatureNotChecked}
	if !c.Image.Identity {
		c.Signature.Error = policy.NoImageIdentity
	}
	slices.Sort(c.Sources)
	c.Sources = slices.Compact(c.Sources)
}

// parallel runs fn(0..n-1) on a few goroutines: the work is /proc and
// state-file reads and policy evaluation, bound by the CPUs.
func fleetParallel(n int, fn func(i int)) {
	workers := min(n, 2*runtime.GOMAXPROCS(0))
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

func fleetErrText(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
