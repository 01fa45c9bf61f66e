package profiles

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/opencontainers/selinux/go-selinux"
	"github.com/opencontainers/selinux/go-selinux/label"
)

// ErrSELinuxNotEnabled is returned when an SELinux operation needs the
// kernel's SELinux and this host does not run it.
var ErrSELinuxNotEnabled = errors.New("SELinux is not enabled on this host")

// SELinuxLabels are one container's labels: Process goes to
// process.selinuxLabel, Mount to linux.mountLabel and to volumes relabelled
// with :Z.
type SELinuxLabels struct {
	Process string
	Mount   string
}

// SELinuxOptions are the parsed --security-opt label= values.
type SELinuxOptions struct {
	// Disable runs the container without an SELinux process label
	// (label=disable).
	Disable bool
	// User, Role, Type and Level replace those parts of the process label;
	// User and Level also apply to the mount label, FileType replaces the
	// mount label's type.
	User, Role, Type, FileType, Level string
}

// Explicit reports whether the options name a label (anything but disable),
// which a host without SELinux cannot honour.
func (o SELinuxOptions) Explicit() bool {
	return o.User != "" || o.Role != "" || o.Type != "" || o.FileType != "" || o.Level != ""
}

// The labels a container gets when the host's SELinux policy does not say
// otherwise: the container-selinux policy's types, as Docker and Podman use.
const (
	defaultSELinuxProcess = "system_u:system_r:container_t:s0"
	defaultSELinuxFile    = "system_u:object_r:container_file_t:s0"
	// mcsCategories is the number of MCS categories the targeted policy
	// defines (c0..c1023).
	mcsCategories = 1024
	// mcsSensitivities bounds the sensitivities an MLS level may name.
	mcsSensitivities = 16
)

// selinuxIdent reports whether s is an SELinux policy identifier (user,
// role, type), as the policy language's lexer accepts them: at most 255
// bytes. The length is checked apart because a bounded repetition ({0,254})
// compiles into a program of 255 copies, at every start of secrun.
var selinuxIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

func selinuxIdent(s string) bool { return len(s) <= 255 && selinuxIdentRE.MatchString(s) }

const labelOptionsHelp = "use label=disable or label=user:U, label=role:R, label=type:T, label=filetype:T, label=level:L"

// ParseSELinuxOptions parses --security-opt label= values (without the
// "label=" prefix), e.g. ["type:container_t", "level:s0:c1,c2"] or ["disable"].
// Every value is checked against the SELinux identifier or MLS level grammar.
func ParseSELinuxOptions(opts []string) (SELinuxOptions, error) {
	var o SELinuxOptions
	seen := map[string]bool{}
	for _, opt := range opts {
		if opt == "disable" {
			o.Disable = true
			continue
		}
		k, v, ok := strings.Cut(opt, ":")
		if !ok || v == "" {
			return SELinuxOptions{}, fmt.Errorf("bad label option %q: %s", opt, labelOptionsHelp)
		}
		if seen[k] {
			return SELinuxOptions{}, fmt.Errorf("label option %q is given twice: give each of user, role, type, filetype, level at most once", k)
		}
		seen[k] = true
		switch k {
		case "user", "role", "type", "filetype":
			if !selinuxIdent(v) {
				return SELinuxOptions{}, fmt.Errorf("bad label option %q: %q is not an SELinux %s name (letters, digits, '_', '.', '-', starting with a letter or '_')", opt, v, k)
			}
		case "level":
			if err := validateMLSLevel(v); err != nil {
				return SELinuxOptions{}, fmt.Errorf("bad label option %q: %w", opt, err)
			}
		default:
			return SELinuxOptions{}, fmt.Errorf("bad label option %q: unknown key %q; %s", opt, k, labelOptionsHelp)
		}
		switch k {
		case "user":
			o.User = v
		case "role":
			o.Role = v
		case "type":
			o.Type = v
		case "filetype":
			o.FileType = v
		case "level":
			o.Level = v
		}
	}
	if o.Disable && o.Explicit() {
		return SELinuxOptions{}, errors.New("label=disable cannot be combined with other label options: give either disable or user/role/type/filetype/level")
	}
	return o, nil
}

// validateMLSLevel checks an MLS/MCS level or range such as "s0",
// "s0:c1,c2" or "s0-s0:c0.c1023".
func validateMLSLevel(level string) error {
	low, high, isRange := strings.Cut(level, "-")
	parts := []string{low}
	if isRange {
		parts = append(parts, high)
	}
	for _, p := range parts {
		if err := validateMLSPart(p); err != nil {
			return fmt.Errorf("%q is not an MLS level (expected e.g. s0:c1,c2 or s0-s0:c0.c1023): %w", level, err)
		}
	}
	return nil
}

func validateMLSPart(p string) error {
	sens, cats, hasCats := strings.Cut(p, ":")
	if err := checkNumbered(sens, "s", mcsSensitivities); err != nil {
		return err
	}
	if !hasCats {
		return nil
	}
	for _, c := range strings.Split(cats, ",") {
		lo, hi, isRange := strings.Cut(c, ".")
		if err := checkNumbered(lo, "c", mcsCategories); err != nil {
			return err
		}
		if isRange {
			if err := checkNumbered(hi, "c", mcsCategories); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkNumbered checks s is prefix followed by a decimal number below limit,
// without leading zeros.
func checkNumbered(s, prefix string, limit int) error {
	num, ok := strings.CutPrefix(s, prefix)
	if !ok || num == "" || (len(num) > 1 && num[0] == '0') {
		return fmt.Errorf("%q is not %s<number>", s, prefix)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || n >= limit {
		return fmt.Errorf("%q is out of range %s0..%s%d", s, prefix, prefix, limit-1)
	}
	return nil
}

// MCSAllocator hands out MCS category pairs (the "c1,c2" of
// "s0:c1,c2") so that no two running containers share one: the pair is what
// keeps container_t processes out of each other's files. A pair stays
// reserved until its release function runs; then it can be handed out again.
//
// The zero value is ready to use and reserves within this process. With
// StateDir set, reservations are also directories under StateDir, so secrun
// processes running side by side never hand out the same pair.
type MCSAllocator struct {
	// StateDir holds one directory per reserved level when set.
	StateDir string
	// Categories is how many categories (c0..cN-1) pairs are drawn from;
	// 0 means the targeted policy's 1024.
	Categories uint32

	mu sync.Mutex
	// held counts the holders of each level reserved by this allocator.
	held map[string]int
	// base returns the process and file contexts to put the level on; nil
	// means the host policy's container contexts (see hostContainerContexts).
	base func() (process, file string, err error)
}

// defaultMCS is the allocator behind AllocateSELinux.
var defaultMCS MCSAllocator

// AllocateSELinux returns labels for a new container from --security-opt
// label= values (see ParseSELinuxOptions), with a category pair unique among
// the containers this process has allocated and not yet released. release
// frees the pair; calling it more than once is harmless. The labels are
// computed even where SELinux is not enabled, so they can be inspected and
// tested anywhere; ApplyLSM puts them into a spec only where SELinux runs.
func AllocateSELinux(opts []string) (SELinuxLabels, func(), error) {
	labels, h, err := defaultMCS.allocate(opts)
	if err != nil {
		return SELinuxLabels{}, nil, err
	}
	// defaultMCS has no StateDir: a release only updates memory, which
	// cannot fail.
	return labels, h.releaseMemory, nil
}

// Allocate is AllocateSELinux on this allocator. The returned release
// function frees the reservation; it fails only when StateDir cannot be
// updated, and calling it again retries nothing and returns the same result.
func (a *MCSAllocator) Allocate(opts []string) (SELinuxLabels, func() error, error) {
	labels, h, err := a.allocate(opts)
	if err != nil {
		return SELinuxLabels{}, nil, err
	}
	return labels, h.release, nil
}

func (a *MCSAllocator) allocate(opts []string) (SELinuxLabels, *mcsHold, error) {
	o, err := ParseSELinuxOptions(opts)
	if err != nil {
		return SELinuxLabels{}, nil, err
	}
	baseProc, baseFile, err := a.baseContexts()
	if err != nil {
		return SELinuxLabels{}, nil, err
	}
	pcon, err := selinux.NewContext(baseProc)
	if err != nil {
		return SELinuxLabels{}, nil, fmt.Errorf("selinux process context %q: %w", baseProc, err)
	}
	mcon, err := selinux.NewContext(baseFile)
	if err != nil {
		return SELinuxLabels{}, nil, fmt.Errorf("selinux file context %q: %w", baseFile, err)
	}
	if o.Disable {
		// As Docker and Podman do: no process label (the runtime's own
		// domain transition applies) and a mount label on the highest pair,
		// which no allocation hands out.
		mcon["level"] = a.privLevel()
		return SELinuxLabels{Mount: mcon.Get()}, &mcsHold{}, nil
	}

	var h *mcsHold
	if o.Level != "" {
		// A level the user names may be shared on purpose (containers of
		// one pod); it is held, not exclusively reserved.
		h, err = a.hold(o.Level, false)
	} else {
		h, err = a.reserveRandom()
	}
	if err != nil {
		return SELinuxLabels{}, nil, err
	}
	pcon["level"], mcon["level"] = h.level, h.level
	if o.User != "" {
		pcon["user"], mcon["user"] = o.User, o.User
	}
	if o.Role != "" {
		pcon["role"] = o.Role
	}
	if o.Type != "" {
		pcon["type"] = o.Type
	}
	if o.FileType != "" {
		mcon["type"] = o.FileType
	}
	return SELinuxLabels{Process: pcon.Get(), Mount: mcon.Get()}, h, nil
}

// InUse returns how many distinct levels this allocator currently holds.
func (a *MCSAllocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.held)
}

func (a *MCSAllocator) categories() uint32 {
	if a.Categories == 0 {
		return mcsCategories
	}
	return a.Categories
}

// privLevel is the level of label=disable mounts: the two highest categories.
func (a *MCSAllocator) privLevel() string {
	n := a.categories()
	return fmt.Sprintf("s0:c%d,c%d", n-2, n-1)
}

func (a *MCSAllocator) baseContexts() (string, string, error) {
	if a.base != nil {
		return a.base()
	}
	return hostContainerContexts()
}

// hostContainerContexts returns the host policy's container process and file
// contexts (its lxc_contexts) without a level, or the container-selinux
// defaults where SELinux is not enabled.
func hostContainerContexts() (string, string, error) {
	if !selinux.GetEnabled() {
		return defaultSELinuxProcess, defaultSELinuxFile, nil
	}
	// go-selinux reads the policy's lxc_contexts and draws a level of its
	// own; only the user, role and type are kept, and its level is given
	// back at once.
	proc, file, err := label.InitLabels(nil)
	if err != nil {
		return "", "", fmt.Errorf("read the SELinux policy's container contexts: %w", err)
	}
	selinux.ReleaseLabel(proc)
	if proc == "" || file == "" {
		return defaultSELinuxProcess, defaultSELinuxFile, nil
	}
	return proc, file, nil
}

// reserveRandom reserves a fresh category pair, drawn at random like
// go-selinux does so pairs are not predictable from the container count.
func (a *MCSAllocator) reserveRandom() (*mcsHold, error) {
	n := a.categories()
	if n < 4 {
		return nil, fmt.Errorf("MCS allocator needs at least 4 categories, has %d", n)
	}
	// The top pair belongs to label=disable mounts, so draw from n-2.
	draw := n - 2
	priv := a.privLevel()
	pairs := int(draw) * int(draw-1) / 2
	for attempt := 0; attempt < 4*pairs+64; attempt++ {
		c1, c2 := rand.Uint32N(draw), rand.Uint32N(draw)
		if c1 == c2 {
			continue
		}
		if c1 > c2 {
			c1, c2 = c2, c1
		}
		level := fmt.Sprintf("s0:c%d,c%d", c1, c2)
		if level == priv {
			continue
		}
		h, err := a.hold(level, true)
		if errors.Is(err, errMCSTaken) {
			continue
		}
		return h, err
	}
	// Random draws kept colliding: the space is nearly full. Walk it once.
	for c1 := uint32(0); c1 < draw; c1++ {
		for c2 := c1 + 1; c2 < draw; c2++ {
			level := fmt.Sprintf("s0:c%d,c%d", c1, c2)
			h, err := a.hold(level, true)
			if errors.Is(err, errMCSTaken) {
				continue
			}
			return h, err
		}
	}
	return nil, fmt.Errorf("no free MCS category pair among c0..c%d: %d containers hold them all; remove stopped containers", draw-1, pairs)
}

var errMCSTaken = errors.New("MCS level already reserved")

// mcsHold is one holder's claim on a level. The zero value holds nothing.
type mcsHold struct {
	a      *MCSAllocator
	level  string
	kernel bool   // also reserved in go-selinux's in-process set
	holder string // the holder file under a.StateDir, if any

	memOnce, fileOnce sync.Once
	fileErr           error
}

// hold registers one holder of level. exclusive fails with errMCSTaken when
// anyone holds it already.
func (a *MCSAllocator) hold(level string, exclusive bool) (*mcsHold, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.held == nil {
		a.held = map[string]int{}
	}
	if exclusive && a.held[level] > 0 {
		return nil, errMCSTaken
	}
	h := &mcsHold{a: a, level: level, kernel: exclusive && selinux.GetEnabled()}
	if h.kernel {
		// Keep go-selinux's own reservations (used by libraries in this
		// process) in step with ours.
		if err := selinux.ReserveLabelV2(kernelReservationLabel(level)); err != nil {
			if errors.Is(err, selinux.ErrMCSAlreadyExists) {
				return nil, errMCSTaken
			}
			return nil, fmt.Errorf("reserve SELinux level %s: %w", level, err)
		}
	}
	if a.StateDir != "" {
		holder, err := a.holdFile(level, exclusive)
		if err != nil {
			if h.kernel {
				selinux.ReleaseLabel(kernelReservationLabel(level))
			}
			return nil, err
		}
		h.holder = holder
	}
	a.held[level]++
	return h, nil
}

// kernelReservationLabel is a label carrying level, for go-selinux's
// reservation functions, which only look at the level part.
func kernelReservationLabel(level string) string {
	return "system_u:system_r:container_t:" + level
}

// releaseMemory drops the hold from this process's reservations.
func (h *mcsHold) releaseMemory() {
	if h.a == nil {
		return
	}
	h.memOnce.Do(func() {
		a := h.a
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.held[h.level]--; a.held[h.level] <= 0 {
			delete(a.held, h.level)
		}
		if h.kernel {
			selinux.ReleaseLabel(kernelReservationLabel(h.level))
		}
	})
}

// release drops the hold everywhere, the StateDir included.
func (h *mcsHold) release() error {
	h.releaseMemory()
	if h.holder == "" {
		return nil
	}
	h.fileOnce.Do(func() { h.fileErr = releaseHoldFile(h.a.StateDir, h.level, h.holder) })
	return h.fileErr
}

// holdFile records a holder of level under StateDir: the level's directory
// exists while anyone holds it, with one file per holder. An exclusive hold
// must create the directory itself.
func (a *MCSAllocator) holdFile(level string, exclusive bool) (string, error) {
	if err := os.MkdirAll(a.StateDir, 0o700); err != nil {
		return "", fmt.Errorf("MCS reservation directory %s: %w", a.StateDir, err)
	}
	dir := filepath.Join(a.StateDir, level)
	for range 8 {
		err := os.Mkdir(dir, 0o700)
		switch {
		case err == nil:
		case errors.Is(err, os.ErrExist) && exclusive:
			return "", errMCSTaken
		case errors.Is(err, os.ErrExist):
		default:
			return "", fmt.Errorf("reserve MCS level %s in %s: %w", level, a.StateDir, err)
		}
		f, err := os.CreateTemp(dir, "holder-")
		if errors.Is(err, os.ErrNotExist) {
			// The last holder released the level between our mkdir and
			// now; take it again.
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reserve MCS level %s in %s: %w", level, a.StateDir, err)
		}
		name := filepath.Base(f.Name())
		if err := f.Close(); err != nil {
			return "", fmt.Errorf("reserve MCS level %s in %s: %w", level, a.StateDir, err)
		}
		return name, nil
	}
	return "", fmt.Errorf("reserve MCS level %s in %s: the level kept being released while taking it; retry", level, a.StateDir)
}

func releaseHoldFile(stateDir, level, holder string) error {
	dir := filepath.Join(stateDir, level)
	if err := os.Remove(filepath.Join(dir, holder)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release MCS level %s in %s: %w", level, stateDir, err)
	}
	// Other holders keep the directory (and so the level) alive.
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !isNotEmpty(err) {
		return fmt.Errorf("release MCS level %s in %s: %w", level, stateDir, err)
	}
	return nil
}

// protectedRelabelPaths are host directories a volume relabel must never
// touch: relabelling them would lock the host's own services out.
var protectedRelabelPaths = []string{
	"/", "/bin", "/boot", "/dev", "/etc", "/etc/passwd", "/etc/pki", "/etc/shadow",
	"/home", "/lib", "/lib32", "/lib64", "/media", "/mnt", "/opt", "/proc", "/root",
	"/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log",
	"/var/run", "/var/tmp",
}

// RelabelVolume gives the host path of a :z or :Z volume the container's
// mount label, recursively: with shared (:z) at level s0, which every
// container may use; otherwise (:Z) with the container's own categories. The
// arguments are checked first, everywhere; where SELinux is not enabled
// nothing is changed and the error wraps ErrSELinuxNotEnabled, which callers
// report as a warning ("volume not relabelled: SELinux is not enabled").
func RelabelVolume(path, mountLabel string, shared bool) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("relabel volume %q: the host path must be absolute", path)
	}
	clean := filepath.Clean(path)
	resolved, err := filepath.EvalSymlinks(clean)
	if err != nil {
		return fmt.Errorf("relabel volume %s: %w", path, err)
	}
	protected := slices.Clone(protectedRelabelPaths)
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		protected = append(protected, filepath.Clean(home))
	}
	for _, p := range []string{clean, resolved} {
		if slices.Contains(protected, p) {
			return fmt.Errorf("relabel volume %s: refusing to relabel the system directory %s; mount a subdirectory or drop :z/:Z", path, p)
		}
	}
	con, err := selinux.NewContext(mountLabel)
	if err != nil || con["level"] == "" {
		return fmt.Errorf("relabel volume %s: mount label %q is not a user:role:type:level context", path, mountLabel)
	}
	for _, k := range []string{"user", "role", "type"} {
		if !selinuxIdent(con[k]) {
			return fmt.Errorf("relabel volume %s: mount label %q has a bad %s", path, mountLabel, k)
		}
	}
	if err := validateMLSLevel(con["level"]); err != nil {
		return fmt.Errorf("relabel volume %s: mount label %q: %w", path, mountLabel, err)
	}
	if shared {
		con["level"] = "s0"
	}
	if !selinux.GetEnabled() {
		return fmt.Errorf("volume %s not relabelled to %s: %w", path, con.Get(), ErrSELinuxNotEnabled)
	}
	if err := selinux.Chcon(resolved, con.Get(), true); err != nil {
		return fmt.Errorf("relabel volume %s to %s: %w", path, con.Get(), err)
	}
	return nil
}

// isNotEmpty reports whether err is rmdir's "directory not empty" (EEXIST on
// some filesystems).
func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
