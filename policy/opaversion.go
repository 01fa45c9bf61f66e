package policy

// OPAVersion is the version of OPA this module builds with (go.mod). The
// decision cache keys every entry on it, so that a new OPA starts a fresh
// cache. It is a constant rather than OPA's own version.Version so that a
// build without the engine (secrun_noengine) computes the same keys;
// TestOPAVersionMatchesModule fails when go.mod moves and this does not.
const OPAVersion = "1.22.2"
