package deploy

// docker-compose.yml: decoded strictly into the part of the Compose format it uses, then
// checked for coherence (services, images, commands, flags, dependencies, addresses, ports,
// the load balancer's upstreams), and each rawflow service is started with its command and
// environment.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/rawflow/rawflow/internal/hlstest"
)

type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet  string `json:"subnet"`
				IPRange string `json:"ip_range"`
			} `json:"config"`
		} `json:"ipam"`
	} `json:"networks"`
	Volumes map[string]*struct{} `json:"volumes"`
}

// composeService: the service fields docker-compose.yml uses. Strict: a field missing here
// fails the test until it is added (and checked).
type composeService struct {
	Image string `json:"image"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build"`
	User            string            `json:"user"`
	ReadOnly        bool              `json:"read_only"`
	CapDrop         []string          `json:"cap_drop"`
	SecurityOpt     []string          `json:"security_opt"`
	Restart         string            `json:"restart"`
	StopSignal      string            `json:"stop_signal"`
	StopGracePeriod string            `json:"stop_grace_period"`
	Command         []string          `json:"command"`
	Environment     map[string]string `json:"environment"`
	DependsOn       map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Ports       []string `json:"ports"`
	Volumes     []string `json:"volumes"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Timeout  string   `json:"timeout"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
	Networks serviceNetworks `json:"networks"`
}

// serviceNetworks is a service's networks, as a list of names or a map of name to settings.
type serviceNetworks map[string]struct {
	IPv4Address string `json:"ipv4_address"`
}

func (n *serviceNetworks) UnmarshalJSON(b []byte) error {
	var names []string
	if json.Unmarshal(b, &names) == nil {
		*n = serviceNetworks{}
		for _, name := range names {
			(*n)[name] = struct {
				IPv4Address string `json:"ipv4_address"`
			}{}
		}
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	m := map[string]struct {
		IPv4Address string `json:"ipv4_address"`
	}{}
	if err := dec.Decode(&m); err != nil {
		return err
	}
	*n = m
	return nil
}

// loadCompose reads docker-compose.yml (anchors and merge keys resolved, top-level x-
// extension fields dropped) into composeFile, strictly, and interpolates ${VAR:-default}
// with the defaults (as with none of those variables set).
func loadCompose(t *testing.T) composeFile {
	t.Helper()
	j, err := yaml.YAMLToJSON(readFile(t, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err = json.Unmarshal(j, &top); err != nil {
		t.Fatal(err)
	}
	for k := range top {
		if strings.HasPrefix(k, "x-") {
			delete(top, k)
		}
	}
	j, _ = json.Marshal(top)
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var cf composeFile
	if err = dec.Decode(&cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	for name, s := range cf.Services {
		for k, v := range s.Environment {
			if s.Environment[k], err = interpolate(v); err != nil {
				t.Errorf("service %s: %s: %v", name, k, err)
			}
		}
		for i, a := range s.Command {
			if s.Command[i], err = interpolate(a); err != nil {
				t.Errorf("service %s: command: %v", name, err)
			}
		}
		cf.Services[name] = s
	}
	return cf
}

var interpRe = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$`)

// interpolate applies Compose's ${VAR:-default} as if no VAR were set; ${VAR} without a
// default would need the caller's environment, and is refused.
func interpolate(s string) (string, error) {
	var err error
	out := interpRe.ReplaceAllStringFunc(s, func(m string) string {
		sub := interpRe.FindStringSubmatch(m)
		switch {
		case m == "$$":
			return "$"
		case sub[2] != "":
			return sub[3]
		}
		err = fmt.Errorf("%q: give ${VAR:-default} (the file must work with no variable set)", s)
		return m
	})
	return out, err
}

// composeArgs reads the --flag values of a rawflow command, the environment first, then
// the command line (which wins; repeatable flags accumulate).
func composeArgs(s composeService) map[string][]string {
	v := map[string][]string{}
	for k, val := range s.Environment {
		if name := envFlag(k); name != "" {
			if name == "channel" || name == "channel-latency" {
				v[name] = strings.Fields(val)
			} else {
				v[name] = []string{val}
			}
		}
	}
	args := s.Command[1:]
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if !hasVal {
			val = "true"
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				val, i = args[i+1], i+1
			}
		}
		if name == "channel" || name == "channel-latency" {
			v[name] = append(v[name], val)
		} else {
			v[name] = []string{val}
		}
	}
	return v
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// nginxConf is what the compose test needs of deploy/lb/nginx.conf.
type nginxConf struct {
	listen   string   // the port of the listen directive
	upstream []string // HOST:PORT of each upstream server
	text     string
}

func readNginxConf(t *testing.T, file string) nginxConf {
	t.Helper()
	text := string(readFile(t, file))
	code := string(stripComments([]byte(text)))
	c := nginxConf{text: text}
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([A-Za-z0-9.-]+:\d+)\b`).FindAllStringSubmatch(code, -1) {
		c.upstream = append(c.upstream, m[1])
	}
	ls := regexp.MustCompile(`(?m)^\s*listen\s+(\d+);`).FindAllStringSubmatch(code, -1)
	if len(ls) != 1 {
		t.Fatalf("%s: want one `listen PORT;`", file)
	}
	c.listen = ls[0][1]
	if strings.Contains(code, "ip_hash") {
		t.Errorf("%s: ip_hash hashes only three octets: every container would go to one gateway", file)
	}
	return c
}

func TestCompose(t *testing.T) {
	cf := loadCompose(t)
	uid, gid := dockerfileUser(t, parseDockerfile(t, "Dockerfile"))

	roles := map[string][]string{} // gateway, origin (a gateway without Redis), peer, lb, redis
	rawflowImage := ""
	for name, s := range cf.Services {
		switch {
		case s.Build != nil:
			// A rawflow service: the image of deploy/Dockerfile, hardened, no healthcheck.
			if p := filepath.Join(s.Build.Context, s.Build.Dockerfile); filepath.Clean(p) != filepath.Join("..", "deploy", "Dockerfile") {
				t.Errorf("service %s: builds %s, want deploy/Dockerfile from the repository root", name, p)
			}
			if rawflowImage != "" && s.Image != rawflowImage {
				t.Errorf("service %s: image %s, others %s", name, s.Image, rawflowImage)
			}
			rawflowImage = s.Image
			if s.User != fmt.Sprintf("%d:%d", uid, gid) {
				t.Errorf("service %s: user %q, want the image's %d:%d", name, s.User, uid, gid)
			}
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") || !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
				t.Errorf("service %s: want read_only, cap_drop [ALL], no-new-privileges", name)
			}
			if s.Healthcheck != nil {
				t.Errorf("service %s: a healthcheck cannot run in the distroless image (no shell)", name)
			}
			if len(s.Command) == 0 {
				t.Errorf("service %s: no command", name)
				continue
			}
			role := s.Command[0]
			if role == "gateway" && first(composeArgs(s)["redis"]) == "" {
				role = "origin"
			}
			roles[role] = append(roles[role], name)
		case strings.HasPrefix(s.Image, "redis:"):
			roles["redis"] = append(roles["redis"], name)
		case strings.HasPrefix(s.Image, "nginx:"):
			roles["lb"] = append(roles["lb"], name)
		default:
			t.Errorf("service %s: image %s: not a role this test knows", name, s.Image)
		}
		if s.Image == "" || strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			t.Errorf("service %s: image %q: want a pinned tag", name, s.Image)
		}
		for dep, d := range s.DependsOn {
			target, ok := cf.Services[dep]
			switch {
			case !ok:
				t.Errorf("service %s: depends on %s: no such service", name, dep)
			case d.Condition == "service_healthy" && target.Healthcheck == nil:
				t.Errorf("service %s: waits for %s to be healthy, which has no healthcheck", name, dep)
			case d.Condition != "service_healthy" && d.Condition != "service_started":
				t.Errorf("service %s: depends_on %s: condition %q", name, dep, d.Condition)
			}
		}
	}
	for k, v := range roles {
		slices.Sort(v)
		roles[k] = v
	}
	if len(roles["gateway"]) < 2 || len(roles["peer"]) < 2 || len(roles["lb"]) != 1 || len(roles["redis"]) != 1 {
		t.Fatalf("services by role %v: want two gateways or more on Redis, one load balancer, one Redis, two peers or more", roles)
	}
	if r := cf.Services[roles["redis"][0]]; r.Healthcheck == nil {
		t.Errorf("service %s: Redis has a shell: give it a healthcheck", roles["redis"][0])
	}

	// Addresses: fixed ones within the subnet, outside the range Docker allocates from.
	fixed := map[string]netip.Addr{}
	for name, s := range cf.Services {
		for nw, ns := range s.Networks {
			if _, ok := cf.Networks[nw]; !ok {
				t.Errorf("service %s: network %s is not declared", name, nw)
			}
			if ns.IPv4Address == "" {
				continue
			}
			a, err := netip.ParseAddr(ns.IPv4Address)
			if err != nil {
				t.Errorf("service %s: ipv4_address: %v", name, err)
				continue
			}
			for other, oa := range fixed {
				if oa == a {
					t.Errorf("services %s and %s: both %s", name, other, a)
				}
			}
			fixed[name] = a
			for _, ipam := range cf.Networks[nw].IPAM.Config {
				sub, err1 := netip.ParsePrefix(ipam.Subnet)
				rng, err2 := netip.ParsePrefix(ipam.IPRange)
				if err1 != nil || err2 != nil || !sub.Contains(a) || rng.Contains(a) {
					t.Errorf("service %s: %s: want inside subnet %s and outside ip_range %s", name, a, ipam.Subnet, ipam.IPRange)
				}
			}
		}
	}
	hostPorts := map[string]string{}
	for name, s := range cf.Services {
		for _, p := range s.Ports {
			f := strings.Split(p, ":")
			hp := strings.Join(f[:len(f)-1], ":")
			if other, dup := hostPorts[hp]; dup {
				t.Errorf("services %s and %s both publish %s", name, other, hp)
			}
			hostPorts[hp] = name
		}
	}

	// The fleet: gateways on the one Redis, one peer key, channels from a service that
	// serves them.
	redisName := roles["redis"][0]
	var redisURL, peerKey string
	listenPort := map[string]string{} // gateway service -> port
	for _, name := range append(slices.Clone(roles["gateway"]), roles["origin"]...) {
		a := composeArgs(cf.Services[name])
		_, port, err := net.SplitHostPort(first(a["listen"]))
		if err != nil {
			t.Errorf("service %s: --listen %q: %v", name, first(a["listen"]), err)
		}
		listenPort[name] = port
	}
	for _, name := range roles["gateway"] {
		a := composeArgs(cf.Services[name])
		if redisURL == "" {
			redisURL, peerKey = first(a["redis"]), first(a["peer-key"])
		}
		if first(a["redis"]) != redisURL || first(a["peer-key"]) != peerKey {
			t.Errorf("service %s: gateways of one Redis must share --redis and --peer-key", name)
		}
		if u, err := url.Parse(redisURL); err != nil || u.Hostname() != redisName || u.Port() != "6379" {
			t.Errorf("service %s: --redis %q: want redis://%s:6379/…", name, redisURL, redisName)
		}
		if cf.Services[name].DependsOn[redisName].Condition != "service_healthy" {
			t.Errorf("service %s: want depends_on %s: service_healthy", name, redisName)
		}
		if len(a["channel"]) == 0 {
			t.Errorf("service %s: no --channel", name)
		}
		for _, ch := range a["channel"] {
			_, srcs, _ := strings.Cut(ch, "=")
			for _, src := range strings.Split(srcs, ",") {
				u, err := url.Parse(src)
				if err != nil || u.Host == "" {
					continue // demo, or not a URL to check here
				}
				host := u.Hostname()
				if _, isService := cf.Services[host]; !isService {
					continue
				}
				if !slices.Contains(roles["origin"], host) || listenPort[host] != u.Port() {
					t.Errorf("service %s: channel %s: %s:%s is not a gateway of the compose file listening there", name, ch, host, u.Port())
					continue
				}
				served := false
				for _, och := range composeArgs(cf.Services[host])["channel"] {
					oname, _, _ := strings.Cut(och, "=")
					served = served || u.Path == "/live/"+oname+"/index.m3u8"
				}
				if !served {
					t.Errorf("service %s: channel %s: %s serves no such channel", name, ch, host)
				}
				if _, ok := cf.Services[name].DependsOn[host]; !ok {
					t.Errorf("service %s: want depends_on %s", name, host)
				}
			}
		}
		if fixed[name] == (netip.Addr{}) {
			t.Errorf("service %s: want a fixed address (nginx resolves its upstreams once)", name)
		}
	}
	if peerKey == "" {
		t.Error("gateways: no --peer-key: each would make its own, and proxies would be refused by the other")
	}

	// The load balancer: its configuration file, upstreams = the gateways, its port.
	lbName := roles["lb"][0]
	lb := cf.Services[lbName]
	var confFile string
	for _, v := range lb.Volumes {
		f := strings.Split(v, ":")
		if len(f) >= 2 && f[1] == "/etc/nginx/nginx.conf" {
			confFile = f[0]
		}
	}
	if confFile == "" {
		t.Fatalf("service %s: no volume for /etc/nginx/nginx.conf", lbName)
	}
	conf := readNginxConf(t, confFile)
	var want []string
	for _, g := range roles["gateway"] {
		want = append(want, g+":"+listenPort[g])
	}
	up := slices.Clone(conf.upstream)
	slices.Sort(up)
	if !slices.Equal(up, want) {
		t.Errorf("%s: upstream servers %v, want the gateways %v", confFile, conf.upstream, want)
	}
	published := false
	for _, p := range lb.Ports {
		published = published || strings.HasSuffix(p, ":"+conf.listen)
	}
	if !published {
		t.Errorf("service %s: ports %v do not publish nginx's listen port %s", lbName, lb.Ports, conf.listen)
	}
	for _, g := range roles["gateway"] {
		if _, ok := lb.DependsOn[g]; !ok {
			t.Errorf("service %s: want depends_on %s", lbName, g)
		}
	}

	// The peers: through the load balancer, each advertising its own fixed address.
	for _, name := range roles["peer"] {
		s := cf.Services[name]
		a := composeArgs(s)
		u, err := url.Parse(first(a["gateway"]))
		if err != nil || u.Hostname() != lbName || u.Port() != conf.listen {
			t.Errorf("service %s: --gateway %q: want http://%s:%s", name, first(a["gateway"]), lbName, conf.listen)
		}
		host, port, err := net.SplitHostPort(first(a["advertise"]))
		_, nport, err2 := net.SplitHostPort(first(a["peer-listen"]))
		if err != nil || err2 != nil || host != fixed[name].String() || port != nport {
			t.Errorf("service %s: --advertise %q: want its fixed address %s and its --peer-listen port", name, first(a["advertise"]), fixed[name])
		}
		phost, pport, err := net.SplitHostPort(first(a["listen"]))
		if err != nil {
			t.Errorf("service %s: --listen %q: %v", name, first(a["listen"]), err)
		}
		for _, p := range s.Ports {
			if !strings.HasSuffix(p, ":"+pport) {
				t.Errorf("service %s: publishes %s, but the player port is %s", name, p, pport)
			}
			if ip := net.ParseIP(phost); ip != nil && ip.IsLoopback() {
				t.Errorf("service %s: the player port listens on loopback (%s): publishing it reaches nothing", name, phost)
			}
		}
		if s.DependsOn[lbName].Condition == "" {
			t.Errorf("service %s: want depends_on %s", name, lbName)
		}
	}

	t.Run("nginx -t", func(t *testing.T) { nginxCheck(t, confFile, conf) })

	// The real flags, and each rawflow service started with its command and environment.
	t.Run("run", func(t *testing.T) {
		for _, role := range []string{"origin", "gateway", "peer"} {
			for _, name := range roles[role] {
				s := cf.Services[name]
				checkEnv(t, "service "+name, s.Command[0], s.Environment)
				checkArgs(t, "service "+name, s.Command[0], s.Command[1:])
				t.Run(name, func(t *testing.T) {
					if role == "peer" {
						runPeer(t, s.Command, s.Environment)
						return
					}
					paths := []string{"/healthz"}
					if role == "origin" {
						paths = append(paths, "/readyz") // the built-in source is always there
					}
					runGateway(t, s.Command, s.Environment, paths, 10*time.Second)
				})
			}
		}
	})
}

// nginxCheck runs `nginx -t` on the load balancer's configuration, its upstream host names
// replaced by 127.0.0.1 (nginx resolves them at start) and its listen port by a free one.
func nginxCheck(t *testing.T, file string, conf nginxConf) {
	hlstest.RequireTool(t, "nginx") // make deps installs it: a failure in CI, a skip elsewhere
	text := conf.text
	for _, u := range conf.upstream {
		_, port, _ := net.SplitHostPort(u)
		text = strings.Replace(text, "server "+u, "server 127.0.0.1:"+port, 1)
	}
	text = regexp.MustCompile(`(?m)^(\s*listen\s+)\d+;`).ReplaceAllString(text, fmt.Sprintf("${1}127.0.0.1:%d;", freePort(t)))
	// Temporary files under the test's directory: the packaged defaults may not be writable.
	dir := t.TempDir()
	var temps strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "\n    %s_temp_path %s;", k, filepath.Join(dir, k))
	}
	text = strings.Replace(text, "http {", "http {"+temps.String(), 1)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("nginx", "-t", "-q", "-e", "stderr", "-p", dir, "-c", filepath.Join(dir, "nginx.conf"),
		"-g", "pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput()
	if err != nil {
		t.Errorf("nginx -t on %s (hosts replaced): %v\n%s", file, err, out)
	}
}
