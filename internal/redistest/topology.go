package redistest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterTimeout bounds redis-cli --cluster create and the wait for the cluster to be ok;
// failoverTimeout bounds the wait for a sentinel to have promoted a replica.
const (
	clusterTimeout  = 30 * time.Second
	failoverTimeout = 20 * time.Second
)

// Cluster is a Redis Cluster of masters without replicas, made for one test.
type Cluster struct {
	Nodes []*Server
}

// URL returns the cluster's URL in the form swarm.OpenRedis reads:
// redis://FIRST?cluster=1&addr=SECOND&addr=….
func (c *Cluster) URL() string {
	q := []string{"cluster=1"}
	for _, n := range c.Nodes[1:] {
		q = append(q, "addr="+n.Addr())
	}
	return "redis://" + c.Nodes[0].Addr() + "?" + strings.Join(q, "&")
}

// StartCluster starts n (at least 3) redis-server processes with cluster mode on, joins
// them with redis-cli --cluster create (the slots split evenly) and waits until every node
// reports cluster_state:ok. Everything is killed when t ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 3 {
		t.Fatalf("redistest: a cluster needs at least 3 masters, not %d", n)
	}
	cli := lookTool(t, "redis-cli", "redis-tools")
	c := &Cluster{}
	for range n {
		c.Nodes = append(c.Nodes, startWith(t, func(dir string, port int) []string {
			bus, err := freePort() // the default bus port, port+10000, may be taken or invalid
			if err != nil {
				bus = port + 10000
			}
			return []string{"--port", strconv.Itoa(port), "--cluster-enabled", "yes",
				"--cluster-port", strconv.Itoa(bus), "--cluster-node-timeout", "2000",
				"--cluster-config-file", filepath.Join(dir, "nodes.conf")}
		}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	args := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		args = append(args, s.Addr())
	}
	out, err := exec.CommandContext(ctx, cli, append(args, "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, s := range c.Nodes {
		err := waitFor(ctx, func() error {
			info, err := s.bulk("CLUSTER INFO")
			if err == nil && !strings.Contains(info, "cluster_state:ok") {
				err = fmt.Errorf("cluster_state is not ok:\n%s", info)
			}
			return err
		})
		if err != nil {
			t.Fatalf("redistest: cluster node %s: %v", s.Addr(), err)
		}
	}
	return c
}

// Sentinel is a master, its replica and one sentinel that monitors them under MasterName,
// with a quorum of one and a down-after of one second, so a failover is quick.
type Sentinel struct {
	Master, Replica, Sentinel *Server
	MasterName                string
}

// URL returns the form swarm.OpenRedis reads for Sentinel:
// redis://SENTINEL/0?master_name=NAME.
func (s *Sentinel) URL() string {
	return "redis://" + s.Sentinel.Addr() + "/0?master_name=" + s.MasterName
}

// StartSentinel starts a master, a replica of it and a sentinel monitoring both, and waits
// until the sentinel knows the replica (so that it can fail over to it).
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	st := &Sentinel{MasterName: "rawflow", Master: StartServer(t)}
	st.Replica = startWith(t, func(_ string, port int) []string {
		return []string{"--port", strconv.Itoa(port), "--replicaof", "127.0.0.1", strconv.Itoa(st.Master.port)}
	})
	st.Sentinel = startWith(t, func(dir string, port int) []string {
		conf := filepath.Join(dir, "sentinel.conf") // the sentinel rewrites it: it must be its own
		text := fmt.Sprintf("port %d\nsentinel monitor %s 127.0.0.1 %d 1\n"+
			"sentinel down-after-milliseconds %[2]s 1000\nsentinel failover-timeout %[2]s 5000\n",
			port, st.MasterName, st.Master.port)
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		return []string{conf, "--sentinel"}
	})
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()
	err := waitFor(ctx, func() error {
		info, err := st.Sentinel.bulk("INFO sentinel")
		if err == nil && !strings.Contains(info, "slaves=1") {
			err = fmt.Errorf("the sentinel does not know the replica yet:\n%s", info)
		}
		return err
	})
	if err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	return st
}

// WaitFailover waits until the sentinel names the replica as the master (after the master
// was stopped) and returns within failoverTimeout, or fails the test.
func (s *Sentinel) WaitFailover(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), failoverTimeout)
	defer cancel()
	want := strconv.Itoa(s.Replica.port)
	err := waitFor(ctx, func() error {
		info, err := s.Sentinel.bulk("INFO sentinel")
		if err == nil && !strings.Contains(info, "address=127.0.0.1:"+want+",") {
			err = fmt.Errorf("the master is not the replica yet:\n%s", info)
		}
		return err
	})
	if err != nil {
		t.Fatalf("redistest: failover: %v", err)
	}
}

// waitFor polls check until it succeeds or ctx ends; an external process's state can only
// be learnt by asking it.
func waitFor(ctx context.Context, check func() error) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// bulk sends one inline command to a plain server and returns its bulk-string reply.
func (s *Server) bulk(cmd string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), probeTimeout)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err = conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return "", err
	}
	if _, err = conn.Write([]byte(cmd + "\r\n")); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	head, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil || n < 0 || n > 1<<20 {
		return "", fmt.Errorf("%s answered %q", cmd, strings.TrimSpace(head))
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b[:n]), nil
}

// lookTool finds name on PATH, or ends the test: Fatal when the tools are required (CI set,
// or RAWFLOW_REQUIRE_TOOLS=1), Skip otherwise. pkg is the Debian package that has it.
func lookTool(t testing.TB, name, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err == nil {
		return bin
	}
	msg := fmt.Sprintf("redistest: %s not found on PATH (install Redis, e.g. apt-get install %s): %v", name, pkg, err)
	if os.Getenv("CI") != "" || os.Getenv("RAWFLOW_REQUIRE_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg + "; skipping (set RAWFLOW_REQUIRE_TOOLS=1 to fail instead)")
	return ""
}
