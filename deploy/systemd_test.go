package deploy

// The systemd units (systemd/): the hardening and the commands they must have, then
// `systemd-analyze verify` (any complaint fails) and `systemd-analyze security --offline`
// (exposure at most 2.0) on copies whose ExecStart runs the binary built from the
// Dockerfile. Without systemd-analyze (make deps installs it) that part fails in CI and is
// skipped elsewhere.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rawflow/rawflow/internal/hlstest"
)

// unitFile maps "Section.Key" to its values, in order (a key may repeat).
type unitFile map[string][]string

func parseUnit(t *testing.T, file string) unitFile {
	t.Helper()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, file)))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" || strings.HasSuffix(l, `\`) {
				t.Fatalf("%s:%d: %q: want Key=Value in a section, on one line", file, n, l)
			}
			u[section+"."+k] = append(u[section+"."+k], v)
		}
	}
	return u
}

func TestSystemdUnits(t *testing.T) {
	// What every unit must say (Service section), beyond what each says for its command.
	hardening := map[string]string{
		"DynamicUser":             "yes",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"MemoryDenyWriteExecute":  "yes",
		"LockPersonality":         "yes",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"RestrictNamespaces":      "yes",
		"SystemCallArchitectures": "native",
	}
	for _, sub := range []string{"gateway", "peer"} {
		t.Run(sub, func(t *testing.T) {
			file := filepath.Join("systemd", "rawflow-"+sub+".service")
			u := parseUnit(t, file)
			get := func(k string) string { return strings.Join(u["Service."+k], " ") }
			for k, want := range hardening {
				if vs, ok := u["Service."+k]; !ok || vs[len(vs)-1] != want {
					t.Errorf("%s: want %s=%s, have %q", file, k, want, vs)
				}
			}
			if !slices.Contains(u["Service.SystemCallFilter"], "@system-service") {
				t.Errorf("%s: want SystemCallFilter=@system-service", file)
			}
			if get("TimeoutStopSec") == "" {
				t.Errorf("%s: want TimeoutStopSec", file)
			}
			if want := "-/etc/rawflow/" + sub + ".env"; get("EnvironmentFile") != want {
				t.Errorf("%s: EnvironmentFile=%s, want %s", file, get("EnvironmentFile"), want)
			}
			execStart := strings.Fields(get("ExecStart"))
			if want := []string{"/usr/local/bin/rawflow", sub, "--config", "/etc/rawflow/" + sub + ".yaml"}; !slices.Equal(execStart, want) {
				t.Errorf("%s: ExecStart=%s, want %s", file, get("ExecStart"), strings.Join(want, " "))
			}
			// The example configuration it points at (installed as /etc/rawflow/SUB.yaml).
			if _, err := os.Stat("rawflow-" + sub + ".yaml"); err != nil {
				t.Errorf("%s: %v", file, err)
			}
			// Address families: IP and Unix; the gateway also netlink, which
			// net.InterfaceByName needs for a udp://…?iface= multicast source.
			families := strings.Fields(get("RestrictAddressFamilies"))
			want := []string{"AF_INET", "AF_INET6", "AF_UNIX"}
			if sub == "gateway" {
				want = append(want, "AF_NETLINK")
			}
			slices.Sort(families)
			slices.Sort(want)
			if !slices.Equal(families, want) {
				t.Errorf("%s: RestrictAddressFamilies=%v, want %v", file, families, want)
			}
			if u["Install.WantedBy"] == nil {
				t.Errorf("%s: no [Install] WantedBy", file)
			}

			hlstest.RequireTool(t, "systemd-analyze") // make deps installs it: a failure in CI, a skip elsewhere
			bin := rawflowBinary(t)
			// A copy whose ExecStart is the binary built from the Dockerfile (verify wants an
			// executable there).
			dir := t.TempDir()
			unit := filepath.Join(dir, filepath.Base(file))
			text := strings.Replace(string(readFile(t, file)), "ExecStart=/usr/local/bin/rawflow ", "ExecStart="+bin+" ", 1)
			if err := os.WriteFile(unit, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			// verify exits 0 on unknown keys and unparsable values, so any output fails.
			out, err := exec.Command("systemd-analyze", "verify", "--man=no", unit).CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify %s: %v\n%s", file, err, out)
			}
			out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", unit).CombinedOutput()
			if err != nil {
				t.Errorf("systemd-analyze security %s: exposure above 2.0 (%v):\n%s", file, err, out)
			}
		})
	}
}
