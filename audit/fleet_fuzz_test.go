package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fleet audit parses text a container can shape (its mount points, its
// process names) and files any engine writes. Each parser must refuse or
// accept, never panic or loop; the seeds are the fixtures, replayed as unit
// tests by every `go test`.

func addFixtureSeeds(f *testing.F, pattern string, extra ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join(fleetFixtures, pattern))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

func FuzzParseProcStatus(f *testing.F) {
	addFixtureSeeds(f, "proc/status-*.txt", "CapEff:\t0\nCapPrm:\t0\nCapBnd:\t0\nNoNewPrivs:\t1\nSeccomp:\t2\n", "Uid:\t1 2 3\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseProcStatus(b)
		if err == nil && !s.hasNNP {
			t.Fatal("accepted a status without NoNewPrivs")
		}
	})
}

func FuzzParseMountinfo(f *testing.F) {
	addFixtureSeeds(f, "proc/mountinfo-*.txt", `1 0 0:1 / /a\040b rw - x y rw`, `1 0 0:1 / / ro shared:1 - - - -`)
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := parseMountinfo(b)
		if err != nil {
			return
		}
		if r, ok := rootMount(ms); ok {
			_ = r.ReadOnly()
			if p := r.Propagation(); !strings.Contains("shared slave private unbindable", p) {
				t.Fatalf("propagation %q", p)
			}
		}
		cgroupMountsOf(ms)
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	addFixtureSeeds(f, "proc/cgroup-*.txt", "0::/", "1:a,b:/x:y")
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := parseProcCgroup(b)
		if err != nil {
			return
		}
		for _, l := range orderCgroupLines(ls) {
			if !strings.HasPrefix(l.Path, "/") {
				t.Fatalf("relative path %q accepted", l.Path)
			}
			cgroupMount{point: "/sys/fs/cgroup", root: "/"}.dir(l.Path)
		}
	})
}

func FuzzParseIDMap(f *testing.F) {
	addFixtureSeeds(f, "proc/*_map-*.txt", "0 0 4294967295", "0 1 2\n3 4 5\n")
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := parseIDMap(b); err == nil && len(m) > 340 {
			t.Fatal("accepted more lines than the kernel allows")
		}
	})
}

func FuzzParseEngineState(f *testing.F) {
	addFixtureSeeds(f, "engines/*.json", `{"id":"a","init_process_pid":1,"config":{"labels":["bundle=/b"]}}`, `{"pid":1}`)
	f.Fuzz(func(t *testing.T, b []byte) {
		if s, err := parseRuncState(b); err == nil && (s.ID == "" || s.InitPid <= 0) {
			t.Fatal("accepted a runc state without id or pid")
		}
		if s, err := parseCrunStatus(b); err == nil && s.Pid <= 0 {
			t.Fatal("accepted a crun status without pid")
		}
		parseStorageContainers(b)
		parseStorageImages(b)
		parseDockerContainers(b)
		parsePidFile(b)
		parseLimit(b)
		parseStatStart(b)
		parseStatPPid(b)
	})
}

func FuzzParseDiscoverConfig(f *testing.F) {
	addFixtureSeeds(f, "*.yaml", "runc_roots: [relative]", "{}", "podman: [{runroot: /x}]")
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseDiscoverConfig(b)
		if err != nil {
			return
		}
		for _, p := range append(c.RuncRoots, c.ContainerdStateDirs...) {
			if !filepath.IsAbs(p) {
				t.Fatalf("relative path %q accepted", p)
			}
		}
	})
}
