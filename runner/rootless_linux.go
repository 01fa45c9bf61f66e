package runner

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/image"
	"github.com/secrun/secrun/internal/rootless"
)

// Rootless secrun (a non-zero effective uid) keeps the hardening of a root
// run but cannot use what needs CAP_SYS_ADMIN on the host: per-container id
// blocks from 2^30 (only root may map them), the idmapped clone of the image
// and the overlay (mounts), loading an AppArmor profile, and cgroups it was
// not given. What it does instead:
//
//   - ids: container root is the caller's own uid and gid, and container ids
//     1..65535 map in order onto the caller's /etc/subuid and /etc/subgid
//     ranges (podman's layout), written by runc through newuidmap and
//     newgidmap. A process running as the default 65534 is then a
//     subordinate id, a stranger to the caller's files. Without ranges in
//     both files the container has one id, the caller's, and runc insists
//     that it is container root (it refuses a user namespace without uid 0
//     and setuid()s to 0 on entry), so the process runs as uid 0 inside:
//     exactly the caller, with no capability.
//   - rootfs: the image, unpacked by the caller without applying owners
//     (image.UnpackOptions.IgnoreOwner), is the rootfs itself, read-only;
//     runc bind-mounts it inside the container's mount namespace. A writable
//     rootfs would write into the shared image cache and is refused. runc
//     still creates mount points the image lacks (e.g. a -v target) in the
//     tree, as empty directories or files, before it is made read-only.
//   - cgroups: limits are applied in a cgroup delegated to the caller
//     (rootless.DelegatedCgroup); without one the spec carries no cgroup
//     limits (runc would fail on them) and says so on stderr. Either way
//     RLIMIT_NPROC is the pids limit: since Linux 5.14 it is counted per
//     user namespace, so it bounds this container's processes.
//   - groups: runc never calls setgroups rootless, so the container's
//     processes keep the caller's supplementary groups and get none of the
//     image user's; both are said on stderr, and the spec lists no
//     additional gids. The caller's own gid is container gid 0, which owns
//     every unpacked image file: the unpacker narrows group bits to the
//     other bits (image.UnpackOptions.IgnoreOwner), so that membership
//     grants nothing in the image. Host files reachable through bind mounts
//     remain readable to those groups. (Dropping the groups needs runc to
//     run as root inside a user namespace secrun makes, as podman does: not
//     done.)
//   - runc's state lives under $XDG_RUNTIME_DIR (cmd/secrun), secrun's
//     under the caller's XDG data directory.

// RootlessIDs is the user namespace a rootless container gets.
type RootlessIDs struct {
	UIDMap, GIDMap []specs.LinuxIDMapping
	// Single is true when the caller has no subordinate ids: the maps hold
	// only container 0 -> the caller.
	Single bool
}

// mapped reports whether container id id is mapped by m.
func mapped(m []specs.LinuxIDMapping, id uint32) bool {
	for _, e := range m {
		if id >= e.ContainerID && id-e.ContainerID < e.Size {
			return true
		}
	}
	return false
}

// subIDFiles are where subordinate ids are read; tests point them at
// fixtures.
type subIDFiles struct {
	subuid, subgid string
	// lookPath finds newuidmap and newgidmap.
	lookPath func(string) (string, error)
}

var defaultSubIDFiles = subIDFiles{subuid: "/etc/subuid", subgid: "/etc/subgid", lookPath: exec.LookPath}

// rootlessIDsFor builds the mappings for the caller uid:gid named name (""
// when /etc/passwd has no entry). notes are one-line remarks for the user.
func rootlessIDsFor(files subIDFiles, name string, uid, gid uint32) (RootlessIDs, []string, error) {
	subU, err := subIDs(files.subuid, name, uid)
	if err != nil {
		return RootlessIDs{}, nil, err
	}
	subG, err := subIDs(files.subgid, name, uid)
	if err != nil {
		return RootlessIDs{}, nil, err
	}
	who := name
	if who == "" {
		who = strconv.FormatUint(uint64(uid), 10)
	}
	self := func(id uint32) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: id, Size: 1}}
	}
	if len(subU) == 0 || len(subG) == 0 {
		missing := files.subuid
		if len(subU) > 0 {
			missing = files.subgid
		}
		note := fmt.Sprintf("rootless: %s has no subordinate ids in %s, so the container has one id, yours, as its root (runc needs container uid 0 mapped): it runs with your uid and no capability; for a non-root container user, have ranges added (usermod --add-subuids FIRST-LAST --add-subgids FIRST-LAST %s)", who, missing, who)
		return RootlessIDs{UIDMap: self(uid), GIDMap: self(gid), Single: true}, []string{note}, nil
	}
	for _, helper := range []string{"newuidmap", "newgidmap"} {
		if _, err := files.lookPath(helper); err != nil {
			return RootlessIDs{}, nil, fmt.Errorf("rootless: %s has subordinate ids but %s is not installed: install the uidmap package (Debian/Ubuntu) or shadow-utils", who, helper)
		}
	}
	return RootlessIDs{
		UIDMap: append(self(uid), spread(subU, usernsBlockSize-1)...),
		GIDMap: append(self(gid), spread(subG, usernsBlockSize-1)...),
	}, nil, nil
}

// spread maps container ids 1..n onto the ranges in order.
func spread(ranges []user.SubID, n uint32) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	next := uint32(1)
	for _, r := range ranges {
		if n == 0 {
			break
		}
		size := uint32(min(r.Count, int64(n)))
		out = append(out, specs.LinuxIDMapping{ContainerID: next, HostID: uint32(r.SubID), Size: size})
		next += size
		n -= size
	}
	return out
}

// subIDs returns the caller's ranges in a subordinate id file, which names
// users by name or by uid. A missing file has none.
func subIDs(path, name string, uid uint32) ([]user.SubID, error) {
	byUID := strconv.FormatUint(uint64(uid), 10)
	entries, err := user.ParseSubIDFileFilter(path, func(e user.SubID) bool {
		return (e.Name == name && name != "") || e.Name == byUID
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rootless: reading %s: %w", path, err)
	}
	var out []user.SubID
	for _, e := range entries {
		// A range that is empty, holds host root, or reaches past the
		// 32-bit id space cannot be written to uid_map.
		if e.Count <= 0 || e.SubID <= 0 || e.SubID+e.Count > 1<<32-1 {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

// rootlessSetup is what prepare needs for a rootless container beyond
// planning: the ids, where its cgroup goes (empty: no cgroup limits), and
// notes for the user.
type rootlessSetup struct {
	ids     RootlessIDs
	cgroups string
	notes   []string
}

// setupRootless decides a rootless container's ids and cgroup.
func setupRootless(id string, o RunOptions) (*rootlessSetup, error) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	name := ""
	if u, err := user.LookupUid(int(uid)); err == nil {
		name = u.Name
	}
	ids, notes, err := rootlessIDsFor(defaultSubIDFiles, name, uid, gid)
	if err != nil {
		return nil, err
	}
	rs := &rootlessSetup{ids: ids, notes: notes}
	if cg, err := rootless.DelegatedCgroup(); err == nil {
		rs.cgroups = strings.TrimSuffix(cg.Parent, "/") + "/secrun-" + id
	} else {
		pids := o.PidsLimit
		if pids == 0 {
			pids = DefaultPidsLimit
		}
		bound := "no process limit (--pids-limit -1)"
		if pids > 0 {
			bound = fmt.Sprintf("processes are bounded by RLIMIT_NPROC=%d instead", pids)
		}
		rs.notes = append(rs.notes, fmt.Sprintf("rootless: no cgroup limits (memory, CPU, pids): %v; %s", err, bound))
	}
	if groups := retainedGroups(); len(groups) > 0 && !ids.Single {
		rs.notes = append(rs.notes, fmt.Sprintf("rootless: the container's processes keep your supplementary groups (host gids %s; gid %d is container gid 0): runc cannot drop them without root, so host files those groups may read are readable through bind mounts (image files are unpacked with group bits narrowed to other bits)", strings.Join(groups, ","), gid))
	}
	return rs, nil
}

// retainedGroups lists the caller's supplementary groups, which runc run
// rootless leaves on every container process.
func retainedGroups() []string {
	gs, err := unix.Getgroups()
	if err != nil {
		return []string{"unknown"}
	}
	var out []string
	for _, g := range gs {
		out = append(out, strconv.Itoa(g))
	}
	return out
}

// rootlessUser fits the process identity the image or -u asked for into a
// rootless container's ids. With a single id, only container root exists:
// the default user (no USER, no -u) becomes it, with a note; an explicit
// non-root user is refused. Supplementary groups are dropped either way:
// runc cannot call setgroups without root, so listing them in the spec would
// describe a process that does not exist.
func rootlessUser(ids *RootlessIDs, userSpec string, uid, gid uint32, extra []uint32) (uint32, uint32, []uint32, string, error) {
	note := ""
	if len(extra) > 0 {
		gs := make([]string, len(extra))
		for i, g := range extra {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		note = fmt.Sprintf("rootless: the supplementary groups of user %q (container gids %s) are not applied: runc cannot set groups without root", userSpec, strings.Join(gs, ","))
	}
	if ids.Single {
		if userSpec == "" {
			return 0, 0, nil, note, nil
		}
		if uid != 0 || gid != 0 {
			return 0, 0, nil, "", fmt.Errorf("user %q (%d:%d): without subordinate ids in /etc/subuid and /etc/subgid a rootless container has one id, its root (your uid); add ranges (usermod --add-subuids/--add-subgids) or run as -u 0", userSpec, uid, gid)
		}
		return 0, 0, nil, note, nil
	}
	if !mapped(ids.UIDMap, uid) || !mapped(ids.GIDMap, gid) {
		return 0, 0, nil, "", fmt.Errorf("user %q (%d:%d) is outside the container's ids: your subordinate ranges map container ids 0-%d; use a smaller id or widen the ranges in /etc/subuid and /etc/subgid", userSpec, uid, gid, lastMapped(ids.UIDMap))
	}
	return uid, gid, nil, note, nil
}

func lastMapped(m []specs.LinuxIDMapping) uint32 {
	var last uint32
	for _, e := range m {
		last = max(last, e.ContainerID+e.Size-1)
	}
	return last
}

// rootlessRefusals are the requests a rootless container cannot honour.
func rootlessRefusals(o RunOptions) error {
	if !o.ReadOnly {
		return errors.New("--read-only=false needs root: a rootless container runs on the shared image cache, read-only; use --tmpfs DIR or -v SRC:DST for writable paths")
	}
	if o.Userns == "host" {
		return errors.New("--userns host needs root: a rootless container always has a user namespace of its own")
	}
	return nil
}

// checkMountIDsMapped refuses uid= and gid= mount options (e.g. --tmpfs
// /x:uid=1000) that name ids the container does not have, in one line
// rather than runc's error.
func checkMountIDsMapped(s *specs.Spec) error {
	for _, m := range s.Mounts {
		for _, o := range m.Options {
			k, v, ok := strings.Cut(o, "=")
			if !ok || (k != "uid" && k != "gid") {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return fmt.Errorf("mount %s: option %s is not a number", m.Destination, o)
			}
			table := s.Linux.UIDMappings
			if k == "gid" {
				table = s.Linux.GIDMappings
			}
			if !mapped(table, uint32(n)) {
				return fmt.Errorf("mount %s: option %s names an id the rootless container does not have (container ids 0-%d)", m.Destination, o, lastMapped(table))
			}
		}
	}
	return nil
}

// runningRootless reports whether this secrun takes the rootless path.
func runningRootless() bool { return rootless.Enabled() }

// unpackOptions are the options images are unpacked with: rootless, the
// caller cannot apply owners and does not try.
func unpackOptions() image.UnpackOptions {
	return image.UnpackOptions{Limits: image.DefaultLimits(), IgnoreOwner: runningRootless()}
}

func (rs *rootlessSetup) idsOrNil() *RootlessIDs {
	if rs == nil {
		return nil
	}
	return &rs.ids
}

func (rs *rootlessSetup) notesOrNil() []string {
	if rs == nil {
		return nil
	}
	return rs.notes
}

// rootlessExecUser checks an exec -u identity against the running rootless
// container's mappings; supplementary groups are dropped, as for the
// container's own process (rootlessUser).
func rootlessExecUser(spec *specs.Spec, userSpec string, uid, gid uint32) (uint32, uint32, []uint32, error) {
	if !mapped(spec.Linux.UIDMappings, uid) || !mapped(spec.Linux.GIDMappings, gid) {
		return 0, 0, nil, fmt.Errorf("user %q (%d:%d) is outside the container's ids (container ids 0-%d)", userSpec, uid, gid, lastMapped(spec.Linux.UIDMappings))
	}
	return uid, gid, nil, nil
}
