package deploy_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// manifests parses every file in k8s/ and returns the objects by
// "Kind/name".
func manifests(t *testing.T) map[string]any {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in k8s/ (%v)", err)
	}
	objs := map[string]any{}
	parsed := yamlDocs(t, files...)
	for _, f := range files {
		for _, d := range parsed[f] {
			kind, name := str(d, "kind"), str(d, "metadata", "name")
			if kind == "" || str(d, "apiVersion") == "" {
				t.Errorf("%s: object without kind or apiVersion", f)
				continue
			}
			if kind == "Kustomization" {
				name = filepath.Base(f)
			}
			if name == "" {
				t.Errorf("%s: %s without a name", f, kind)
			}
			key := kind + "/" + name
			if _, dup := objs[key]; dup {
				t.Errorf("%s: %s defined twice", f, key)
			}
			objs[key] = d
		}
	}
	return objs
}

// TestKubernetes checks what kubectl would only find out at apply time:
// every reference between the objects resolves (Services to pod labels and
// named ports, volumes to the ConfigMap, env to the Secret's key, the
// kustomization to its files), and the fleet is what the README promises.
func TestKubernetes(t *testing.T) {
	objs := manifests(t)
	for _, want := range []string{"Deployment/rrdp-proxy", "Service/rrdp-proxy", "ConfigMap/rrdp-proxy-config", "Deployment/redis", "Service/redis", "Secret/rrdp-proxy-redis", "PodDisruptionBudget/rrdp-proxy", "NetworkPolicy/redis", "NetworkPolicy/rrdp-proxy", "Kustomization/kustomization.yaml"} {
		if objs[want] == nil {
			t.Errorf("missing %s (have %v)", want, slices.Sorted(maps.Keys(objs)))
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	kust := objs["Kustomization/kustomization.yaml"]
	for _, r := range list(kust, "resources") {
		if _, err := os.Stat(filepath.Join("k8s", r.(string))); err != nil {
			t.Errorf("kustomization resource: %v", err)
		}
	}

	proxy := objs["Deployment/rrdp-proxy"]
	if got := get(proxy, "spec", "replicas"); got != 3.0 {
		t.Errorf("rrdp-proxy replicas: got %v, want 3", got)
	}
	pod := get(proxy, "spec", "template", "spec")
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("rrdp-proxy pod does not require a non-root user")
	}
	c := get(pod, "containers", "0")
	if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("rrdp-proxy container: root filesystem writable or privilege escalation allowed")
	}
	if !slices.Contains(list(c, "securityContext", "capabilities", "drop"), any("ALL")) {
		t.Errorf("rrdp-proxy container keeps capabilities")
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := str(c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path: got %q, want %q", probe, got, path)
		}
		if got := str(c, probe, "httpGet", "port"); got != "http" {
			t.Errorf("%s port: got %q, want the named port http", probe, got)
		}
	}
	if str(c, "resources", "limits", "memory") == "" || str(c, "resources", "limits", "cpu") == "" {
		t.Errorf("rrdp-proxy container without memory and cpu limits")
	}
	if got := str(c, "ports", "0", "name"); got != "http" || get(c, "ports", "0", "containerPort") != 8080.0 {
		t.Errorf("rrdp-proxy port: got %q %v, want http 8080", got, get(c, "ports", "0", "containerPort"))
	}
	args := strings.Join(func() []string {
		var s []string
		for _, a := range list(c, "args") {
			s = append(s, a.(string))
		}
		return s
	}(), " ")
	if args != "serve --config /etc/rrdp-proxy/rrdp-proxy.toml" {
		t.Errorf("rrdp-proxy args %q", args)
	}

	// Every Deployment's env from Secrets and volumes from ConfigMaps
	// resolve, and its selector matches its pod labels.
	for _, name := range []string{"rrdp-proxy", "redis"} {
		d := objs["Deployment/"+name]
		sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
		labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		if len(sel) == 0 || !subset(sel, labels) {
			t.Errorf("Deployment/%s: selector %v does not match pod labels %v", name, sel, labels)
		}
		var password bool
		for _, e := range list(d, "spec", "template", "spec", "containers", "0", "env") {
			ref := get(e, "valueFrom", "secretKeyRef")
			if ref == nil {
				continue
			}
			secret := objs["Secret/"+str(ref, "name")]
			if secret == nil {
				t.Errorf("Deployment/%s: env %s from missing Secret %q", name, str(e, "name"), str(ref, "name"))
				continue
			}
			if get(secret, "stringData", str(ref, "key")) == nil && get(secret, "data", str(ref, "key")) == nil {
				t.Errorf("Deployment/%s: Secret %s has no key %q", name, str(ref, "name"), str(ref, "key"))
			}
			if str(e, "name") == "RRDP_PROXY_REDIS_PASSWORD" {
				password = true
			}
		}
		if !password {
			t.Errorf("Deployment/%s: RRDP_PROXY_REDIS_PASSWORD not taken from the Secret", name)
		}
		for _, v := range list(d, "spec", "template", "spec", "volumes") {
			if cm := str(v, "configMap", "name"); cm != "" && objs["ConfigMap/"+cm] == nil {
				t.Errorf("Deployment/%s: volume from missing ConfigMap %q", name, cm)
			}
		}
	}

	// Services select a Deployment's pods and name one of its ports.
	for _, name := range []string{"rrdp-proxy", "redis"} {
		svc, d := objs["Service/"+name], objs["Deployment/"+name]
		sel, _ := get(svc, "spec", "selector").(map[string]any)
		labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		if len(sel) == 0 || !subset(sel, labels) {
			t.Errorf("Service/%s: selector %v does not match the pods of Deployment/%s", name, sel, name)
		}
		var ports []string
		for _, p := range list(d, "spec", "template", "spec", "containers", "0", "ports") {
			ports = append(ports, str(p, "name"))
		}
		for _, p := range list(svc, "spec", "ports") {
			if tp := str(p, "targetPort"); !slices.Contains(ports, tp) {
				t.Errorf("Service/%s: targetPort %q not among the pod's ports %v", name, tp, ports)
			}
		}
	}
	pdb := objs["PodDisruptionBudget/rrdp-proxy"]
	sel, _ := get(pdb, "spec", "selector", "matchLabels").(map[string]any)
	labels, _ := get(proxy, "spec", "template", "metadata", "labels").(map[string]any)
	if !subset(sel, labels) {
		t.Errorf("PodDisruptionBudget selects %v, not the rrdp-proxy pods %v", sel, labels)
	}

	// Redis takes connections from the rrdp-proxy pods only, on its port.
	np := objs["NetworkPolicy/redis"]
	npSel, _ := get(np, "spec", "podSelector", "matchLabels").(map[string]any)
	redisLabels, _ := get(objs["Deployment/redis"], "spec", "template", "metadata", "labels").(map[string]any)
	from, _ := get(np, "spec", "ingress", "0", "from", "0", "podSelector", "matchLabels").(map[string]any)
	if !subset(npSel, redisLabels) || !subset(from, labels) || subset(from, redisLabels) {
		t.Errorf("NetworkPolicy/redis: applies to %v from %v; want the redis pods, from the rrdp-proxy pods only", npSel, from)
	}
	if got := get(np, "spec", "ingress", "0", "ports", "0", "port"); got != 6379.0 {
		t.Errorf("NetworkPolicy/redis: port %v, want 6379", got)
	}

	// The configuration names the Redis Service and the state directory
	// the pod mounts, and never holds the password.
	toml := str(objs["ConfigMap/rrdp-proxy-config"], "data", "rrdp-proxy.toml")
	for _, want := range []string{`url = "redis://redis:6379/0"`, `state_dir = "/var/lib/rrdp-proxy"`, `listen = [":8080"]`} {
		if !strings.Contains(toml, want) {
			t.Errorf("ConfigMap rrdp-proxy.toml lacks %s", want)
		}
	}
	if strings.Contains(strings.ToLower(toml), "password") && !strings.Contains(toml, "RRDP_PROXY_REDIS_PASSWORD") {
		t.Errorf("ConfigMap rrdp-proxy.toml mentions a password")
	}
	checkConfig(t, toml)
}

// subset reports whether every key of a has the same value in b.
func subset(a, b map[string]any) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return len(a) > 0
}

// checkConfig runs `rrdp-proxy config check` on a configuration held in a
// manifest, when the binary has that command.
func checkConfig(t *testing.T, toml string) {
	t.Helper()
	bin := binary(t)
	file := filepath.Join(t.TempDir(), "rrdp-proxy.toml")
	if err := os.WriteFile(file, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, ".", []string{"RRDP_PROXY_REDIS_PASSWORD=x"}, bin, "config", "check", file)
	if err != nil {
		t.Errorf("rrdp-proxy config check on the ConfigMap's configuration: %v\n%s", err, out)
	}
}
