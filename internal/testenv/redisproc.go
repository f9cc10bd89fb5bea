package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisServer is a redis-server process a fault test owns: loopback only, its data in a temp
// dir, killed with SIGKILL when the test asks or ends.
type RedisServer struct {
	Port int
	Dir  string
	args []string
	conf string // a config file to start from (sentinels need one they can rewrite)
	cmd  *exec.Cmd
	tb   testing.TB
}

// StartRedis runs redis-server on port with extra config args ("--appendonly", "yes", …). It
// skips tb when redis-server is not installed, unless AGENTSTATE_TEST_REQUIRE_REDIS=1.
func StartRedis(tb testing.TB, port int, args ...string) *RedisServer {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1" {
			tb.Fatalf("redis-server is required: %v", err)
		}
		tb.Skipf("redis-server not installed: %v", err)
	}
	if pingPort(port) == nil {
		tb.Fatalf("something already answers on 127.0.0.1:%d; this test needs the port for its own redis-server", port)
	}
	r := &RedisServer{Port: port, Dir: tb.TempDir(), args: args, tb: tb}
	r.Start()
	tb.Cleanup(r.Kill)
	return r
}

// StartSentinel runs a Sentinel on port monitoring master (host:port) as name, quorum 1,
// declaring it down after 1 s.
func StartSentinel(tb testing.TB, port int, name, master string) *RedisServer {
	tb.Helper()
	host, mport, _ := strings.Cut(master, ":")
	conf := filepath.Join(tb.TempDir(), "sentinel.conf")
	body := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s 1\nsentinel down-after-milliseconds %[1]s 1000\nsentinel failover-timeout %[1]s 5000\n", name, host, mport)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		tb.Fatal(err)
	}
	if pingPort(port) == nil {
		tb.Fatalf("something already answers on 127.0.0.1:%d", port)
	}
	r := &RedisServer{Port: port, Dir: filepath.Dir(conf), conf: conf, args: []string{"--sentinel"}, tb: tb}
	r.Start()
	tb.Cleanup(r.Kill)
	return r
}

// Addr is host:port.
func (r *RedisServer) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// Start (re)starts the server on its port and dir and waits until it answers PING (after a
// restart that is once it has loaded its AOF).
func (r *RedisServer) Start() {
	r.tb.Helper()
	var args []string
	if r.conf != "" {
		args = []string{r.conf}
	}
	args = append(args, "--bind", "127.0.0.1", "--port", strconv.Itoa(r.Port), "--dir", r.Dir,
		"--save", "", "--logfile", filepath.Join(r.Dir, "redis.log"))
	args = append(args, r.args...)
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server on %d: %v", r.Port, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for pingPort(r.Port) != nil {
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
			r.tb.Fatalf("redis-server on %d did not answer within 10s; log:\n%s", r.Port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill sends SIGKILL (no shutdown save, no AOF flush beyond what the fsync policy did) and
// waits for the process to go.
func (r *RedisServer) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

func pingPort(port int) error {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return c.Ping(ctx).Err()
}

// StartCluster runs one cluster-enabled redis-server per port and joins them with
// redis-cli --cluster create: len(ports)/(replicas+1) masters, each with replicas replicas.
// It returns the servers (in port order) and the cluster URL for AGENTSTATE_REDIS_URL.
func StartCluster(tb testing.TB, ports []int, replicas int, args ...string) ([]*RedisServer, string) {
	tb.Helper()
	base := append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", "1000", "--appendonly", "no"}, args...)
	servers := make([]*RedisServer, len(ports))
	addrs := make([]string, len(ports))
	for i, p := range ports {
		servers[i] = StartRedis(tb, p, base...)
		addrs[i] = servers[i].Addr()
	}
	create := append([]string{"--cluster", "create"}, addrs...)
	create = append(create, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command("redis-cli", create...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !clusterReady(servers, len(ports)) {
		if time.Now().After(deadline) {
			tb.Fatalf("cluster on %v not ready within 20s", ports)
		}
		time.Sleep(100 * time.Millisecond)
	}
	url := "redis://" + addrs[0] + "?addr=" + strings.Join(addrs[1:], "&addr=")
	return servers, url
}

// clusterReady: every node says cluster_state:ok and knows all n nodes.
func clusterReady(servers []*RedisServer, n int) bool {
	for _, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr()})
		info, err := c.ClusterInfo(context.Background()).Result()
		_ = c.Close()
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
			return false
		}
	}
	return true
}
