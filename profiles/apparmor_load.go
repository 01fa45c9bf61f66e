package profiles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// AppArmorEnabled reports whether runc would apply an AppArmor profile on this
// host: the same test runc makes (AppArmor's securityfs directory exists and
// the module parameter says Y), so secrun never sets a profile runc rejects.
func AppArmorEnabled() bool {
	return appArmorEnabledAt(DefaultLSMSources())
}

// LoadAppArmor compiles profileText and loads it into the kernel, replacing a
// loaded profile of the same name and writing the parser's cache
// (`apparmor_parser -r -W`). It fails with ErrAppArmorNotEnabled when the
// host does not run AppArmor.
func LoadAppArmor(profileText string) error {
	if !AppArmorEnabled() {
		return fmt.Errorf("load apparmor profile: %w (no %s/apparmor, or %s/apparmor/parameters/enabled is not Y); run with --security-opt apparmor=unconfined or on a host with AppArmor",
			ErrAppArmorNotEnabled, defaultSecurityFS, defaultSysModule)
	}
	return runAppArmorParser(profileText, "load apparmor profile", "--replace", "--write-cache")
}

// UnloadAppArmor removes the loaded profile name from the kernel, for when the
// container it was generated for is removed. A profile that is not loaded is
// not an error.
func UnloadAppArmor(name string) error {
	if err := ValidateAppArmorName(name); err != nil {
		return err
	}
	if !AppArmorEnabled() {
		return fmt.Errorf("unload apparmor profile %s: %w", name, ErrAppArmorNotEnabled)
	}
	loaded, err := readAppArmorProfiles(defaultSecurityFS)
	if err != nil {
		return fmt.Errorf("unload apparmor profile %s: %w", name, err)
	}
	if _, ok := loaded[name]; !ok {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(defaultSecurityFS, "apparmor", ".remove"), os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("unload apparmor profile %s: %w", name, err)
	}
	_, werr := f.WriteString(name)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return fmt.Errorf("unload apparmor profile %s: %w", name, err)
	}
	return nil
}
