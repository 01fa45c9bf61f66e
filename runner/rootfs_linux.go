package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountRootfs builds a container's root filesystem at target without copying
// or changing the image: the image's shared, unpacked tree is cloned as an
// idmapped mount (host uid 0 appears as the container's mapped root, so image
// files keep their ownership inside the user namespace), and that clone is the
// read-only lower layer of an overlay whose upper layer belongs to this
// container alone. runc creates missing mount points in the upper layer; the
// image cache is never written.
func mountRootfs(image, dir, target string, ns *usernsFD, top string) error {
	lower := filepath.Join(dir, "lower")
	if err := os.MkdirAll(lower, 0o700); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := idmapClone(image, lower, ns); err != nil {
		return err
	}
	err := overlay(lowers(top, lower), dir, target, ns.ids.HostID)
	// The overlay holds its own reference to the lower layer, so the
	// idmapped clone's mount point is detached either way.
	if derr := unix.Unmount(lower, unix.MNT_DETACH); derr != nil && err == nil {
		err = fmt.Errorf("rootfs: %w", derr)
	}
	return err
}

// mountOverlay is mountRootfs without id shifting, for containers that share
// the host's user namespace.
func mountOverlay(image, dir, target, top string) error {
	return overlay(lowers(top, image), dir, target, 0)
}

// lowers is overlayfs's lowerdir value: top (if any) over lower.
func lowers(top, lower string) string {
	if top == "" {
		return lower
	}
	return top + ":" + lower
}

func overlay(lower, dir, target string, rootID uint32) error {
	upper := filepath.Join(dir, "upper")
	work := filepath.Join(dir, "work")
	for _, d := range []string{upper, work, target} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("rootfs: %w", err)
		}
	}
	// The upper layer's root is the container's root directory: owned by
	// container root so it looks like an ordinary / inside.
	if err := os.Chown(upper, int(rootID), int(rootID)); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return fmt.Errorf("rootfs: %w", err)
	}
	// The upper layer lives as long as the container, which a crash ends:
	// "volatile" (Linux 5.10) spares it every sync, among them the one at
	// unmount that cost a journal commit (about 3 ms) per container.
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lower, upper, work)
	err := unix.Mount("overlay", target, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts+",volatile")
	if errors.Is(err, unix.EINVAL) {
		err = unix.Mount("overlay", target, "overlay", unix.MS_NOSUID|unix.MS_NODEV, opts)
	}
	if err != nil {
		return fmt.Errorf("rootfs: mounting overlay at %s: %w", target, err)
	}
	return nil
}

// idmapClone mounts a clone of src at dst, with src's ids shifted by the
// user namespace ns and the clone read-only.
func idmapClone(src, dst string, ns *usernsFD) error {
	nsfd, err := ns.take()
	if err != nil {
		return err
	}
	defer unix.Close(nsfd)
	treefd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("rootfs: cloning %s: %w", src, err)
	}
	defer unix.Close(treefd)
	attr := &unix.MountAttr{
		Attr_set:  unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV,
		Userns_fd: uint64(nsfd),
	}
	if err := unix.MountSetattr(treefd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("rootfs: idmapping %s (the kernel must support idmapped mounts on this filesystem): %w", src, err)
	}
	if err := unix.MoveMount(treefd, "", unix.AT_FDCWD, dst, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("rootfs: attaching idmapped clone at %s: %w", dst, err)
	}
	return nil
}

// unmountRootfs undoes mountRootfs; it is safe to call on a half-built or
// already removed rootfs. Rootless secrun mounts nothing (runc mounts the
// image inside the container's own mount namespace), and umount2 would only
// say EPERM, so there is nothing to undo.
func unmountRootfs(dir, target string) error {
	if runningRootless() {
		return nil
	}
	var errs []error
	for _, m := range []string{target, filepath.Join(dir, "lower")} {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// mountBundle puts a container's bundle directory on a tmpfs of its own:
// the spec, the rootfs mount point, the overlay's upper and work layers,
// runc's log and pid file. With a read-only root filesystem the upper layer
// only ever holds the mount points runc makes, so 16 MiB is plenty; the
// container can write nothing there. Creating and removing those dozen
// entries on the state directory's filesystem cost 2-3 ms per container in
// journal updates; unmounting the tmpfs drops them at once.
func mountBundle(dir string) error {
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0711,size=16m,nr_inodes=4096"); err != nil {
		return fmt.Errorf("bundle: mounting a tmpfs at %s: %w", dir, err)
	}
	return nil
}

// unmountBundle undoes mountBundle; it is safe to call when nothing is
// mounted there (a writable root filesystem's bundle, a rebooted host).
func unmountBundle(dir string) error {
	if runningRootless() {
		return nil
	}
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmounting %s: %w", dir, err)
	}
	return nil
}
