package runner

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/secrun/secrun/audit"
)

// A foreground --rm container keeps its record on a tmpfs (prepare), so a
// host that goes down while one runs comes back with the container's
// directory empty, and its name, its id block and runc's state of it still
// on disk: `secrun run --name` would find the name taken by a container no
// command can name. What such a container held is reclaimed when it is
// found: by `secrun ps` and by a run that wants its name.

// bootTime is when the host last started, from CLOCK_BOOTTIME (which
// counts suspended time too).
func bootTime() (time.Time, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return time.Time{}, fmt.Errorf("boot time: %w", err)
	}
	return time.Now().Add(-time.Duration(ts.Nano())), nil
}

// leftByRestart reports whether container id is what a host restart left
// of it: no record, nothing mounted on its directory, and its directory,
// or when it has none its name file, made before this boot. A container
// being created has its directory made since boot; one being removed has
// no name file by the time its directory goes.
func (l layout) leftByRestart(id, nameFile string, boot time.Time) (bool, error) {
	if !validID(id) {
		return false, nil
	}
	if _, err := os.Lstat(l.record(id)); !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	evidence := l.dir(id)
	var dir, parent unix.Stat_t
	err := unix.Lstat(evidence, &dir)
	switch {
	case errors.Is(err, unix.ENOENT) && nameFile != "":
		evidence = nameFile
		err = unix.Lstat(evidence, &dir)
	case err == nil:
		if err := unix.Lstat(l.containers(), &parent); err != nil {
			return false, err
		}
		if dir.Dev != parent.Dev {
			return false, nil // a mount point: the tmpfs is still there
		}
	}
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%s: %w", evidence, err)
	}
	return time.Unix(dir.Mtim.Unix()).Before(boot), nil
}

func validID(id string) bool {
	return len(id) == 64 && strings.Trim(id, "0123456789abcdef") == ""
}

// reclaimStale reclaims the containers among ids that a host restart left.
func (r *Runner) reclaimStale(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	boot, err := bootTime()
	if err != nil {
		return err
	}
	l := r.layout()
	for _, id := range ids {
		stale, err := l.leftByRestart(id, "", boot)
		if err != nil {
			return err
		}
		if stale {
			if err := r.reclaim(ctx, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// claimName reserves name for container id. A name held by a container a
// host restart left is reclaimed first.
func (r *Runner) claimName(ctx context.Context, name, id string) error {
	l := r.layout()
	err := l.reserveName(name, id)
	var inUse nameInUseError
	if !errors.As(err, &inUse) {
		return err
	}
	owner, rerr := os.ReadFile(l.nameFile(name))
	if rerr != nil {
		return err
	}
	boot, berr := bootTime()
	if berr != nil {
		return errors.Join(err, berr)
	}
	stale, serr := l.leftByRestart(string(owner), l.nameFile(name), boot)
	if serr != nil || !stale {
		return errors.Join(err, serr)
	}
	if err := r.reclaim(ctx, string(owner)); err != nil {
		return err
	}
	return l.reserveName(name, id)
}

// reclaim releases what container id held, records the removal and says
// so: runc's state, mounts, names, its id block and its directory.
func (r *Runner) reclaim(ctx context.Context, id string) error {
	l := r.layout()
	if err := r.Runtime.Delete(ctx, id, true); err != nil && !strings.Contains(err.Error(), "does not exist") {
		return fmt.Errorf("reclaiming container %s: %w", short(id), err)
	}
	names, err := l.namesOf(id)
	errs := []error{err, l.unmount(id)}
	for _, n := range names {
		errs = append(errs, l.releaseName(n))
	}
	errs = append(errs, l.userns().releaseOwner(id))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reclaiming container %s: %w", short(id), err)
	}
	if err := os.RemoveAll(l.dir(id)); err != nil {
		return fmt.Errorf("reclaiming container %s: %w", short(id), err)
	}
	ctr := audit.Container{ID: id, Runtime: r.Runtime.Path}
	if len(names) > 0 {
		ctr.Name = names[0]
	}
	if err := r.record(ctx, audit.Event{Kind: "container.removed", Outcome: "success", Container: ctr,
		Fields: map[string]any{"reason": "its record did not survive a host restart"}}); err != nil {
		return err
	}
	label := short(id)
	if ctr.Name != "" {
		label += " (" + ctr.Name + ")"
	}
	r.warnf("removed container %s: its record did not survive a host restart", label)
	return nil
}

// namesOf returns the names reserved for container id.
func (l layout) namesOf(id string) ([]string, error) {
	entries, err := os.ReadDir(l.names())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		owner, err := os.ReadFile(filepath.Join(l.names(), e.Name()))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if string(owner) == id {
			out = append(out, e.Name())
		}
	}
	return out, nil
}
