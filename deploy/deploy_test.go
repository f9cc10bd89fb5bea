// Package deploy holds the deployment examples (Kubernetes manifest, Redis config); its tests
// check them against the Kubernetes API types, a real redis-server and the binaries' settings.
package deploy

import (
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	"github.com/agentstate/agentstate-go/internal/app"
)

// settings are the AGENTSTATE_* variables the HTTP server reads.
func settings() map[string]bool {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	app.HTTPFlags(fs, app.Flags(fs))
	out := map[string]bool{"AGENTSTATE_SHUTDOWN_TIMEOUT": true} // defined by cmd/http-server itself
	fs.VisitAll(func(f *flag.Flag) { out["AGENTSTATE_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = true })
	return out
}

// manifest is deploy/kubernetes.yaml decoded strictly: an unknown or misspelt field, or a
// value of the wrong type, fails the decode as the API server would refuse it.
type manifest struct {
	deploy  *appsv1.Deployment
	service *corev1.Service
	pdb     *policyv1.PodDisruptionBudget
}

func loadManifest(t *testing.T) manifest {
	t.Helper()
	raw, err := os.ReadFile("kubernetes.yaml")
	require.NoError(t, err)
	var m manifest
	for i, doc := range regexp.MustCompile(`(?m)^---$`).Split(string(raw), -1) {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm), "document %d", i)
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 Deployment":
			m.deploy = &appsv1.Deployment{}
			obj = m.deploy
		case "v1 Service":
			m.service = &corev1.Service{}
			obj = m.service
		case "policy/v1 PodDisruptionBudget":
			m.pdb = &policyv1.PodDisruptionBudget{}
			obj = m.pdb
		default:
			t.Fatalf("document %d: unexpected %s %s", i, tm.APIVersion, tm.Kind)
		}
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj), "document %d (%s)", i, tm.Kind)
	}
	require.NotNil(t, m.deploy, "a Deployment")
	require.NotNil(t, m.service, "a Service")
	require.NotNil(t, m.pdb, "a PodDisruptionBudget")
	return m
}

func selects(t *testing.T, sel *metav1.LabelSelector, podLabels map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	require.NoError(t, err)
	return !s.Empty() && s.Matches(labels.Set(podLabels))
}

// TestKubernetesManifest: the documents are valid API objects and fit together: selectors
// select the pods, probes and Service ports name container ports, the listen addresses match
// those ports, every AGENTSTATE_* variable is a real setting, secrets come from one Secret.
func TestKubernetesManifest(t *testing.T) {
	m := loadManifest(t)
	d := m.deploy
	for _, name := range []string{d.Name, m.service.Name, m.pdb.Name} {
		assert.Empty(t, validation.IsDNS1123Label(name), name)
	}
	pod := d.Spec.Template
	assert.True(t, selects(t, d.Spec.Selector, pod.Labels), "the Deployment's selector selects its pods")
	assert.True(t, selects(t, m.pdb.Spec.Selector, pod.Labels), "the PDB covers the pods")
	assert.True(t, selects(t, &metav1.LabelSelector{MatchLabels: m.service.Spec.Selector}, pod.Labels), "the Service selects the pods")
	require.NotNil(t, d.Spec.Replicas)
	require.NotNil(t, m.pdb.Spec.MinAvailable)
	assert.Less(t, m.pdb.Spec.MinAvailable.IntValue(), int(*d.Spec.Replicas), "a node drain can evict a replica")

	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	assert.Regexp(t, `:[^:/]+$|@sha256:`, c.Image, "pinned image")
	assert.NotContains(t, c.Image, ":latest")
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	port := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.String {
			n, ok := ports[p.StrVal]
			assert.True(t, ok, "port %q is declared by the container", p.StrVal)
			return n
		}
		return p.IntVal
	}
	require.NotNil(t, c.ReadinessProbe)
	require.NotNil(t, c.LivenessProbe)
	require.NotNil(t, c.ReadinessProbe.HTTPGet)
	require.NotNil(t, c.LivenessProbe.HTTPGet)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path, "ready = Redis answers")
	assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path, "alive = the process serves; a Redis outage must not restart pods")

	env := map[string]corev1.EnvVar{}
	known := settings()
	for _, e := range c.Env {
		env[e.Name] = e
		if strings.HasPrefix(e.Name, "AGENTSTATE_") {
			assert.True(t, known[e.Name], "%s is a setting of http-server", e.Name)
		}
		if e.ValueFrom != nil {
			require.NotNil(t, e.ValueFrom.SecretKeyRef, e.Name)
			assert.Equal(t, "agentstate", e.ValueFrom.SecretKeyRef.Name, "%s comes from the one Secret the header creates", e.Name)
			assert.Contains(t, headerOf(t), "--from-literal="+e.ValueFrom.SecretKeyRef.Key+"=", "the header's kubectl creates key %s", e.ValueFrom.SecretKeyRef.Key)
		}
	}
	for _, secret := range []string{"AGENTSTATE_REDIS_URL", "AGENTSTATE_ADMIN_TOKEN", "AGENTSTATE_SIGNING_KEY"} {
		assert.NotNil(t, env[secret].ValueFrom, "%s comes from a Secret, not a literal", secret)
	}
	listenPort := func(name string) int32 {
		_, p, ok := strings.Cut(env[name].Value, ":")
		require.True(t, ok, "%s=%q", name, env[name].Value)
		n, err := strconv.Atoi(p)
		require.NoError(t, err)
		return int32(n)
	}
	assert.Equal(t, ports["http"], listenPort("AGENTSTATE_ADDR"))
	assert.Equal(t, ports["metrics"], listenPort("AGENTSTATE_METRICS_ADDR"))
	assert.Equal(t, ports["http"], port(c.ReadinessProbe.HTTPGet.Port))
	assert.Equal(t, ports["http"], port(c.LivenessProbe.HTTPGet.Port))
	for _, sp := range m.service.Spec.Ports {
		port(sp.TargetPort)
	}

	shutdown, err := time.ParseDuration(env["AGENTSTATE_SHUTDOWN_TIMEOUT"].Value)
	require.NoError(t, err)
	require.NotNil(t, pod.Spec.TerminationGracePeriodSeconds)
	assert.Greater(t, time.Duration(*pod.Spec.TerminationGracePeriodSeconds)*time.Second, shutdown,
		"Kubernetes waits longer than the server's own shutdown before it SIGKILLs")
	require.NotNil(t, pod.Spec.SecurityContext.RunAsUser)
	assert.EqualValues(t, 65532, *pod.Spec.SecurityContext.RunAsUser, "distroless's nonroot user")
}

func headerOf(t *testing.T) string {
	raw, err := os.ReadFile("kubernetes.yaml")
	require.NoError(t, err)
	head, _, _ := strings.Cut(string(raw), "apiVersion:")
	return head
}

// TestComposeAndImage: images are pinned, Redis restarts, the app has a healthcheck through the
// probe binary the Dockerfile builds, and its secrets are files named by real settings' _FILE.
func TestComposeAndImage(t *testing.T) {
	raw, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]struct {
			Image       string            `json:"image"`
			Restart     string            `json:"restart"`
			Environment map[string]string `json:"environment"`
			Secrets     []string          `json:"secrets"`
			Healthcheck *struct {
				Test []string `json:"test"`
			} `json:"healthcheck"`
		} `json:"services"`
		Secrets map[string]struct {
			File string `json:"file"`
		} `json:"secrets"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	dockerfile, err := os.ReadFile("../Dockerfile")
	require.NoError(t, err)
	for _, from := range regexp.MustCompile(`(?m)^FROM (\S+)`).FindAllStringSubmatch(string(dockerfile), -1) {
		assert.Regexp(t, `:[0-9][^:]*$|:nonroot$|@sha256:`, from[1], "Dockerfile base image pinned")
	}
	redisSvc, appSvc := compose.Services["redis"], compose.Services["agentstate"]
	assert.Regexp(t, `:[0-9]`, redisSvc.Image, "Redis image pinned to a version")
	assert.NotEmpty(t, redisSvc.Restart)
	assert.NotEmpty(t, appSvc.Restart)
	require.NotNil(t, appSvc.Healthcheck, "the app has a healthcheck")
	probe := appSvc.Healthcheck.Test
	require.GreaterOrEqual(t, len(probe), 2)
	assert.Equal(t, "CMD", probe[0], "exec form: the image has no shell")
	assert.Contains(t, string(dockerfile), "-o /out/"+filepath.Base(probe[1])+" ./cmd/healthcheck", "the image builds the probe")
	assert.Contains(t, probe, "http://127.0.0.1:8080/readyz")

	known := settings()
	for name, v := range appSvc.Environment {
		if setting, ok := strings.CutSuffix(name, "_FILE"); ok {
			assert.True(t, known[setting], "%s names a real setting", name)
			secret, ok := strings.CutPrefix(v, "/run/secrets/")
			assert.True(t, ok, "%s points into /run/secrets", name)
			assert.Contains(t, appSvc.Secrets, secret, "%s's secret is given to the service", name)
			assert.Contains(t, compose.Secrets, secret, "%s's secret is declared", name)
			continue
		}
		assert.True(t, known[name] || strings.HasPrefix(name, "OTEL_"), "%s is a setting", name)
	}
	assert.Contains(t, appSvc.Environment, "AGENTSTATE_ADMIN_TOKEN_FILE")
	assert.Contains(t, appSvc.Environment, "AGENTSTATE_SIGNING_KEY_FILE")
}

// TestRedisConfExample: redis-server accepts deploy/redis.conf as it is, and runs with the
// settings the file promises.
func TestRedisConfExample(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_REDIS") == "1" {
			t.Fatalf("redis-server is required: %v", err)
		}
		t.Skipf("redis-server not installed: %v", err)
	}
	const port = 7332
	conf, err := filepath.Abs("redis.conf")
	require.NoError(t, err)
	srv := exec.Command("redis-server", conf, "--port", strconv.Itoa(port), "--dir", t.TempDir())
	require.NoError(t, srv.Start())
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(port)})
	defer rdb.Close()
	ctx := context.Background()
	require.Eventually(t, func() bool { return rdb.Ping(ctx).Err() == nil }, 10*time.Second, 20*time.Millisecond, "redis-server starts from the file")
	for k, want := range map[string]string{"appendonly": "yes", "appendfsync": "always", "no-appendfsync-on-rewrite": "no",
		"maxmemory-policy": "noeviction", "stream-node-max-bytes": "1024"} {
		got, err := rdb.ConfigGet(ctx, k).Result()
		require.NoError(t, err)
		assert.Equal(t, want, got[k], k)
	}
}
