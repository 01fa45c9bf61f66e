package audit

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const fleetFixtures = "../testdata/fleet"

func fleetFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fleetFixtures, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProcStatus(t *testing.T) {
	for _, tc := range []struct {
		file          string
		eff, bnd      uint64
		nnp           bool
		seccomp, filt int
	}{
		// A runc container: CAP_NET_BIND_SERVICE only, no_new_privs, one filter.
		{"proc/status-container.txt", 1 << 10, 1 << 10, true, 2, 1},
		// This host lacks CAP_SYS_RESOURCE (bit 24) in its bounding set.
		{"proc/status-host.txt", 0x1fffeffffff, 0x1fffeffffff, false, 0, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s, err := parseProcStatus(fleetFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if s.CapEff != tc.eff || s.CapBnd != tc.bnd || s.NoNewPrivs != tc.nnp || s.Seccomp != tc.seccomp || s.SeccompFilters != tc.filt {
				t.Errorf("got eff %x bnd %x nnp %v seccomp %d/%d", s.CapEff, s.CapBnd, s.NoNewPrivs, s.Seccomp, s.SeccompFilters)
			}
		})
	}
	for name, in := range map[string]string{
		"empty":           "",
		"no caps":         "Name:\tx\nNoNewPrivs:\t0\nSeccomp:\t0\n",
		"bad hex":         "CapEff:\tzz\nCapPrm:\t0\nCapBnd:\t0\nNoNewPrivs:\t0\nSeccomp:\t0\n",
		"no seccomp line": "CapEff:\t0\nCapPrm:\t0\nCapBnd:\t0\nNoNewPrivs:\t0\n",
		"bad uid":         "Uid:\t0 0\nCapEff:\t0\nCapPrm:\t0\nCapBnd:\t0\nNoNewPrivs:\t0\nSeccomp:\t0\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := parseProcStatus([]byte(in)); err == nil {
				t.Error("parsed; want an error (a guessed zero would read as no capabilities)")
			}
		})
	}
}

func TestParseIDMap(t *testing.T) {
	m, err := parseIDMap(fleetFixture(t, "proc/uid_map-container.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}; !slices.Equal(m, want) || identityMap(m) {
		t.Errorf("got %v", m)
	}
	h, err := parseIDMap(fleetFixture(t, "proc/uid_map-host.txt"))
	if err != nil || !identityMap(h) || h[0].Size != math.MaxUint32 {
		t.Errorf("host map %v, %v", h, err)
	}
	for _, bad := range []string{"0 0", "0 x 1", "0 0 1 2", "-1 0 1"} {
		if _, err := parseIDMap([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		file     string
		ro       bool
		prop     string
		rootPath string
	}{
		{"proc/mountinfo-container.txt", true, "private", ""},
		{"proc/mountinfo-shared.txt", false, "shared", "/var/lib/container storage/rootfs"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ms, err := parseMountinfo(fleetFixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			root, ok := rootMount(ms)
			if !ok {
				t.Fatal("no / mount")
			}
			if root.ReadOnly() != tc.ro || root.Propagation() != tc.prop {
				t.Errorf("ro %v prop %s; want %v %s", root.ReadOnly(), root.Propagation(), tc.ro, tc.prop)
			}
			if tc.rootPath != "" && root.Root != tc.rootPath {
				t.Errorf("root %q, want %q", root.Root, tc.rootPath)
			}
		})
	}
	ms, err := parseMountinfo(fleetFixture(t, "proc/mountinfo-host.txt"))
	if err != nil {
		t.Fatal(err)
	}
	c := cgroupMountsOf(ms)
	if c.v2 == nil || c.v2.point != "/sys/fs/cgroup/unified" || c.v1["memory"].point != "/sys/fs/cgroup/memory" || c.v1["name=systemd"].point == "" {
		t.Errorf("cgroup mounts %+v", c)
	}
	for _, bad := range []string{"1 2 3", "36 35 98:0 / / rw shared:1 ext4 /dev/root rw"} {
		if _, err := parseMountinfo([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	ls, err := parseProcCgroup(fleetFixture(t, "proc/cgroup-container.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ordered := orderCgroupLines(ls)
	if ordered[0].Hierarchy != 0 || !slices.Contains(ordered[1].Controllers, "pids") {
		t.Errorf("order: %+v", ordered[:2])
	}
	v2, err := parseProcCgroup(fleetFixture(t, "proc/cgroup-v2.txt"))
	if err != nil || len(v2) != 1 || v2[0].Path != "/system.slice/docker-0123456789ab.scope" || len(v2[0].Controllers) != 0 {
		t.Errorf("v2: %+v %v", v2, err)
	}
	for _, bad := range []string{"x::/", "0:/", "0::relative"} {
		if _, err := parseProcCgroup([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCgroupMountDir(t *testing.T) {
	for _, tc := range []struct {
		m    cgroupMount
		path string
		want string
	}{
		{cgroupMount{point: "/sys/fs/cgroup", root: "/"}, "/a/b", "/sys/fs/cgroup/a/b"},
		{cgroupMount{point: "/sys/fs/cgroup/memory", root: "/"}, "/", "/sys/fs/cgroup/memory"},
		// A mount of a sub-tree (a cgroup namespace's view).
		{cgroupMount{point: "/sys/fs/cgroup", root: "/kubepods"}, "/kubepods/pod1", "/sys/fs/cgroup/pod1"},
		{cgroupMount{point: "/sys/fs/cgroup", root: "/kubepods"}, "/other/pod1", ""},
		{cgroupMount{point: "/sys/fs/cgroup", root: "/kube"}, "/kubepods/pod1", ""},
	} {
		if got := tc.m.dir(tc.path); got != tc.want {
			t.Errorf("%+v dir(%s) = %q, want %q", tc.m, tc.path, got, tc.want)
		}
	}
}

func TestParseLimitAndStat(t *testing.T) {
	for in, want := range map[string]int64{"max\n": Unlimited, "67108864\n": 64 << 20, "9223372036854771712": Unlimited, "0": 0} {
		if got, err := parseLimit([]byte(in)); err != nil || got != want {
			t.Errorf("parseLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := parseLimit([]byte("-5")); err == nil {
		t.Error("negative limit parsed")
	}
	start, err := parseStatStart(fleetFixture(t, "proc/stat-container.txt"))
	if err != nil || start != 529807 {
		t.Errorf("start %d, %v", start, err)
	}
	ppid, err := parseStatPPid([]byte("7 (a ) b) S 42 7 7 0"))
	if err != nil || ppid != 42 {
		t.Errorf("ppid %d, %v (the command may hold spaces and parentheses)", ppid, err)
	}
}

func TestParseRuntimeState(t *testing.T) {
	st, err := parseRuncState(fleetFixture(t, "engines/runc-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.ID != "dump" || st.InitPid != 24712 || st.InitStart != 529807 || filepath.Base(st.bundleLabel) != "dump" || len(st.CgroupPaths) == 0 {
		t.Errorf("runc state %+v", st)
	}
	cs, err := parseCrunStatus(fleetFixture(t, "engines/crun-status.json"))
	if err != nil || cs.Pid != 4242 || cs.StartTime != 1234567 || cs.Bundle == "" {
		t.Errorf("crun status %+v, %v", cs, err)
	}
	for _, bad := range []string{`{}`, `{"id":"x"}`, `{"id":"x","init_process_pid":-1}`, `[`} {
		if _, err := parseRuncState([]byte(bad)); err == nil {
			t.Errorf("runc state %s parsed", bad)
		}
	}
	if _, err := parseCrunStatus([]byte(`{"pid":0}`)); err == nil {
		t.Error("crun status without pid parsed")
	}
	for in, want := range map[string]int{"123": 123, "123\n": 123} {
		if got, err := parsePidFile([]byte(in)); err != nil || got != want {
			t.Errorf("pid file %q: %d %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "0", "-3", "12 13", "x"} {
		if _, err := parsePidFile([]byte(bad)); err == nil {
			t.Errorf("pid file %q parsed", bad)
		}
	}
}

func TestParseEngineLists(t *testing.T) {
	cs, err := parseStorageContainers(fleetFixture(t, "engines/storage-containers.json"))
	if err != nil || len(cs) != 1 || cs[0].Names[0] != "phard" {
		t.Errorf("containers.json: %+v %v", cs, err)
	}
	is, err := parseStorageImages(fleetFixture(t, "engines/storage-images.json"))
	if err != nil || len(is) != 1 || is[0].Digest == "" {
		t.Errorf("images.json: %+v %v", is, err)
	}
	dc, err := parseDockerContainers(fleetFixture(t, "engines/docker-containers.json"))
	if err != nil || len(dc) != 2 || dc[0].Ports[0].PublicPort != 80 {
		t.Errorf("docker containers: %+v %v", dc, err)
	}
}

func TestNSLink(t *testing.T) {
	if ino, err := parseNSLink("net", "net:[4026531833]"); err != nil || ino != 4026531833 {
		t.Errorf("%d %v", ino, err)
	}
	for _, bad := range []string{"mnt:[1]", "net:[x]", "net:[0]", "net:4026531833", "net:[1"} {
		if _, err := parseNSLink("net", bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestCaps(t *testing.T) {
	c := capsOf([]string{"CAP_SYS_ADMIN", "net_bind_service", "CAP_NOT_A_CAP"})
	if got := c.Names(); !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"}) {
		t.Errorf("names %v", got)
	}
	if got := Caps(1 << 62).Names(); !slices.Equal(got, []string{"CAP_62"}) {
		t.Errorf("unknown bit: %v", got)
	}
	var back Caps
	b, err := c.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := back.UnmarshalJSON(b); err != nil || back != c {
		t.Errorf("round trip %s -> %x, %v", b, back, err)
	}
	if err := back.UnmarshalJSON([]byte(`["CAP_BOGUS"]`)); err == nil {
		t.Error("unknown name accepted")
	}
}
