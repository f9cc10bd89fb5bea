package contract

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/redisstore"
)

// With AGENTSTATE_REDIS_WAIT_REPLICAS=1 a write is acknowledged only once a replica has it:
// without a replica it answers 503 STORE_UNAVAILABLE; with one, the replica holds the write
// the moment the client sees 200.
func TestWaitReplicasAcknowledgesOnlyReplicatedWrites(t *testing.T) {
	master := testenv.StartRedis(t, 7205)
	rdb := redis.NewClient(&redis.Options{Addr: master.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	plain := testenv.NewServer(t, &testenv.Env{Rdb: rdb, Store: redisstore.New(rdb), Clock: testenv.NewClock()})

	conn, err := redisstore.Open(context.Background(), redisstore.Options{
		URL: "redis://" + master.Addr(), WaitReplicas: 1, WaitTimeout: time.Second}) // 200 ms flaked under CI load
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	// The handler over the waiting store, serving the project made above (making one here
	// would itself wait for a replica).
	ts := httptest.NewServer(testenv.CheckOpenAPI(t, (&testenv.Env{Store: conn.Store, Clock: testenv.NewClock()}).App(t).NewHandler(0)))
	t.Cleanup(ts.Close)
	rest := newREST(&testenv.Server{URL: ts.URL}, plain.Project.Key)
	put := func(n int) Result {
		return rest.Call(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": n}})
	}

	r := put(1)
	assert.Equal(t, http.StatusServiceUnavailable, r.Status, "no replica confirmed the write")
	assert.Equal(t, core.CodeStoreUnavailable, r.Code)

	replica := testenv.StartRedis(t, 7206, "--replicaof", "127.0.0.1", "7205")
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	require.Eventually(t, func() bool {
		info, _ := rc.Info(context.Background(), "replication").Result()
		return strings.Contains(info, "master_link_status:up")
	}, 10*time.Second, 50*time.Millisecond)
	for n := 2; n < 50; n++ {
		var st core.State
		ok(t, put(n)).Decode(t, &st)
		last, err := rc.XRevRangeN(context.Background(), "as:{"+plain.Project.ID+"}:state:k", "+", "-", 1).Result()
		require.NoError(t, err)
		require.Len(t, last, 1)
		assert.Equal(t, st.LatestSequence, seqOf(last[0].ID), "write %d is on the replica when acknowledged", n)
	}
}

func seqOf(streamID string) int64 {
	seq, _, _ := strings.Cut(streamID, "-")
	var n int64
	for _, c := range seq {
		n = n*10 + int64(c-'0')
	}
	return n
}

// Sentinel mode: the server finds the master through a Sentinel, and when the master dies and
// Sentinel promotes the replica, the same server serves again without a restart.
func TestSentinelFailover(t *testing.T) {
	master := testenv.StartRedis(t, 7205)
	replica := testenv.StartRedis(t, 7206, "--replicaof", "127.0.0.1", "7205")
	sentinel := testenv.StartSentinel(t, 7203, "agentstate", master.Addr())
	conn, err := redisstore.Open(context.Background(), redisstore.Options{
		URL: "redis://" + sentinel.Addr(), SentinelMaster: "agentstate"})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	assert.Equal(t, "sentinel", conn.Mode)
	s := testenv.NewServer(t, &testenv.Env{Rdb: conn.Store.Client(), Store: conn.Store, Clock: testenv.NewClock()})
	rest := newREST(s, s.Project.Key)
	put := map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 1}}
	ok(t, rest.Call(t, "upsert_state", put))
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	require.Eventually(t, func() bool { // replicated before the master dies: this test is not about WAIT
		n, _ := rc.Exists(context.Background(), "as:{"+s.Project.ID+"}:state:k").Result()
		return n == 1
	}, 10*time.Second, 20*time.Millisecond)

	master.Kill()
	start := time.Now()
	require.Eventually(t, func() bool {
		return rest.Call(t, "upsert_state", put).Code == ""
	}, 30*time.Second, 100*time.Millisecond, "writes resume once Sentinel promotes the replica")
	t.Logf("writes resumed %s after the master was killed", time.Since(start).Round(time.Millisecond))
	var st core.State
	ok(t, rest.Call(t, "get_state", map[string]any{"state_key": "k"})).Decode(t, &st)
	assert.GreaterOrEqual(t, st.Version, int64(2), "the write before the failover is still there")
}

// TLS and an ACL user on one Redis: rediss:// with user:password in the URL reaches a
// TLS-only port as that user, and the server works over it.
func TestTLSAndACLUser(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSignedCert(t, dir)
	srv := testenv.StartRedis(t, 7203, "--tls-port", "7205", "--tls-cert-file", cert, "--tls-key-file", key,
		"--tls-ca-cert-file", cert, "--tls-auth-clients", "no")
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.Do(context.Background(), "ACL", "SETUSER", "app", "on", ">s3cret", "~as:*", "+@all").Err())

	// skip_verify: the certificate is self-signed; a private CA is trusted through SSL_CERT_FILE.
	url := "rediss://app:s3cret@127.0.0.1:7205/0?skip_verify=true"
	conn, err := redisstore.Open(context.Background(), redisstore.Options{URL: url})
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	s := testenv.NewServer(t, &testenv.Env{Rdb: conn.Store.Client(), Store: conn.Store, Clock: testenv.NewClock()})
	ok(t, newREST(s, s.Project.Key).Call(t, "upsert_state", map[string]any{"state_key": "k", "agent_id": "a", "data": map[string]any{"n": 1}}))

	_, err = redisstore.Open(context.Background(), redisstore.Options{URL: strings.Replace(url, "s3cret", "wrong", 1)})
	assert.Error(t, err, "a wrong password is refused")
	_, err = redisstore.Open(context.Background(), redisstore.Options{URL: "redis://app:s3cret@127.0.0.1:7205/0"})
	assert.Error(t, err, "plain text to the TLS port does not connect")
}

// selfSignedCert writes a certificate for 127.0.0.1 and its key as PEM files.
func selfSignedCert(t *testing.T, dir string) (string, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	require.NoError(t, err)
	kb, err := x509.MarshalECPrivateKey(k)
	require.NoError(t, err)
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600))
	return cert, key
}
