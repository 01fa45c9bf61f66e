//go:build !linux

package main

import "errors"

var errNotLinux = errors.New("landlock is only available on Linux")

func confine([]rule) error { return errNotLinux }

func lookPath(string) (string, error) { return "", errNotLinux }

func execve(string, []string, []string) error { return errNotLinux }

func loadFilter([]byte, uint) error { return errNotLinux }
