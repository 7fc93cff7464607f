// Package deploy holds RawFlow's deployment files: the container image (Dockerfile), a
// Docker Compose fleet, Kubernetes manifests (k8s/), systemd units (systemd/) and example
// configuration files. It has no code: its tests check those files against the real
// binary, flags and routes (see README.md here).
package deploy
