// Package profiles holds secrun's built-in security data and the generators
// that turn a hardened spec into host confinement: the default seccomp
// profile, the Rego policy library (restricted, baseline, cis-docker),
// AppArmor profile rendering, SELinux labels, host LSM detection, and the
// Landlock rules applied by secrun-init. Data here is reviewed data: every
// loose entry carries a comment saying why, and standing tests pin the
// promises it makes.
package profiles
