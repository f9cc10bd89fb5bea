package redisstore

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every mode takes TLS (rediss://) and ACL credentials from its URL.
func TestOpenModesCarryTLSAndACL(t *testing.T) {
	c, mode, _, err := newClient(Options{URL: "rediss://app:pw@10.0.0.5:6380/2"}, minPoolSize)
	require.NoError(t, err)
	o := c.(*redis.Client).Options()
	assert.Equal(t, "single", mode)
	assert.NotNil(t, o.TLSConfig)
	assert.Equal(t, []string{"app", "pw", "10.0.0.5:6380"}, []string{o.Username, o.Password, o.Addr})
	assert.Equal(t, 2, o.DB)
	assert.GreaterOrEqual(t, o.PoolSize, minPoolSize)

	c, mode, addr, err := newClient(Options{URL: "rediss://app:pw@10.0.0.1:7000?addr=10.0.0.2:7000&addr=10.0.0.3:7000", Cluster: true}, minPoolSize)
	require.NoError(t, err)
	co := c.(*redis.ClusterClient).Options()
	assert.Equal(t, "cluster", mode)
	assert.Equal(t, "10.0.0.1:7000,10.0.0.2:7000,10.0.0.3:7000", addr)
	assert.NotNil(t, co.TLSConfig)
	assert.Equal(t, []string{"app", "pw"}, []string{co.Username, co.Password})
	assert.GreaterOrEqual(t, co.PoolSize, minPoolSize)

	c, mode, addr, err = newClient(Options{URL: "rediss://app:pw@10.0.0.1:26379/1?addr=10.0.0.2:26379", SentinelMaster: "mymaster"}, minPoolSize)
	require.NoError(t, err)
	so := c.(*redis.Client).Options()
	assert.Equal(t, "sentinel", mode)
	assert.Equal(t, "mymaster@10.0.0.1:26379,10.0.0.2:26379", addr)
	assert.NotNil(t, so.TLSConfig)
	assert.Equal(t, []string{"app", "pw"}, []string{so.Username, so.Password}, "the data nodes use the URL's ACL user too")
	assert.Equal(t, 1, so.DB)

	_, _, _, err = newClient(Options{URL: "redis://h1:1?addr=h2:2"}, minPoolSize)
	assert.ErrorContains(t, err, "AGENTSTATE_REDIS_CLUSTER", "a cluster URL without the flag says which flag")
	_, _, _, err = newClient(Options{URL: "redis://h1:1", Cluster: true, SentinelMaster: "m"}, minPoolSize)
	assert.Error(t, err)
	_, err = Open(context.Background(), Options{Cluster: true})
	assert.Error(t, err, "cluster mode needs a URL")
}

// ACL credentials in a cluster URL reach every node: a user made on each master of the test
// cluster connects; a wrong password is refused.
func TestClusterACLUser(t *testing.T) {
	url := os.Getenv("AGENTSTATE_TEST_REDIS_CLUSTER")
	if url == "" {
		t.Skip("AGENTSTATE_TEST_REDIS_CLUSTER not set")
	}
	ctx := context.Background()
	opts, err := redis.ParseClusterURL(url)
	require.NoError(t, err)
	admin := redis.NewClusterClient(opts)
	t.Cleanup(func() { _ = admin.Close() })
	require.NoError(t, admin.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return m.Do(ctx, "ACL", "SETUSER", "agentstate_acl_test", "on", ">s3cret", "~as:*", "+@all").Err()
	}))
	t.Cleanup(func() {
		_ = admin.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Do(ctx, "ACL", "DELUSER", "agentstate_acl_test").Err()
		})
	})
	withUser := strings.Replace(url, "redis://", "redis://agentstate_acl_test:s3cret@", 1)
	conn, err := Open(ctx, Options{URL: withUser, Cluster: true})
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.Store.Client().Set(ctx, "as:{acl_test}:x", "1", 0).Err())
	require.NoError(t, conn.Store.Client().Del(ctx, "as:{acl_test}:x").Err())

	_, err = Open(ctx, Options{URL: strings.Replace(withUser, "s3cret", "wrong", 1), Cluster: true})
	assert.Error(t, err)
}

// A client and the Conns made from it (Store.run's WAIT path) dial new connections at the same
// time without a data race: go-redis's maintenance-notification handshake would write the
// options they share under different locks (noMaintNotifications). Run with -race, as CI does.
func TestClientAndItsConnsDialTogether(t *testing.T) {
	url := os.Getenv("AGENTSTATE_TEST_REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	ctx := context.Background()
	probe, _, _, err := newClient(Options{URL: url}, minPoolSize)
	require.NoError(t, err)
	if err := probe.Ping(ctx).Err(); err != nil {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1" {
			t.Fatal(err)
		}
		t.Skip("no Redis:", err)
	}
	probe.Close()
	for range 10 {
		c, _, _, err := newClient(Options{URL: url}, minPoolSize) // no connection yet: they race to dial
		require.NoError(t, err)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				cn := c.(*redis.Client).Conn()
				defer cn.Close()
				assert.NoError(t, cn.Ping(ctx).Err())
			})
			wg.Go(func() { assert.NoError(t, c.Ping(ctx).Err()) })
		}
		wg.Wait()
		c.Close()
	}
}
