package audit

import (
	"fmt"
	"os"
	osuser "os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/user"
)

// DefaultUserRuntimeDir is where systemd-logind gives each logged-in user a
// runtime directory ($XDG_RUNTIME_DIR): /run/user/UID.
const DefaultUserRuntimeDir = "/run/user"

// UserPlaces are the places rootless engines keep their state, for every
// user with a runtime directory under runUser: rootless runc
// (RUNTIME/runc), crun (RUNTIME/crun), podman (~/.local/share/containers/
// storage with RUNTIME/containers) and secrun (~/.local/share/secrun, its
// runc state in RUNTIME/secrun/runc). homeOf maps a uid to its home
// directory; users it does not know are looked at only in their runtime
// directory. A rootless container is still a container on this host: "audit
// every container, whoever started it" includes it.
func UserPlaces(runUser string, homeOf func(uid string) (string, error)) DiscoverConfig {
	var c DiscoverConfig
	ents, err := os.ReadDir(runUser)
	if err != nil {
		return c
	}
	for _, e := range ents {
		uid := e.Name()
		if !e.IsDir() {
			continue
		}
		if n, err := strconv.ParseUint(uid, 10, 32); err != nil || n == 0 {
			continue
		}
		run := filepath.Join(runUser, uid)
		c.RuncRoots = append(c.RuncRoots, filepath.Join(run, "runc"), filepath.Join(run, "secrun", "runc"))
		c.CrunRoots = append(c.CrunRoots, filepath.Join(run, "crun"))
		home, err := homeOf(uid)
		if err != nil || !filepath.IsAbs(home) {
			continue
		}
		data := filepath.Join(home, ".local", "share")
		c.Podman = append(c.Podman, PodmanStorage{Root: filepath.Join(data, "containers", "storage"), RunRoot: filepath.Join(run, "containers")})
		c.SecrunRoots = append(c.SecrunRoots, filepath.Join(data, "secrun"))
	}
	return c
}

// HomeOf is the home directory of a uid from the user database.
func HomeOf(uid string) (string, error) {
	u, err := osuser.LookupId(uid)
	if err != nil {
		return "", err
	}
	return u.HomeDir, nil
}

// userStateClaims checks a container found through a state file an
// unprivileged user owns (a rootless engine's): such a file may say anything,
// so its pid must be a process of that user, running as the user's own uid
// or one of its subordinate uids (/etc/subuid), as every rootless container
// does. Otherwise the user could dress another container (root's, another
// user's) in a config of their choosing. Root-owned state is trusted as
// before; a path that cannot be examined is not a user's file.
func userStateClaims(statePath string, pid int) error {
	fi, err := os.Lstat(statePath)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return nil
	}
	owner := st.Uid
	uid, err := processRealUID(pid)
	if err != nil {
		return fmt.Errorf("state owned by uid %d names pid %d: %w: ignored", owner, pid, err)
	}
	if uid == owner {
		return nil
	}
	name := ""
	if u, err := osuser.LookupId(strconv.FormatUint(uint64(owner), 10)); err == nil {
		name = u.Username
	}
	if inSubordinateRange(subUIDFile, owner, name, uid) {
		return nil
	}
	return fmt.Errorf("state owned by uid %d names pid %d, which runs as uid %d, neither that user's nor one of its subordinate ids: ignored", owner, pid, uid)
}

// subUIDFile lists subordinate uid ranges: NAME_OR_UID:START:COUNT.
var subUIDFile = "/etc/subuid"

func processRealUID(pid int) (uint32, error) {
	b, err := readBounded(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "Uid:" {
			n, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status: %w", pid, err)
			}
			return uint32(n), nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no Uid line", pid)
}

// inSubordinateRange reports whether id is in one of the ranges path gives
// the user (by name or by uid).
func inSubordinateRange(path string, owner uint32, name string, id uint32) bool {
	byUID := strconv.FormatUint(uint64(owner), 10)
	ranges, err := user.ParseSubIDFileFilter(path, func(e user.SubID) bool {
		return (name != "" && e.Name == name) || e.Name == byUID
	})
	if err != nil {
		return false
	}
	for _, r := range ranges {
		if r.Count > 0 && int64(id) >= r.SubID && int64(id) < r.SubID+r.Count {
			return true
		}
	}
	return false
}
