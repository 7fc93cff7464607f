package deploy

// The Dockerfile and .dockerignore: stages, base images, the build's flags, the final
// stage's user, entrypoint and ports; and the build itself, run as the Dockerfile writes it in
// a copy of the build context (rawflowBinary, which the other tests use).

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type dfInstr struct {
	cmd  string // upper case: FROM, RUN, COPY, …
	args string
	line int
}

type dfStage struct {
	base, name string
	instrs     []dfInstr
}

// parseDockerfile splits a Dockerfile into stages of instructions (continuation lines
// joined, comments dropped).
func parseDockerfile(t *testing.T, name string) []dfStage {
	t.Helper()
	var (
		stages  []dfStage
		pending string
		start   int
	)
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, name)))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if pending == "" {
			start = n
		}
		if strings.HasSuffix(line, `\`) {
			pending += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		full := pending + line
		pending = ""
		cmd, args, _ := strings.Cut(full, " ")
		in := dfInstr{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			f := strings.Fields(in.args)
			f = slices.DeleteFunc(f, func(s string) bool { return strings.HasPrefix(s, "--") })
			st := dfStage{base: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("%s:%d: %s before the first FROM", name, start, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	if pending != "" {
		t.Fatalf("%s: ends in a continuation line", name)
	}
	return stages
}

func (s dfStage) all(cmd string) []dfInstr {
	var out []dfInstr
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// dockerBuild is the Dockerfile's `go build` line, ready to run on this machine.
type dockerBuild struct {
	env    []string // KEY=VALUE: the stage's ENV, then the line's own assignments
	args   []string // after "go"
	output string   // the -o path in the image
	stage  dfStage
}

// dockerfileBuild finds the one RUN line that runs `go build` and expands it as the shell
// in the build stage would: the stage's ARG defaults, TARGETOS and TARGETARCH of this
// machine, and its ENV.
func dockerfileBuild(t *testing.T, stages []dfStage) dockerBuild {
	t.Helper()
	var found []dockerBuild
	for _, st := range stages {
		vars := map[string]string{"TARGETOS": runtime.GOOS, "TARGETARCH": runtime.GOARCH,
			"BUILDPLATFORM": runtime.GOOS + "/" + runtime.GOARCH}
		var env []string
		for _, in := range st.instrs {
			switch in.cmd {
			case "ARG":
				for _, a := range strings.Fields(in.args) {
					k, v, _ := strings.Cut(a, "=")
					if _, set := vars[k]; !set {
						vars[k] = v
					}
				}
			case "ENV":
				for _, a := range strings.Fields(in.args) {
					k, v, ok := strings.Cut(a, "=")
					if !ok {
						t.Fatalf("Dockerfile:%d: ENV %q: use KEY=VALUE", in.line, in.args)
					}
					vars[k] = v
					env = append(env, k+"="+v)
				}
			case "RUN":
				if !strings.Contains(in.args, "go build") {
					continue
				}
				words, err := shellWords(in.args, vars)
				if err != nil {
					t.Fatalf("Dockerfile:%d: %v", in.line, err)
				}
				b := dockerBuild{env: slices.Clone(env), stage: st}
				for len(words) > 0 && strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") {
					b.env = append(b.env, words[0])
					words = words[1:]
				}
				if len(words) < 2 || words[0] != "go" || words[1] != "build" {
					t.Fatalf("Dockerfile:%d: want the RUN line to be just [VAR=VALUE …] go build …, got %q", in.line, in.args)
				}
				b.args = words[1:]
				for i, w := range b.args {
					if w == "-o" && i+1 < len(b.args) {
						b.output = b.args[i+1]
					}
				}
				found = append(found, b)
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile: want exactly one RUN … go build line, found %d", len(found))
	}
	return found[0]
}

// shellWords splits a simple shell command line into words: whitespace outside quotes
// separates, '…' is literal, "…" and bare words expand $VAR and ${VAR}. Anything fancier
// (pipes, &&, $(…)) is refused: the build line must stay simple enough to check.
func shellWords(s string, vars map[string]string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		inW   bool
		quote rune
	)
	expand := func(i int) (int, error) { // s[i] == '$'
		rest := s[i+1:]
		var name string
		var n int
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("unclosed ${")
			}
			name, n = rest[1:end], end+1
		} else {
			m := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`).FindString(rest)
			if m == "" {
				return 0, fmt.Errorf("unsupported $ at %q", s[i:])
			}
			name, n = m, len(m)
		}
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("$%s: not an ARG or ENV of the stage", name)
		}
		cur.WriteString(v)
		return i + n, nil
	}
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '$':
			j, err := expand(i)
			if err != nil {
				return nil, err
			}
			i, inW = j, true
		case quote == '"':
			if c == '"' {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, inW = c, true
		case c == ' ' || c == '\t':
			if inW {
				words, inW = append(words, cur.String()), false
				cur.Reset()
			}
		case strings.ContainsRune("|&;<>()`\\", c):
			return nil, fmt.Errorf("unsupported shell syntax %q in %q", c, s)
		default:
			cur.WriteRune(c)
			inW = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unclosed quote in %q", s)
	}
	if inW {
		words = append(words, cur.String())
	}
	return words, nil
}

// dockerignore reads the repository's .dockerignore patterns.
func dockerignore(t *testing.T) []string {
	t.Helper()
	var pats []string
	for _, l := range strings.Split(string(readFile(t, filepath.Join(repoRoot, ".dockerignore"))), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") {
			t.Fatalf(".dockerignore: exceptions (%q) are not supported by this test's matcher", l)
		}
		pats = append(pats, strings.Trim(path.Clean(l), "/"))
	}
	return pats
}

// ignored reports whether rel (slash-separated, relative to the context) matches a
// .dockerignore pattern: path.Match per element, ** for any number of elements.
func ignored(pats []string, rel string) bool {
	for _, p := range pats {
		if matchElems(strings.Split(p, "/"), strings.Split(rel, "/")) {
			return true
		}
	}
	return false
}

func matchElems(pat, name []string) bool {
	if len(pat) == 0 {
		return len(name) == 0
	}
	if pat[0] == "**" {
		for i := 0; i <= len(name); i++ {
			if matchElems(pat[1:], name[i:]) {
				return true
			}
		}
		return false
	}
	if len(name) == 0 {
		return false
	}
	ok, err := path.Match(pat[0], name[0])
	return err == nil && ok && matchElems(pat[1:], name[1:])
}

// copyContext copies the Docker build context (the repository less .dockerignore) to dir.
func copyContext(pats []string, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return filepath.WalkDir(repoRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, p)
		if err != nil || rel == "." {
			return err
		}
		if ignored(pats, filepath.ToSlash(rel)) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		dst := filepath.Join(dir, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(dst, 0o755)
		case !d.Type().IsRegular():
			return nil // symlinks and the like: none is needed to build
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
}

// rawflowBinary returns the rawflow binary, built once with the Dockerfile's go build line
// in a copy of the build context. Not in -short: it costs a full build.
func rawflowBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the rawflow binary: not in -short")
	}
	b := dockerfileBuild(t, parseDockerfile(t, "Dockerfile"))
	pats := dockerignore(t)
	binOnce.Do(func() {
		ctxDir := filepath.Join(tmpRoot, "context")
		if binErr = copyContext(pats, ctxDir); binErr != nil {
			return
		}
		binPath = filepath.Join(tmpRoot, "rawflow")
		args := slices.Clone(b.args)
		args[slices.Index(args, "-o")+1] = binPath
		cmd := exec.Command("go", args...)
		cmd.Dir = ctxDir
		// No VCS stamping, as in the image (.git is not in the build context).
		cmd.Env = append(os.Environ(), b.env...)
		cmd.Env = append(cmd.Env, "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -buildvcs=false"))
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("the Dockerfile's build (go %s, %v) in a copy of the build context: %w\n%s",
				strings.Join(b.args, " "), b.env, err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	b := dockerfileBuild(t, stages)

	// The build stage: Go of go.mod's version, static, trimmed, stripped.
	gomod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(readFile(t, filepath.Join(repoRoot, "go.mod")))
	if gomod == nil {
		t.Fatal("go.mod: no go line")
	}
	if !regexp.MustCompile(`^golang:` + regexp.QuoteMeta(string(gomod[1])) + `([.-]|$)`).MatchString(b.stage.base) {
		t.Errorf("build stage FROM %s: want golang:%s (go.mod's go version)", b.stage.base, gomod[1])
	}
	if !slices.Contains(b.env, "CGO_ENABLED=0") {
		t.Errorf("build: want CGO_ENABLED=0, env is %v", b.env)
	}
	if !slices.Contains(b.args, "-trimpath") {
		t.Errorf("go %s: want -trimpath", strings.Join(b.args, " "))
	}
	if i := slices.Index(b.args, "-ldflags"); i < 0 || i+1 >= len(b.args) ||
		!slices.Contains(strings.Fields(b.args[i+1]), "-s") || !slices.Contains(strings.Fields(b.args[i+1]), "-w") {
		t.Errorf("go %s: want -ldflags with -s -w", strings.Join(b.args, " "))
	}
	if b.args[len(b.args)-1] != "./cmd/rawflow" || b.output == "" {
		t.Errorf("go %s: want -o PATH … ./cmd/rawflow", strings.Join(b.args, " "))
	}

	// Every file COPY takes from the context exists and is not excluded by .dockerignore.
	pats := dockerignore(t)
	for _, st := range stages {
		for _, in := range st.all("COPY") {
			if strings.Contains(in.args, "--from=") {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if src == "." {
					continue
				}
				if _, err := os.Stat(filepath.Join(repoRoot, src)); err != nil {
					t.Errorf("Dockerfile:%d: COPY %s: %v", in.line, src, err)
				}
				if ignored(pats, src) {
					t.Errorf("Dockerfile:%d: COPY %s, which .dockerignore excludes", in.line, src)
				}
			}
		}
	}
	for _, must := range []string{"go.mod", "go.sum", "cmd/rawflow/main.go", "web/static/index.html"} {
		if ignored(pats, must) {
			t.Errorf(".dockerignore excludes %s, which the build needs", must)
		}
	}
	for _, big := range []string{".git", "node_modules", "artifacts"} {
		if !ignored(pats, big) {
			t.Errorf(".dockerignore should exclude %s", big)
		}
	}

	// The final stage: small, the binary from the build stage, a numeric non-root user.
	final := stages[len(stages)-1]
	if !strings.HasPrefix(final.base, "gcr.io/distroless/static") && final.base != "scratch" {
		t.Errorf("final stage FROM %s: want distroless/static or scratch", final.base)
	}
	copied := false
	for _, in := range final.all("COPY") {
		f := strings.Fields(in.args)
		if slices.Contains(f, "--from="+b.stage.name) && f[len(f)-2] == b.output && f[len(f)-1] == "/rawflow" {
			copied = true
		}
	}
	if !copied {
		t.Errorf("final stage: want COPY --from=%s %s /rawflow", b.stage.name, b.output)
	}
	if uid, _ := dockerfileUser(t, stages); uid == 0 {
		t.Error("final stage: runs as root")
	}
	if e := final.all("ENTRYPOINT"); len(e) != 1 || e[0].args != `["/rawflow"]` {
		t.Errorf(`final stage: want ENTRYPOINT ["/rawflow"], got %v`, e)
	}
	var exposed []string
	for _, in := range final.all("EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, p := range []string{"8080", "8081", "8082", "3478/udp", "3479/udp"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("final stage: want EXPOSE %s, have %v", p, exposed)
		}
	}
	if len(final.all("HEALTHCHECK")) > 0 && strings.Contains(final.base, "distroless") {
		t.Error("final stage: a HEALTHCHECK cannot run in distroless (no shell, no curl)")
	}
}

// dockerfileUser is the final stage's USER, which must be numeric uid:gid (Kubernetes'
// runAsNonRoot can check only a numeric user).
func dockerfileUser(t *testing.T, stages []dfStage) (uid, gid int) {
	t.Helper()
	users := stages[len(stages)-1].all("USER")
	if len(users) == 0 {
		t.Fatal("final stage: no USER")
	}
	m := regexp.MustCompile(`^(\d+):(\d+)$`).FindStringSubmatch(users[len(users)-1].args)
	if m == nil {
		t.Fatalf("final stage: USER %q: want numeric UID:GID", users[len(users)-1].args)
	}
	uid, _ = strconv.Atoi(m[1])
	gid, _ = strconv.Atoi(m[2])
	return uid, gid
}

// TestDockerfileBuild runs the Dockerfile's go build line (rawflowBinary) and checks what it
// made: a static executable that runs.
func TestDockerfileBuild(t *testing.T) {
	bin := rawflowBinary(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary needs a dynamic loader: not static (CGO_ENABLED=0?)")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags -s missing?")
	}
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "rawflow dev ") {
		t.Errorf("rawflow version: %v: %q (want the Dockerfile's default VERSION, dev)", err, out)
	}
}
