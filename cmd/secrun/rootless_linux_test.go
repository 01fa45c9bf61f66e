package main_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
	"github.com/secrun/secrun/image/imagetest"
	"github.com/secrun/secrun/internal/testenv"
	"github.com/secrun/secrun/policy"
)

// Rootless `secrun run`: as root, the test makes unprivileged users (one
// with /etc/subuid and /etc/subgid ranges, one without), gives them secrun,
// runc and a signed probe image in a directory they can reach, and runs the
// hardened-container probes as each of them, under the default restricted
// policy. Users and files left by an earlier, interrupted run are removed
// first, and everything the test makes is removed in t.Cleanup.

const (
	rootlessUserName = "secrun-rootless-test"
	singleUserName   = "secrun-rootless-single"
	// delegatedCgroup is the cgroup the delegation subtest hands its user.
	delegatedCgroup = "secrun-rootless-test"
)

// rootlessEnv is what the rootless tests share: a world-traversable base
// directory with the binaries.
type rootlessEnv struct {
	base   string // 0755, readable by the test users
	secrun string
	runc   string
	image  string // an OCI layout of the probe image, copied per user
}

type rootlessUser struct {
	env        *rootlessEnv
	name       string
	uid, gid   int
	home, xdg  string
	layout     string // "oci:DIR:probe", the user's own signed copy
	trust      string
	subStart   int // first subordinate id; 0 without ranges
	cgroupMove []string
}

func newRootlessEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	testenv.RequireRoot(t)
	for _, tool := range []string{"setpriv", "useradd", "usermod", "userdel", "newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install util-linux, passwd and uidmap (make deps)", tool)
		}
	}
	base := reachableTempDir(t)
	bin := filepath.Join(base, "bin")
	mkdir(t, bin, 0o755)
	e := &rootlessEnv{base: base, secrun: filepath.Join(bin, "secrun"), runc: filepath.Join(bin, "runc"), image: filepath.Join(base, "image")}
	copyFile(t, testenv.SecrunBinary(t), e.secrun, 0o755)
	copyFile(t, filepath.Join(filepath.Dir(testenv.SecrunBinary(t)), "secrun-engine"), filepath.Join(bin, "secrun-engine"), 0o755)
	copyFile(t, testenv.Runc(t), e.runc, 0o755)
	imagetest.WriteOCILayout(t, e.image, testenv.ProbeImage(t), "probe")
	return e
}

// reachableTempDir makes a directory every user can traverse: go test's
// TempDirs are 0700 root, and a CI clone may live under /root.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{os.TempDir(), "/var/tmp", "/tmp"} {
		if !traversable(parent) {
			continue
		}
		d, err := os.MkdirTemp(parent, "secrun-rootless-")
		if err != nil {
			continue
		}
		t.Cleanup(func() {
			if err := os.RemoveAll(d); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		})
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	t.Fatal("no temporary directory that unprivileged users can traverse")
	return ""
}

func traversable(dir string) bool {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if p == "/" {
			return true
		}
	}
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func runRoot(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// removeUser deletes a test user (and with it its subordinate ids) if it
// exists, killing whatever it still runs.
func removeUser(t *testing.T, name string) {
	t.Helper()
	out, err := exec.Command("id", "-u", name).Output()
	if err != nil {
		return
	}
	uid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	killProcessesOf(uid)
	if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
		t.Fatalf("removing user %s: %v\n%s", name, err, out)
	}
}

// processesOf lists "PID (COMM)" of the processes whose real uid match
// accepts, read from /proc.
func processesOf(match func(uid int) bool) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var name string
		uid := -1
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "Name:"); ok {
				name = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					uid, _ = strconv.Atoi(f[0])
				}
			}
		}
		if uid >= 0 && match(uid) {
			out = append(out, fmt.Sprintf("%d (%s)", pid, name))
		}
	}
	return out
}

func killProcessesOf(uid int) {
	for _, p := range processesOf(func(u int) bool { return u == uid }) {
		if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// freeSubIDStart returns the start of a 65536-id range that no entry of
// /etc/subuid or /etc/subgid uses, below the ids root-mode secrun hands out
// from 2^30.
func freeSubIDStart(t *testing.T) int {
	t.Helper()
	end := 100000
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			parts := strings.Split(strings.TrimSpace(line), ":")
			if len(parts) != 3 {
				continue
			}
			start, err1 := strconv.Atoi(parts[1])
			count, err2 := strconv.Atoi(parts[2])
			if err1 == nil && err2 == nil && start+count > end {
				end = start + count
			}
		}
	}
	start := (end + 65535) / 65536 * 65536
	if start+65536 > 1<<30 {
		t.Fatalf("no free subordinate id range below 2^30 in /etc/subuid and /etc/subgid (highest end %d)", end)
	}
	return start
}

// addUser creates an unprivileged user, with subordinate id ranges when
// subIDs, and gives it a home, a runtime directory, its own copy of the
// probe image signed with its own key, and a trust config for that key.
func (e *rootlessEnv) addUser(t *testing.T, name string, subIDs bool) *rootlessUser {
	t.Helper()
	removeUser(t, name)
	// -K SUB_*_COUNT=0: useradd would otherwise allocate ranges itself.
	runRoot(t, "useradd", "--system", "-M", "-s", "/usr/sbin/nologin", "-K", "SUB_UID_COUNT=0", "-K", "SUB_GID_COUNT=0", name)
	u := &rootlessUser{env: e, name: name}
	var err error
	if u.uid, err = strconv.Atoi(strings.TrimSpace(runRoot(t, "id", "-u", name))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killProcessesOf(u.uid)
		if u.subStart > 0 {
			for _, p := range processesOf(func(id int) bool { return id >= u.subStart && id < u.subStart+65536 }) {
				if pid, err := strconv.Atoi(strings.Fields(p)[0]); err == nil {
					unix.Kill(pid, unix.SIGKILL)
				}
			}
		}
		if out, err := exec.Command("userdel", "-f", name).CombinedOutput(); err != nil {
			t.Errorf("cleanup: userdel %s: %v\n%s", name, err, out)
		}
	})
	if u.gid, err = strconv.Atoi(strings.TrimSpace(runRoot(t, "id", "-g", name))); err != nil {
		t.Fatal(err)
	}
	if subIDs {
		u.subStart = freeSubIDStart(t)
		r := fmt.Sprintf("%d-%d", u.subStart, u.subStart+65535)
		runRoot(t, "usermod", "--add-subuids", r, "--add-subgids", r, name)
	}
	dir := filepath.Join(e.base, name)
	u.home, u.xdg = filepath.Join(dir, "home"), filepath.Join(dir, "run")
	mkdir(t, dir, 0o755)
	mkdir(t, u.home, 0o700)
	mkdir(t, u.xdg, 0o700)
	imageDir := filepath.Join(u.home, "image")
	if err := os.CopyFS(imageDir, os.DirFS(e.image)); err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir, u.uid, u.gid)
	u.layout = "oci:" + imageDir + ":probe"
	for _, args := range [][]string{{"generate-key-pair"}, {"sign", "--key", "cosign.key", u.layout}} {
		if code, _, stderr := u.secrun(t, args...); code != 0 {
			t.Fatalf("%s: secrun %s: exit %d\n%s", name, args[0], code, stderr)
		}
	}
	u.trust = filepath.Join(u.home, "trust.yaml")
	trust := "rules:\n- images: [\"oci:**\"]\n  keys: [" + filepath.Join(u.home, "cosign.pub") + "]\n  insecureIgnoreTlog: true\n"
	if err := os.WriteFile(u.trust, []byte(trust), 0o644); err != nil {
		t.Fatal(err)
	}
	return u
}

// secrun runs secrun as the user, from its home, with a clean environment:
// HOME and XDG_RUNTIME_DIR its own, nothing of root's. With cgroupMove set,
// a root shell first moves itself into those cgroup.procs files.
func (u *rootlessUser) secrun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	script := `for f in $SECRUN_TEST_CGROUPS; do echo $$ > "$f" || exit 125; done
exec setpriv --reuid "$SECRUN_TEST_UID" --regid "$SECRUN_TEST_GID" --init-groups -- "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", script, "sh", u.env.secrun, "--runtime", u.env.runc}, args...)...)
	cmd.Dir = u.home
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + u.home,
		"XDG_RUNTIME_DIR=" + u.xdg,
		"COSIGN_PASSWORD=rootless-test",
		"SECRUN_TEST_UID=" + strconv.Itoa(u.uid),
		"SECRUN_TEST_GID=" + strconv.Itoa(u.gid),
		"SECRUN_TEST_CGROUPS=" + strings.Join(u.cgroupMove, " "),
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	timer := time.AfterFunc(2*time.Minute, func() {
		if cmd.Process != nil {
			cmd.Process.Kill()
		}
	})
	defer timer.Stop()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// run is `secrun --trust TRUST run --rm [flags] IMAGE sh -c script`, under
// the default (restricted) policy.
func (u *rootlessUser) run(t *testing.T, flags []string, script string) (int, string, string) {
	t.Helper()
	args := append([]string{"--trust", u.trust, "run", "--rm"}, flags...)
	args = append(args, u.layout, "/bin/sh", "-c", script)
	return u.secrun(t, args...)
}

func (u *rootlessUser) root() string { return filepath.Join(u.home, ".local", "share", "secrun") }

// leftovers lists what a removed container could leave behind: secrun's and
// runc's state, names, processes of the user or its subordinate ids, mounts
// naming its files. A detached container's init, killed by rm -f, was
// reparented to the host's init, which reaps it in its own time: processes
// get a few seconds to disappear.
func (u *rootlessUser) leftovers(t *testing.T) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := u.leftoversNow(t)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *rootlessUser) leftoversNow(t *testing.T) []string {
	t.Helper()
	var left []string
	for _, d := range []string{filepath.Join(u.root(), "containers"), filepath.Join(u.root(), "names"), filepath.Join(u.xdg, "secrun", "runc"), filepath.Join(u.root(), "runc")} {
		entries, _ := os.ReadDir(d)
		for _, en := range entries {
			left = append(left, filepath.Join(d, en.Name()))
		}
	}
	for _, p := range processesOf(func(uid int) bool {
		return uid == u.uid || (u.subStart > 0 && uid >= u.subStart && uid < u.subStart+65536)
	}) {
		left = append(left, "process of "+u.name+" or its subordinate ids: "+p)
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		if strings.Contains(line, u.home) {
			left = append(left, "mount: "+line)
		}
	}
	return left
}

const probeScript = testenv.ProbeCommands

func TestRootlessRun(t *testing.T) {
	e := newRootlessEnv(t)
	users := []struct {
		name    string
		subIDs  bool
		wantUID string // inside the container
	}{
		{rootlessUserName, true, "65534"},
		{singleUserName, false, "0"},
	}
	for _, tc := range users {
		t.Run(tc.name, func(t *testing.T) {
			u := e.addUser(t, tc.name, tc.subIDs)

			t.Run("hardened probes", func(t *testing.T) {
				code, out, stderr := u.run(t, nil, probeScript)
				if code != 0 {
					t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
				}
				t.Logf("probe output:\n%s\nsecrun's notes:\n%s", out, stderr)
				// Without subordinate ids the process is container root and
				// owns /tmp, so chown of it to root is a no-op it may do.
				want := testenv.HardenedProbes(tc.wantUID, tc.subIDs)
				for name, re := range want {
					if !re.MatchString(out) {
						t.Errorf("%s: not seen", name)
					}
				}
				m := regexp.MustCompile(`(?m)^uid_map= ?0 (\d+) 1 ?(.*)$`).FindStringSubmatch(out)
				if m == nil || m[1] != strconv.Itoa(u.uid) {
					t.Fatalf("uid_map does not map container root to the user's uid %d: %q", u.uid, m)
				}
				wantRest := ""
				if tc.subIDs {
					wantRest = fmt.Sprintf("1 %d 65535", u.subStart)
				}
				if strings.TrimSpace(m[2]) != wantRest {
					t.Errorf("uid_map beyond container root = %q, want %q", m[2], wantRest)
				}
				// One clear line says the cgroup limits are not applied.
				if n := strings.Count(stderr, "rootless: no cgroup limits"); n != 1 {
					t.Errorf("%d notes about cgroup limits, want 1:\n%s", n, stderr)
				}
				if l := u.leftovers(t); len(l) > 0 {
					t.Errorf("left behind after --rm: %q", l)
				}
			})

			t.Run("exit status", func(t *testing.T) {
				if code, out, stderr := u.run(t, nil, "exit 42"); code != 42 {
					t.Fatalf("exit %d, want 42\n%s%s", code, out, stderr)
				}
			})

			t.Run("fork loop stopped", func(t *testing.T) {
				code, out, stderr := u.run(t, []string{"--pids-limit", "16"},
					`grep '^Max processes' /proc/self/limits; n=0; i=0; while [ $i -lt 64 ]; do if sleep 2 & then n=$((n+1)); fi; i=$((i+1)); done; echo started=$n; wait`)
				t.Logf("exit %d\n%s%s", code, out, stderr)
				if !regexp.MustCompile(`(?m)^Max processes\s+16\s+16\s`).MatchString(out) {
					t.Errorf("RLIMIT_NPROC is not the pids limit:\n%s", out)
				}
				if !strings.Contains(out+stderr, "can't fork") && !strings.Contains(out+stderr, "Resource temporarily unavailable") {
					t.Fatal("a fork loop of 64 ran under --pids-limit 16 without a failed fork")
				}
				if l := u.leftovers(t); len(l) > 0 {
					t.Errorf("left behind after --rm: %q", l)
				}
			})

			t.Run("host uid is the user's", func(t *testing.T) {
				code, out, stderr := u.secrun(t, "--trust", u.trust, "run", "-d", u.layout, "sleep", "300")
				if code != 0 {
					t.Fatalf("detached run: exit %d\n%s%s", code, out, stderr)
				}
				id := strings.TrimSpace(out)
				pidData, err := os.ReadFile(filepath.Join(u.root(), "containers", id, "bundle", "pid"))
				if err != nil {
					t.Fatal(err)
				}
				pid := strings.TrimSpace(string(pidData))
				uids := hostIDs(t, pid, "Uid")
				want := u.uid
				if tc.subIDs {
					want = u.subStart + 65533 // container 65534 -> the range's 65534th id
				}
				for _, got := range uids {
					if got == 0 || got != want {
						t.Errorf("container process %s runs as host uids %v, want all %d", pid, uids, want)
						break
					}
				}
				for _, g := range hostIDs(t, pid, "Gid") {
					if g == 0 {
						t.Errorf("container process %s has host gid 0", pid)
					}
				}
				// Root's fleet audit sees the user's container: its runc
				// state is the user's file, and the pid it names runs as the
				// user or a subordinate id, so discovery trusts it.
				auditRoot := filepath.Join(u.env.base, "auditor")
				mkdir(t, auditRoot, 0o700)
				rout, err := exec.Command(u.env.secrun, "--root", auditRoot, "audit", "--no-default-paths", "--docker-socket", "none",
					"--runc-root", filepath.Join(u.xdg, "secrun", "runc"), "--secrun-root", u.root(),
					"--format", "json", "--fail-on", "none").Output()
				if err != nil {
					t.Fatalf("audit as root: %v", err)
				}
				var rep audit.FleetReport
				if err := json.Unmarshal(rout, &rep); err != nil {
					t.Fatalf("audit report: %v\n%s", err, rout)
				}
				var seen bool
				for _, c := range rep.Containers {
					if c.ID == id {
						seen = true
						if c.Engine != audit.EngineSecrun || strconv.Itoa(c.Pid) != pid || c.Effective == nil {
							t.Errorf("rootless container audited as engine %q pid %d effective %v, want secrun pid %s", c.Engine, c.Pid, c.Effective != nil, pid)
						}
					}
				}
				if !seen {
					t.Errorf("root's audit does not list the rootless container %s:\n%s", id, rout)
				}
				if code, _, stderr := u.secrun(t, "rm", "-f", id); code != 0 {
					t.Fatalf("rm -f: exit %d %s", code, stderr)
				}
				if l := u.leftovers(t); len(l) > 0 {
					t.Errorf("left behind after rm: %q", l)
				}
			})

			t.Run("refusals", func(t *testing.T) {
				code, _, stderr := u.run(t, []string{"--read-only=false"}, "true")
				if code != 125 || !strings.Contains(stderr, "--read-only=false needs root") {
					t.Errorf("--read-only=false: exit %d %s", code, stderr)
				}
				if !tc.subIDs {
					code, _, stderr = u.run(t, []string{"-u", "1000"}, "true")
					if code != 125 || !strings.Contains(stderr, "one id, its root") {
						t.Errorf("-u 1000 without subordinate ids: exit %d %s", code, stderr)
					}
				}
				if l := u.leftovers(t); len(l) > 0 {
					t.Errorf("left behind: %q", l)
				}
			})
		})
	}
}

// hostIDs reads the real, effective, saved and filesystem ids (field "Uid"
// or "Gid") of a host process.
func hostIDs(t *testing.T, pid, field string) []int {
	t.Helper()
	f, err := os.Open(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field+":")
		if !ok {
			continue
		}
		var ids []int
		for _, s := range strings.Fields(rest) {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, n)
		}
		return ids
	}
	t.Fatalf("no %s line in /proc/%s/status", field, pid)
	return nil
}

// With a cgroup delegated to the user (owned by it, in every hierarchy),
// the limits are cgroup limits again: the container gets its own cgroup
// under the delegated one, with the pids and memory limits set, and it is
// gone after --rm.
func TestRootlessDelegatedCgroup(t *testing.T) {
	e := newRootlessEnv(t)
	u := e.addUser(t, rootlessUserName, true)
	u.cgroupMove = delegate(t, u.uid, u.gid)

	pidsMax, memMax := "/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"
	if policy.CgroupMode() == "v2" {
		pidsMax, memMax = "/sys/fs/cgroup/pids.max", "/sys/fs/cgroup/memory.max"
	}
	code, out, stderr := u.run(t, []string{"--pids-limit", "16", "--memory", "64m"}, "cat "+pidsMax+" "+memMax)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, stderr)
	}
	if got := strings.Fields(out); len(got) != 2 || got[0] != "16" || got[1] != "67108864" {
		t.Errorf("pids.max and memory limit in the container's cgroup = %q, want 16 and 67108864", got)
	}
	if strings.Contains(stderr, "no cgroup limits") {
		t.Errorf("a note says there are no cgroup limits although the cgroup was delegated:\n%s", stderr)
	}
	for _, f := range u.cgroupMove {
		entries, _ := os.ReadDir(filepath.Dir(f))
		for _, en := range entries {
			if en.IsDir() {
				t.Errorf("container cgroup left behind: %s", filepath.Join(filepath.Dir(f), en.Name()))
			}
		}
	}
}

// delegate makes delegatedCgroup, owned by uid:gid, in every cgroup
// hierarchy this process is in (on a v2 host, a leaf for the process inside
// it, with memory and pids enabled for its children), and returns the
// cgroup.procs files a process moves itself into to run inside it.
func delegate(t *testing.T, uid, gid int) []string {
	t.Helper()
	var points []string
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 1 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		if f[3] != "/" {
			t.Fatalf("cgroup mount %s has root %s (a cgroup namespace?): cannot delegate from here", f[4], f[3])
		}
		points = append(points, f[4])
	}
	if len(points) == 0 {
		t.Fatal("no cgroup hierarchy mounted")
	}
	var procs []string
	v2 := policy.CgroupMode() == "v2"
	for _, mp := range points {
		d := filepath.Join(mp, delegatedCgroup)
		removeCgroupTree(t, d)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeCgroupTree(t, d) })
		// A new cpuset cgroup has no CPUs or memory nodes until given some.
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if data, err := os.ReadFile(filepath.Join(mp, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		leaf := d
		if v2 {
			if err := os.WriteFile(filepath.Join(mp, "cgroup.subtree_control"), []byte("+memory +pids"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+memory +pids"), 0o644); err != nil {
				t.Fatal(err)
			}
			leaf = filepath.Join(d, "leaf")
			if err := os.Mkdir(leaf, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		chownTree(t, d, uid, gid)
		procs = append(procs, filepath.Join(leaf, "cgroup.procs"))
	}
	return procs
}

// removeCgroupTree removes a cgroup and its children, deepest first, once
// their processes are gone.
func removeCgroupTree(t *testing.T, dir string) {
	t.Helper()
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := unix.Rmdir(dirs[i])
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				t.Errorf("removing cgroup %s: %v", dirs[i], err)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}
