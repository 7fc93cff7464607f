package deploy

// The Kubernetes manifests (k8s/): decoded strictly into the real API types of k8s.io/api
// (an unknown field, a misplaced one or a wrong type fails), then checked for what the API
// server would not catch: references between objects, selectors, ports, probes, the pod
// security the namespace enforces, and the gateway's settings against its real flags.

import (
	"bytes"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const k8sDir = "k8s"

// manifestKinds: the kinds the manifests may use, each with its one API version.
var manifestKinds = map[string]struct {
	apiVersion string
	new        func() any
}{
	"Namespace":               {"v1", func() any { return &corev1.Namespace{} }},
	"ConfigMap":               {"v1", func() any { return &corev1.ConfigMap{} }},
	"Secret":                  {"v1", func() any { return &corev1.Secret{} }},
	"Service":                 {"v1", func() any { return &corev1.Service{} }},
	"Deployment":              {"apps/v1", func() any { return &appsv1.Deployment{} }},
	"StatefulSet":             {"apps/v1", func() any { return &appsv1.StatefulSet{} }},
	"PodDisruptionBudget":     {"policy/v1", func() any { return &policyv1.PodDisruptionBudget{} }},
	"HorizontalPodAutoscaler": {"autoscaling/v2", func() any { return &autoscalingv2.HorizontalPodAutoscaler{} }},
	"NetworkPolicy":           {"networking.k8s.io/v1", func() any { return &networkingv1.NetworkPolicy{} }},
}

type manifest struct {
	file string
	kind string
	name string
	obj  any
}

// kustomization is the part of kustomize's Kustomization these manifests use; decoded
// strictly, so a field this test does not know fails until it is added here.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// splitDocs splits a YAML stream at its "---" lines, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(b []byte) []byte {
	var out [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(l), []byte("#")) {
			out = append(out, l)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// loadManifests decodes every manifest of k8s/ strictly, and the kustomization.
func loadManifests(t *testing.T) ([]manifest, kustomization) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		ms  []manifest
		kz  kustomization
		kzN int
	)
	for _, f := range files {
		base := filepath.Base(f)
		if base == "kustomization.yaml" {
			if err := yaml.UnmarshalStrict(readFile(t, f), &kz); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			kzN++
			continue
		}
		if filepath.Ext(base) != ".yaml" {
			t.Errorf("%s: not a .yaml file", f)
			continue
		}
		for i, doc := range splitDocs(readFile(t, f)) {
			where := fmt.Sprintf("%s (document %d)", f, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			k, ok := manifestKinds[tm.Kind]
			switch {
			case !ok:
				t.Errorf("%s: kind %q: not one this test knows (add it to manifestKinds)", where, tm.Kind)
				continue
			case tm.APIVersion != k.apiVersion:
				t.Errorf("%s: %s: apiVersion %q, want %q", where, tm.Kind, tm.APIVersion, k.apiVersion)
				continue
			}
			obj := k.new()
			if err := yaml.UnmarshalStrict(doc, obj); err != nil {
				t.Errorf("%s: %s: %v", where, tm.Kind, err)
				continue
			}
			meta := objectMeta(obj)
			if meta.Name == "" {
				t.Errorf("%s: %s without a name", where, tm.Kind)
			}
			if meta.Namespace != "" {
				t.Errorf("%s: %s/%s: namespace %q: leave it to kustomization.yaml", where, tm.Kind, meta.Name, meta.Namespace)
			}
			ms = append(ms, manifest{file: base, kind: tm.Kind, name: meta.Name, obj: obj})
		}
	}
	if kzN != 1 {
		t.Fatalf("%s: want one kustomization.yaml", k8sDir)
	}
	return ms, kz
}

func objectMeta(obj any) metav1.ObjectMeta {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return o.ObjectMeta
	case *corev1.ConfigMap:
		return o.ObjectMeta
	case *corev1.Secret:
		return o.ObjectMeta
	case *corev1.Service:
		return o.ObjectMeta
	case *appsv1.Deployment:
		return o.ObjectMeta
	case *appsv1.StatefulSet:
		return o.ObjectMeta
	case *policyv1.PodDisruptionBudget:
		return o.ObjectMeta
	case *autoscalingv2.HorizontalPodAutoscaler:
		return o.ObjectMeta
	case *networkingv1.NetworkPolicy:
		return o.ObjectMeta
	}
	panic(fmt.Sprintf("objectMeta: %T", obj))
}

// all returns the decoded objects of one type.
func all[T any](ms []manifest) []*T {
	var out []*T
	for _, m := range ms {
		if o, ok := m.obj.(*T); ok {
			out = append(out, o)
		}
	}
	return out
}

// only returns the one object of a type, failing unless there is exactly one.
func only[T any](t *testing.T, ms []manifest) *T {
	t.Helper()
	objs := all[T](ms)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("want exactly one %T in %s, have %d", zero, k8sDir, len(objs))
	}
	return objs[0]
}

func selects(sel map[string]string, labels map[string]string) bool {
	if len(sel) == 0 {
		return false // an empty selector here would be a mistake, not "everything"
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// containerPort resolves a probe's or Service's target port against a container.
func containerPort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// gatewayDeployment is the Deployment whose container runs `rawflow gateway`.
func gatewayDeployment(t *testing.T, ms []manifest) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	for _, d := range all[appsv1.Deployment](ms) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if len(c.Args) > 0 && c.Args[0] == "gateway" {
				return d, c
			}
		}
	}
	t.Fatal("no Deployment runs `rawflow gateway` (args: [gateway])")
	return nil, corev1.Container{}
}

func probes(c corev1.Container) map[string]*corev1.Probe {
	return map[string]*corev1.Probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe}
}

// gatewayProbePaths lists the HTTP paths the gateway Deployment probes.
func gatewayProbePaths(t *testing.T) []string {
	t.Helper()
	ms, _ := loadManifests(t)
	_, c := gatewayDeployment(t, ms)
	var paths []string
	for _, p := range probes(c) {
		if p != nil && p.HTTPGet != nil && !slices.Contains(paths, p.HTTPGet.Path) {
			paths = append(paths, p.HTTPGet.Path)
		}
	}
	sort.Strings(paths)
	return paths
}

func TestKubernetesManifests(t *testing.T) {
	ms, kz := loadManifests(t)

	t.Run("kustomization", func(t *testing.T) {
		if kz.APIVersion != "kustomize.config.k8s.io/v1beta1" || kz.Kind != "Kustomization" {
			t.Errorf("kustomization.yaml: %s %s", kz.APIVersion, kz.Kind)
		}
		var files []string
		for _, m := range ms {
			if !slices.Contains(files, m.file) {
				files = append(files, m.file)
			}
		}
		listed := slices.Clone(kz.Resources)
		sort.Strings(files)
		sort.Strings(listed)
		if !slices.Equal(files, listed) {
			t.Errorf("kustomization.yaml resources %v, want every manifest of %s: %v", kz.Resources, k8sDir, files)
		}
		if len(slices.Compact(listed)) != len(kz.Resources) {
			t.Errorf("kustomization.yaml lists a resource twice: %v", kz.Resources)
		}
		if ns := only[corev1.Namespace](t, ms); ns.Name != kz.Namespace {
			t.Errorf("Namespace %q, kustomization namespace %q", ns.Name, kz.Namespace)
		}
		_, c := gatewayDeployment(t, ms)
		found := false
		for _, im := range kz.Images {
			found = found || im.Name == c.Image
		}
		if !found {
			t.Errorf("kustomization.yaml images: none for the gateway's image %q", c.Image)
		}
		seen := map[string]string{}
		for _, m := range ms {
			key := m.kind + "/" + m.name
			if f, dup := seen[key]; dup {
				t.Errorf("%s in both %s and %s", key, f, m.file)
			}
			seen[key] = m.file
		}
	})

	t.Run("pod security", func(t *testing.T) {
		// What the namespace's pod-security.kubernetes.io/enforce: restricted requires, and
		// the hardening asked of every container here.
		if ns := only[corev1.Namespace](t, ms); ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("Namespace %s: want pod-security.kubernetes.io/enforce: restricted", ns.Name)
		}
		var pods []*corev1.PodTemplateSpec
		for _, d := range all[appsv1.Deployment](ms) {
			pods = append(pods, &d.Spec.Template)
		}
		for _, s := range all[appsv1.StatefulSet](ms) {
			pods = append(pods, &s.Spec.Template)
		}
		for _, p := range pods {
			sc := p.Spec.SecurityContext
			switch {
			case sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
				t.Errorf("pod %v: want securityContext.runAsNonRoot: true", p.Labels)
			case sc.RunAsUser == nil || *sc.RunAsUser == 0:
				t.Errorf("pod %v: want a non-zero runAsUser", p.Labels)
			case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
				t.Errorf("pod %v: want seccompProfile RuntimeDefault", p.Labels)
			}
			if p.Spec.AutomountServiceAccountToken == nil || *p.Spec.AutomountServiceAccountToken {
				t.Errorf("pod %v: want automountServiceAccountToken: false (nothing here calls the API)", p.Labels)
			}
			if p.Spec.EnableServiceLinks == nil || *p.Spec.EnableServiceLinks {
				t.Errorf("pod %v: want enableServiceLinks: false (service links inject RAWFLOW_…_PORT variables)", p.Labels)
			}
			for _, c := range p.Spec.Containers {
				cs := c.SecurityContext
				switch {
				case cs == nil || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation:
					t.Errorf("container %s: want allowPrivilegeEscalation: false", c.Name)
				case cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem:
					t.Errorf("container %s: want readOnlyRootFilesystem: true", c.Name)
				case cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0:
					t.Errorf("container %s: want capabilities drop [ALL], add none", c.Name)
				}
				for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
					if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
						t.Errorf("container %s: %s request %s, limit %s: want both, request <= limit", c.Name, r, req.String(), lim.String())
					}
				}
				if strings.HasSuffix(c.Image, ":latest") {
					t.Errorf("container %s: image %s: pin a tag", c.Name, c.Image)
				}
			}
		}
		uid, gid := dockerfileUser(t, parseDockerfile(t, "Dockerfile"))
		d, _ := gatewayDeployment(t, ms)
		sc := d.Spec.Template.Spec.SecurityContext
		if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != int64(uid) || sc.RunAsGroup == nil || *sc.RunAsGroup != int64(gid) {
			t.Errorf("gateway pod: runAsUser/runAsGroup should be the image's USER %d:%d", uid, gid)
		}
	})

	t.Run("gateway", func(t *testing.T) {
		d, c := gatewayDeployment(t, ms)
		spec := d.Spec.Template.Spec
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Error("gateway Deployment: want 2 replicas or more")
		}
		if d.Spec.Selector == nil || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Error("gateway Deployment: its selector does not select its pods")
		}
		if c.Image != "rawflow" {
			t.Errorf("gateway image %q: want rawflow (set by kustomization.yaml images)", c.Image)
		}
		// Probes: HTTP, on a port of the container, the paths the gateway serves
		// (TestProbesServedByGateway, TestKubernetesGatewayRuns).
		for kind, p := range probes(c) {
			if p == nil || p.HTTPGet == nil {
				t.Errorf("gateway: no HTTP %s", kind)
				continue
			}
			if _, ok := containerPort(c, p.HTTPGet.Port); !ok {
				t.Errorf("gateway %s: port %s is not a container port", kind, p.HTTPGet.Port.String())
			}
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("gateway readinessProbe: %s, want /readyz", c.ReadinessProbe.HTTPGet.Path)
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("gateway livenessProbe: %s, want /healthz (not /readyz: an origin outage must not restart gateways)", c.LivenessProbe.HTTPGet.Path)
		}
		// Shutdown: preStop sleep (no shell needed), then SIGTERM and at most 5 s of
		// graceful shutdown per listener, within the grace period.
		var sleep int64
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			if c.Lifecycle.PreStop.Exec != nil {
				t.Error("gateway preStop: exec needs a shell or a binary; the image has only /rawflow")
			}
			if c.Lifecycle.PreStop.Sleep != nil {
				sleep = c.Lifecycle.PreStop.Sleep.Seconds
			}
		}
		if spec.TerminationGracePeriodSeconds == nil || *spec.TerminationGracePeriodSeconds < sleep+5+2 {
			t.Errorf("gateway: terminationGracePeriodSeconds should cover the preStop sleep (%d s) + 5 s of shutdown + margin", sleep)
		}
		// Settings: the ConfigMap and the Secret it takes its environment from exist.
		cm, sec := gatewayEnv(t, ms, c)
		listen := cm.Data["RAWFLOW_LISTEN"]
		_, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Fatalf("ConfigMap %s: RAWFLOW_LISTEN %q: %v", cm.Name, listen, err)
		}
		if cp, ok := containerPort(c, intstr.FromString("http")); !ok || fmt.Sprint(cp) != port {
			t.Errorf("ConfigMap RAWFLOW_LISTEN %q, container port http %d", listen, cp)
		}
		if sec.StringData["RAWFLOW_PEER_KEY"] == "" && len(sec.Data["RAWFLOW_PEER_KEY"]) == 0 {
			t.Errorf("Secret %s: no RAWFLOW_PEER_KEY (gateways sharing a Redis must share the key)", sec.Name)
		}
		for k := range cm.Data {
			if strings.Contains(k, "KEY") || (k == "RAWFLOW_REDIS" && strings.Contains(cm.Data[k], "@")) {
				t.Errorf("ConfigMap %s: %s holds a secret: put it in the Secret", cm.Name, k)
			}
		}
		// Service, PDB, HPA point at the gateway pods and the Deployment.
		var svc *corev1.Service
		for _, s := range all[corev1.Service](ms) {
			if selects(s.Spec.Selector, d.Spec.Template.Labels) {
				svc = s
			}
		}
		if svc == nil {
			t.Fatal("no Service selects the gateway pods")
		}
		for _, p := range svc.Spec.Ports {
			if _, ok := containerPort(c, p.TargetPort); !ok {
				t.Errorf("Service %s: targetPort %s is not a gateway container port", svc.Name, p.TargetPort.String())
			}
		}
		if svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
			t.Errorf("Service %s: want externalTrafficPolicy Local (the gateway needs the client's address)", svc.Name)
		}
		pdb := only[policyv1.PodDisruptionBudget](t, ms)
		if pdb.Spec.Selector == nil || !selects(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("PodDisruptionBudget %s does not select the gateway pods", pdb.Name)
		}
		if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 || pdb.Spec.MinAvailable.IntValue() >= int(*d.Spec.Replicas) {
			t.Errorf("PodDisruptionBudget %s: want 1 <= minAvailable < replicas", pdb.Name)
		}
		hpa := only[autoscalingv2.HorizontalPodAutoscaler](t, ms)
		ref := hpa.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != d.Name {
			t.Errorf("HorizontalPodAutoscaler %s targets %s %s/%s", hpa.Name, ref.APIVersion, ref.Kind, ref.Name)
		}
		if hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 || hpa.Spec.MaxReplicas < *hpa.Spec.MinReplicas {
			t.Errorf("HorizontalPodAutoscaler %s: want 2 <= minReplicas <= maxReplicas", hpa.Name)
		}
		cpu := false
		for _, m := range hpa.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
		}
		if !cpu {
			t.Errorf("HorizontalPodAutoscaler %s: no CPU metric", hpa.Name)
		}
	})

	t.Run("redis", func(t *testing.T) {
		_, c := gatewayDeployment(t, ms)
		cm, _ := gatewayEnv(t, ms, c)
		u, err := url.Parse(cm.Data["RAWFLOW_REDIS"])
		if err != nil || u.Scheme != "redis" && u.Scheme != "rediss" {
			t.Fatalf("ConfigMap RAWFLOW_REDIS %q: want a redis:// URL", cm.Data["RAWFLOW_REDIS"])
		}
		// The in-cluster Redis: POD.SERVICE of the StatefulSet, its headless Service.
		sts := only[appsv1.StatefulSet](t, ms)
		svcName := sts.Spec.ServiceName
		var svc *corev1.Service
		for _, s := range all[corev1.Service](ms) {
			if s.Name == svcName {
				svc = s
			}
		}
		switch {
		case svc == nil:
			t.Fatalf("StatefulSet %s: serviceName %q: no such Service", sts.Name, svcName)
		case svc.Spec.ClusterIP != corev1.ClusterIPNone:
			t.Errorf("Service %s: want headless (clusterIP: None) for the StatefulSet", svc.Name)
		case !selects(svc.Spec.Selector, sts.Spec.Template.Labels):
			t.Errorf("Service %s does not select the StatefulSet's pods", svc.Name)
		}
		if sts.Spec.Selector == nil || !selects(sts.Spec.Selector.MatchLabels, sts.Spec.Template.Labels) {
			t.Errorf("StatefulSet %s: its selector does not select its pods", sts.Name)
		}
		if want := sts.Name + "-0." + svcName; u.Hostname() != want {
			t.Errorf("RAWFLOW_REDIS host %q, want %q (the StatefulSet's pod)", u.Hostname(), want)
		}
		rc := sts.Spec.Template.Spec.Containers[0]
		if len(svc.Spec.Ports) != 1 || fmt.Sprint(svc.Spec.Ports[0].Port) != u.Port() {
			t.Errorf("RAWFLOW_REDIS port %q, Service %s ports %v", u.Port(), svc.Name, svc.Spec.Ports)
		} else if cp, ok := containerPort(rc, svc.Spec.Ports[0].TargetPort); !ok || fmt.Sprint(cp) != u.Port() {
			t.Errorf("Service %s targetPort %s: not Redis's container port %s", svc.Name, svc.Spec.Ports[0].TargetPort.String(), u.Port())
		}
		// Its volume: /data, from the claim template.
		mounted := false
		for _, m := range rc.VolumeMounts {
			for _, vct := range sts.Spec.VolumeClaimTemplates {
				mounted = mounted || (m.Name == vct.Name && m.MountPath == "/data")
			}
		}
		if !mounted {
			t.Errorf("StatefulSet %s: want /data on a volumeClaimTemplate (the append-only file)", sts.Name)
		}
		for _, np := range all[networkingv1.NetworkPolicy](ms) {
			if !selects(np.Spec.PodSelector.MatchLabels, sts.Spec.Template.Labels) {
				t.Errorf("NetworkPolicy %s: does not select the Redis pods", np.Name)
			}
			d, _ := gatewayDeployment(t, ms)
			ok := false
			for _, in := range np.Spec.Ingress {
				for _, from := range in.From {
					if from.PodSelector != nil && selects(from.PodSelector.MatchLabels, d.Spec.Template.Labels) {
						for _, p := range in.Ports {
							ok = ok || (p.Port != nil && p.Port.String() == u.Port())
						}
					}
				}
			}
			if !ok {
				t.Errorf("NetworkPolicy %s: does not let the gateway pods reach Redis on %s", np.Name, u.Port())
			}
		}
	})
}

// gatewayEnv returns the ConfigMap and the Secret the gateway container takes its
// environment from.
func gatewayEnv(t *testing.T, ms []manifest, c corev1.Container) (*corev1.ConfigMap, *corev1.Secret) {
	t.Helper()
	var (
		cm  *corev1.ConfigMap
		sec *corev1.Secret
	)
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			for _, o := range all[corev1.ConfigMap](ms) {
				if o.Name == ef.ConfigMapRef.Name {
					cm = o
				}
			}
			if cm == nil {
				t.Fatalf("gateway envFrom: no ConfigMap %q", ef.ConfigMapRef.Name)
			}
		case ef.SecretRef != nil:
			for _, o := range all[corev1.Secret](ms) {
				if o.Name == ef.SecretRef.Name {
					sec = o
				}
			}
			if sec == nil {
				t.Fatalf("gateway envFrom: no Secret %q", ef.SecretRef.Name)
			}
		}
	}
	if cm == nil || sec == nil {
		t.Fatal("gateway: want envFrom a ConfigMap and a Secret")
	}
	return cm, sec
}

// TestKubernetesGatewayRuns runs the gateway container as the Deployment would (its args,
// the ConfigMap's and the Secret's environment, its env), but on a loopback port and
// without Redis: every variable must name a real flag and be accepted, every probe path must
// answer 200, and SIGTERM must stop it within the grace period.
func TestKubernetesGatewayRuns(t *testing.T) {
	ms, _ := loadManifests(t)
	d, c := gatewayDeployment(t, ms)
	cm, sec := gatewayEnv(t, ms, c)
	env := map[string]string{}
	for k, v := range cm.Data {
		env[k] = v
	}
	for k, v := range sec.StringData {
		env[k] = v
	}
	for k, v := range sec.Data {
		env[k] = string(v)
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Fatalf("gateway env %s: valueFrom is not simulated here", e.Name)
		}
		env[e.Name] = e.Value
	}
	checkEnv(t, "gateway Deployment", "gateway", env)
	checkArgs(t, "gateway Deployment args", "gateway", c.Args[1:])
	for _, ch := range strings.Fields(env["RAWFLOW_CHANNEL"]) {
		if !strings.HasSuffix(ch, "=demo") {
			t.Skipf("the ConfigMap names a real origin (%s): the gateway would not become ready offline", ch)
		}
	}
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	runGateway(t, c.Args, env, gatewayProbePaths(t), grace)
}
